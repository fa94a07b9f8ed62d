"""The ``LTXLoraLoader`` node: an ``LTX_MODEL`` with one more LoRA, sharing the base model's weights."""

from __future__ import annotations

from ..ltx_core.lora import read_lora
from . import host
from .model import LoadedTransformer
from .validation import checked, model_file

LORA_FOLDERS = ("loras",)
STRENGTH_LIMIT = 10.0


class LTXLoraLoader:
    DISPLAY_NAME = "Load LoRA (stackable)"
    CATEGORY = "LTX-AV/loaders"
    DESCRIPTION = (
        "Adds a LoRA from models/loras to an LTX-AV model. The base model is neither reloaded nor changed: the LoRA "
        "is applied per block as the model runs, so one base can feed several LoRA loaders, each its own model, "
        "and a new strength takes effect without reloading the checkpoint. Chain loaders to stack LoRAs."
    )
    RETURN_TYPES = ("LTX_MODEL",)
    RETURN_NAMES = ("model",)
    FILE_INPUTS = ("lora_name",)
    OUTPUT_TOOLTIPS = ("The model with this LoRA added to any it already had.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (
                    "LTX_MODEL",
                    {"tooltip": "From Load Model (transformer), or another Load LoRA (stackable) to stack."},
                ),
                "lora_name": (
                    host.list_models("loras"),
                    {
                        "tooltip": "LoRA from models/loras (.safetensors) made for this model (LTX-2, LTX-2.3 or LTX-2.5): "
                        "official and trainer files, ComfyUI and kohya key layouts. The distilled LoRA "
                        "(ltx-2*-distilled-lora-*) is what stage 2 of the dev model's two-stage recipe uses."
                    },
                ),
                "strength": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": -STRENGTH_LIMIT,
                        "max": STRENGTH_LIMIT,
                        "step": 0.01,
                        "tooltip": "Each adapted weight becomes W + strength x B.A (the LoRA's up and down "
                        "matrices). Official LTX files carry no alpha, so 1.0 is the LoRA as trained; a file "
                        "with .alpha entries is scaled by alpha/rank as well, as ComfyUI does. 0 turns it off; "
                        "negative values push the other way.",
                    },
                ),
            }
        }

    @checked
    def load(self, model: LoadedTransformer, lora_name: str, strength: float):
        path = model_file("LTXLoraLoader", "lora_name", LORA_FOLDERS, lora_name)
        return (model.with_lora(read_lora(path), strength),)


NODES: tuple[type, ...] = (LTXLoraLoader,)
