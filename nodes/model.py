"""Loading the audio-video transformer: the ``LTXModelLoader`` node and the ``LTX_MODEL`` value it produces."""

from __future__ import annotations

import logging
import weakref
from contextlib import contextmanager

import torch

from ..ltx_core.checkpoint import Checkpoint, build_component, open_checkpoint
from ..ltx_core.config import TransformerConfig
from ..ltx_core.errors import InputError
from ..ltx_core.lora import AppliedLora, LoraFile, LoraPatches, bind_lora
from ..ltx_core.offload import (
    BLOCKS_PREFIX,
    Placement,
    _is_float8_candidate,
    float8_compute_problem,
    place_weights,
    weight_bytes,
)
from ..ltx_core.perturbations import Perturbations
from ..ltx_core.transformer import (
    AV_TIMESTEP_RULES,
    AudioVideoTransformer,
    StreamInput,
    velocity_to_x0,
)
from . import host
from .dtypes import named_dtype
from .validation import checked, find_model_file, model_choices, register_socket

log = logging.getLogger("ltx_av.nodes.model")

DTYPES = ("auto", "bf16", "fp16", "fp32", "float8-storage", "float8-compute")
FLOAT8_CHOICES = ("float8-storage", "float8-compute")
OFFLOAD_MODES = ("none", "blocks")
MODEL_FOLDERS = ("checkpoints", "diffusion_models")
AUTO = "auto"


def compute_dtype_for(choice: str, device: torch.device) -> torch.dtype:
    """The compute dtype a loader ``dtype`` choice means on ``device`` (float8-storage computes like auto,
    float8-compute's matmuls produce bfloat16)."""
    named = named_dtype(choice, DTYPES)
    if named is not None:
        return named
    if choice == "float8-compute":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.float32
    return torch.bfloat16


def placed_bytes(model: torch.nn.Module, placement: Placement) -> int:
    """Bytes ``model``'s weights take on ``placement.device`` once :func:`place_weights` has placed them so: every
    weight outside the blocks in the compute dtype, the blocks likewise (float8 matrices at one byte per value) unless
    they stream, plus two blocks in the compute dtype when they stream or are float8 (the block computing and the next
    one being made ready)."""
    compute = torch.empty((), dtype=placement.dtype).element_size()
    total = 0
    blocks: dict[str, int] = {}
    for name, p in model.named_parameters():
        size = compute if p.is_floating_point() else p.element_size()
        if not name.startswith(BLOCKS_PREFIX):
            total += p.numel() * size
            continue
        block = name[len(BLOCKS_PREFIX) :].split(".", 1)[0]
        blocks[block] = blocks.get(block, 0) + p.numel() * size
        if not placement.stream_blocks:
            total += p.numel() * (1 if placement.float8 and _is_float8_candidate(name, p) else size)
    if blocks and (placement.stream_blocks or placement.float8):
        total += 2 * max(blocks.values())
    return total


class TransformerWeights(host.DeviceWeights):
    """The host's view of one transformer module's weights, shared by every holder of the module (see
    :class:`LoadedTransformer`): how big they are placed, whether they are, and the moves."""

    def __init__(self, model: torch.nn.Module, placement: Placement, offload_device: torch.device):
        super().__init__("LTXAVTransformer", placement.device, offload_device)
        self._model = weakref.ref(model)  # the module owns this object (see weights_of), not the reverse
        self.placement = placement

    @property
    def model(self) -> torch.nn.Module:
        model = self._model()
        if model is None:
            raise RuntimeError("the transformer these weights belong to is gone")
        return model

    def device_bytes(self) -> int:
        return placed_bytes(self.model, self.placement)

    def is_placed(self) -> bool:
        model = self._model()
        return model is not None and getattr(model, "placement", None) == self.placement

    def _place(self) -> None:
        p = self.placement
        place_weights(
            self.model,
            p.device,
            p.dtype,
            stream_blocks=p.stream_blocks,
            float8=p.float8,
            float8_compute=p.float8_compute,
        )

    def _park(self) -> None:
        place_weights(self.model, self.offload_device, self.placement.dtype, float8=self.placement.float8)


_WEIGHTS: weakref.WeakKeyDictionary[torch.nn.Module, TransformerWeights] = weakref.WeakKeyDictionary()


def weights_of(model: torch.nn.Module, placement: Placement, offload_device: torch.device) -> TransformerWeights:
    """The one :class:`TransformerWeights` of ``model`` (holders of one module share its placement), set to compute
    as ``placement`` says."""
    weights = _WEIGHTS.get(model)
    if weights is None or weights.device != placement.device or weights.offload_device != offload_device:
        weights = _WEIGHTS[model] = TransformerWeights(model, placement, offload_device)
    weights.placement = placement
    return weights


class LoadedTransformer:
    """The ``LTX_MODEL`` value: the transformer, its checkpoint facts, its LoRAs, and where it runs.

    Weights wait on the offload device (CPU) until :meth:`forward` (or :meth:`to_compute_device`) places them; with
    ``offload="blocks"`` only the non-block weights move, the blocks stream from CPU memory per block.

    Several holders may share one transformer module: :meth:`with_lora` returns a new holder with one more LoRA
    and the same module, whose tensors no LoRA ever changes (the patched weights are made per forward, see
    :mod:`..ltx_core.lora`). Where the shared weights are is read from the module itself (``model.placement``),
    so whichever holder placed or parked them, every holder sees it; they all place them the same way.
    """

    def __init__(
        self,
        model: AudioVideoTransformer,
        *,
        variant: str,
        checkpoint: str,
        dtype: torch.dtype,
        float8: bool,
        offload: str,
        device: torch.device,
        offload_device: torch.device,
        loras: tuple[AppliedLora, ...] = (),
        float8_compute: bool = False,
    ):
        self.model = model
        self.variant = variant
        self.checkpoint = checkpoint
        self.dtype = dtype
        self.float8 = float8 or float8_compute
        self.float8_compute = float8_compute
        self.offload = offload
        self.device = device
        self.offload_device = offload_device
        self.loras = loras
        self._av_timestep_rule = model.av_timestep_rule
        self._patches: LoraPatches | None = None

    @property
    def config(self) -> TransformerConfig:
        return self.model.config

    @property
    def av_timestep_rule(self) -> str:
        return self._av_timestep_rule

    @av_timestep_rule.setter
    def av_timestep_rule(self, rule: str) -> None:
        # Kept per holder (holders may share the module); set on the module before each forward.
        if rule not in AV_TIMESTEP_RULES:
            raise InputError(f"av_timestep_rule is {rule!r}; expected one of {', '.join(AV_TIMESTEP_RULES)}")
        self._av_timestep_rule = rule

    @property
    def stream_blocks(self) -> bool:
        return self.offload == "blocks" and self.device.type != "cpu"

    @property
    def _placement(self) -> Placement:
        return Placement(self.device, self.dtype, self.stream_blocks, self.float8, self.float8_compute)

    @property
    def weights(self) -> TransformerWeights:
        """The module's weights as the host sees them (placed through it, so ComfyUI makes room and can unload them)."""
        return weights_of(self.model, self._placement, self.offload_device)

    @property
    def _on_device(self) -> bool:
        return self.model.placement == self._placement

    def to_compute_device(self, working_bytes: int = 0) -> None:
        """Place the weights for computing (no-op when already there); inside ComfyUI it first unloads what it must
        to make room for them and ``working_bytes``."""
        self.weights.place(working_bytes)

    def to_offload_device(self) -> None:
        """Park every weight on the offload device and release the compute device's cached memory."""
        self._patches = None
        self.weights.park()

    @contextmanager
    def in_use(self, working_bytes: int = 0):
        """``with model.in_use(): ...`` keeps the weights on the compute device for a sampling loop (ComfyUI does not
        unload them meanwhile) and parks them after."""
        try:
            with self.weights.in_use(working_bytes):
                yield self
        finally:
            self._patches = None

    def with_lora(self, lora: LoraFile, strength: float) -> LoadedTransformer:
        """A new holder of the same module with ``lora`` added at ``strength`` (checked against the model here).
        Nothing is read from the checkpoint and this holder is unchanged."""
        applied = bind_lora(lora, self.model, self.variant, strength)
        derived = LoadedTransformer(
            self.model,
            variant=self.variant,
            checkpoint=self.checkpoint,
            dtype=self.dtype,
            float8=self.float8,
            offload=self.offload,
            device=self.device,
            offload_device=self.offload_device,
            loras=(*self.loras, applied),
            float8_compute=self.float8_compute,
        )
        derived._av_timestep_rule = self._av_timestep_rule
        return derived

    def forward(
        self,
        video: StreamInput | None,
        audio: StreamInput | None,
        perturbations: Perturbations | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Velocities per stream (float32, on the compute device); inputs may live on any device."""
        self.to_compute_device()
        self.model.av_timestep_rule = self._av_timestep_rule
        with torch.no_grad():
            patches = self._lora_patches()
            if patches is None:
                return self.model(video, audio, perturbations)
            return patches.forward(self.model, video, audio, perturbations)

    __call__ = forward

    velocity_to_x0 = staticmethod(velocity_to_x0)

    def _lora_patches(self) -> LoraPatches | None:
        """The LoRA factors prepared for the module's current placement (None without a LoRA in effect)."""
        if not any(applied.strength for applied in self.loras):
            return None
        if self._patches is None or self._patches.placement != self.model.placement:
            self._patches = LoraPatches(self.loras, self.model)
        return self._patches

    def memory(self) -> dict[str, int]:
        """Bytes of weights per device type right now (the shared module's; LoRA factors not included)."""
        return weight_bytes(self.model)

    def __repr__(self) -> str:
        storage = "float8" if self.float8 else str(self.dtype).removeprefix("torch.")
        if self.float8_compute:
            storage += " (float8 matmuls)"
        loras = "".join(f", LoRA {a.name!r} at {a.strength:g}" for a in self.loras)
        return (
            f"LoadedTransformer({self.variant}, {self.checkpoint!r}, {self.config.num_layers} layers, compute "
            f"{self.device} {str(self.dtype).removeprefix('torch.')}, storage {storage}, offload {self.offload}"
            f"{loras})"
        )


def load_transformer(
    checkpoint: str | Checkpoint,
    *,
    dtype: str = "auto",
    offload: str = "none",
    av_timestep_rule: str = AUTO,
    device: torch.device | None = None,
    offload_device: torch.device | None = None,
    progress: host.Progress | None = None,
    compile: bool = False,
) -> LoadedTransformer:
    """Build the transformer from a monolith or a transformer-only file (e.g. LTX-2.5's); keys are checked strictly.
    ``av_timestep_rule``: one of :data:`AV_TIMESTEP_RULES`, or ``"auto"``: the one of the implementation the
    release was published with (cross_sigma for LTX-2 / 2.3, per_token_cross_gate for 2.5). ``dtype``
    "float8-compute": float8 storage whose matmuls run in float8 (bfloat16 results; refused before loading where
    the device or torch cannot, see :func:`..ltx_core.offload.float8_compute_problem`). ``compile``: the blocks run
    through ``torch.compile`` (the first step of each size compiles, minutes for the full model)."""
    if offload not in OFFLOAD_MODES:
        raise InputError(f"offload is {offload!r}; expected one of {', '.join(OFFLOAD_MODES)}")
    if av_timestep_rule not in (AUTO, *AV_TIMESTEP_RULES):
        raise InputError(
            f"av_timestep_rule is {av_timestep_rule!r}; expected one of {', '.join((AUTO, *AV_TIMESTEP_RULES))}"
        )
    device = torch.device(device) if device is not None else host.compute_device()
    offload_device = torch.device(offload_device) if offload_device is not None else host.offload_device()
    compute_dtype = compute_dtype_for(dtype, device)
    float8 = dtype in FLOAT8_CHOICES
    float8_compute = dtype == "float8-compute"
    if float8_compute:
        problem = float8_compute_problem(device)
        if problem is not None:
            raise InputError(f"dtype float8-compute is not available: {problem}. Choose float8-storage instead")
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else open_checkpoint(checkpoint)
    if offload == "blocks" and device.type == "cpu":
        log.info("offload=blocks has no effect when computing on the CPU; the blocks stay where they are")
    # Tensors stay views of the file until place_weights converts them one by one, so peak memory is the result.
    model = build_component(
        ckpt,
        "transformer",
        lambda config: AudioVideoTransformer(
            config, av_timestep_rule=None if av_timestep_rule == AUTO else av_timestep_rule
        ),
        device="cpu",
        keep_float8=float8,
        progress=progress.callback() if progress is not None else None,
    )
    place_weights(model, offload_device, compute_dtype, float8=float8)
    model.compile_blocks = bool(compile)
    loaded = LoadedTransformer(
        model,
        variant=ckpt.variant_name,
        checkpoint=ckpt.name,
        dtype=compute_dtype,
        float8=float8,
        offload=offload,
        device=device,
        offload_device=offload_device,
        float8_compute=float8_compute,
    )
    log.info("loaded %r", loaded)
    return loaded


def _model_names() -> list[str]:
    return model_choices(MODEL_FOLDERS)


class LTXModelLoader:
    DISPLAY_NAME = "Load Model (transformer)"
    CATEGORY = "LTX-AV/loaders"
    DESCRIPTION = (
        "Loads the LTX-2 / LTX-2.3 audio-video transformer from an official single-file checkpoint, or a "
        "transformer-only file such as LTX-2.5's (models/diffusion_models). The architecture comes from the file's "
        "metadata and every key is checked."
    )
    RETURN_TYPES = ("LTX_MODEL",)
    RETURN_NAMES = ("model",)
    FILE_INPUTS = ("model_name",)
    OUTPUT_TOOLTIPS = ("The transformer, ready for the LTX-AV sampler.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model_name": (
                    _model_names(),
                    {
                        "tooltip": "Checkpoint from models/checkpoints, or a transformer file from "
                        "models/diffusion_models (LTX-2.5: ltx-2.5-22b-dev-transformer-bf16.safetensors)."
                    },
                ),
                "dtype": (
                    list(DTYPES),
                    {
                        "default": "auto",
                        "tooltip": "Compute precision. auto: bf16 on NVIDIA GPUs, fp32 on the CPU. float8-storage "
                        "keeps the block weights in 8 bits (half the memory, slightly less precise) and computes "
                        "like auto. float8-compute also runs their matmuls in 8 bits (faster on RTX 40xx / H100 "
                        "and newer, a little less precise again; refused on other cards). fp16 may overflow on "
                        "some prompts.",
                    },
                ),
                "offload": (
                    list(OFFLOAD_MODES),
                    {
                        "default": "none",
                        "tooltip": "blocks: keep the 48 transformer blocks in CPU memory and stream them to the GPU "
                        "one at a time, so the model runs on GPUs smaller than its weights (slower, needs the "
                        "weights' size in system RAM). none: everything on the GPU.",
                    },
                ),
                "cross_modal_timesteps": (
                    [AUTO, *AV_TIMESTEP_RULES],
                    {
                        "default": AUTO,
                        "tooltip": "Which timesteps drive the audio<->video cross-attention modulation. auto: the "
                        "release's own (cross_sigma, as ltx-core 1.0.0 runs LTX-2 and LTX-2.3; per_token_cross_gate, "
                        "as ltx-core 1.2 runs LTX-2.5). per_token is the first LTX-2 release. They differ only for "
                        "conditioned tokens or when the streams have different noise levels.",
                    },
                ),
            },
            "optional": {
                "compile": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Run the transformer blocks through torch.compile: faster steps on NVIDIA GPUs "
                        "once compiled, but the first step of each video size compiles for minutes (needs a "
                        "working Triton). Off: run them as they are.",
                    },
                ),
            },
        }

    @checked
    def load(self, model_name: str, dtype: str, offload: str, cross_modal_timesteps: str = AUTO, compile: bool = False):
        path = find_model_file("LTXModelLoader", "model_name", MODEL_FOLDERS, model_name)
        ckpt = open_checkpoint(path)
        progress = host.Progress(len(ckpt.keys("transformer")))
        return (
            load_transformer(
                ckpt,
                dtype=dtype,
                offload=offload,
                av_timestep_rule=cross_modal_timesteps,
                progress=progress,
                compile=compile,
            ),
        )


register_socket("LTX_MODEL", LoadedTransformer, "the model from Load Model (transformer)")

NODES: tuple[type, ...] = (LTXModelLoader,)
