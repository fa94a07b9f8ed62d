"""LoRA merging: ours against ltx-core 1.0.0's fusion, on a full-width 2-layer LTX-2.3 transformer.

The model is the file of ``bench/transformer.py`` (video 32x128, audio 32x64, text contexts 4096 / 2048, FFN x4,
2 layers, seeded bfloat16 weights); for float8 storage the same weights with every block linear weight cast to
``float8_e4m3fn`` (what the ``-fp8`` releases store, no scales). The LoRA has rank 32 on every attention projection
(``to_q/to_k/to_v/to_out.0`` of the six attentions of both blocks: 48 layers, the trainer's default targets) in the
official layout and bfloat16, like the trainer writes it. Strength 1, bfloat16 compute, CPU.

Ours has two paths: :func:`fuse_loras_`, which adds the LoRAs into the weights in place (what the headless pipeline
does with the ``loras`` it loads with, owning the model alone), and :class:`LoraPatches`, which never changes the
model and makes each block's patched weights as it runs (ComfyUI's shared models). The cases measure the fusion,
side by side with ltx-core's, which also fuses:

* ``lora.merge.*``: the merging work on a model already in memory. ltx-core: ``apply_loras`` over the loaded
  state dict, fusing in place as its builder does (per weight ``B @ A`` in the weight's dtype, added to the weight
  upcast to bfloat16, the sum cast back: float8 weights are rounded back to float8). Ours: ``fuse_loras_`` on the
  loaded model (per weight one in-place ``addmm_`` in bfloat16; float8 a slice of rows at a time in float32,
  rounded back to nearest). Both repeat the fusion on the already fused weights: the same work each call.
  ``ours_extra.patches_pass_s`` is what the non-destructive path costs instead, per forward (every block's patched
  weights made once, factors prepared once). Peak memory is what the merge needs beyond the loaded model.
* ``lora.load.*``: everything from the file to a model ready to run with the LoRA. ltx-core: its builder with the
  LoRA (load, fuse). Ours: build and place the model, read and check the LoRA, fuse it. Peak memory here is the
  whole process's growth during the call.

Both kinds time the two sides in turns in one process (``interleave``): on the shared 2-core machine the load
drifts between two separate runs by more than the differences measured.
"""

from __future__ import annotations

import json
import os
import time

import torch

from .runner import Case
from .transformer import transformer_config, write_checkpoint

RANK = 32
ATTENTIONS = ("attn1", "attn2", "audio_attn1", "audio_attn2", "audio_to_video_attn", "video_to_audio_attn")
PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
DTYPES = {"bfloat16": torch.bfloat16, "float8": torch.bfloat16}  # storage -> compute dtype


def _config_of(path: str) -> dict:
    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return json.loads(header["__metadata__"]["config"])


def write_float8_copy(source: str, path: str) -> None:
    """``source`` with every block linear weight stored as float8 (cast, no scale), the rest as it is."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(source)
    for key, t in tensors.items():
        if ".transformer_blocks." in key and key.endswith(".weight") and t.ndim == 2:
            tensors[key] = t.to(torch.float8_e4m3fn)
    save_file(tensors, path, metadata={"config": json.dumps(_config_of(source)), "model_version": "2.3.0"})


def write_lora(path: str, config: dict) -> int:
    """A rank-32 LoRA on every attention projection of the model ``config`` describes; returns its layer count."""
    from safetensors.torch import save_file

    from ltx_av.ltx_core.config import TransformerConfig
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    with torch.device("meta"):
        model = AudioVideoTransformer(TransformerConfig.from_dict(config))
    g = torch.Generator().manual_seed(2)
    tensors = {}
    for i in range(config["num_layers"]):
        for attention in ATTENTIONS:
            for projection in PROJECTIONS:
                module = f"transformer_blocks.{i}.{attention}.{projection}"
                out_features, in_features = model.get_parameter(module + ".weight").shape
                down = torch.randn(RANK, in_features, generator=g) / in_features**0.5
                up = torch.randn(out_features, RANK, generator=g) * 0.01
                tensors[f"diffusion_model.{module}.lora_A.weight"] = down.to(torch.bfloat16)
                tensors[f"diffusion_model.{module}.lora_B.weight"] = up.to(torch.bfloat16)
    save_file(tensors, path)
    return len(tensors) // 2


# -- ours --------------------------------------------------------------------------------------------------------------


def _our_model(path: str, storage: str):
    from ltx_av.ltx_core.checkpoint import build_component
    from ltx_av.ltx_core.offload import place_weights
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    float8 = storage == "float8"
    dtype = None if float8 else DTYPES[storage]
    model = build_component(path, "transformer", AudioVideoTransformer, dtype=dtype, keep_float8=float8)
    place_weights(model, "cpu", DTYPES[storage], float8=float8)
    return model


def _one_pass(model, patches) -> None:
    """What a forward does to the weights: every block's patched weights made, then dropped; the rest once."""
    materialiser = patches.block_weights(model)
    for i in range(len(model.transformer_blocks)):
        weights = materialiser.fetch(i)
        del weights
    patches.outside_weights(model)


def _median_seconds(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(sorted(times)[len(times) // 2], 4)


def ours_merge(path: str, lora: str, storage: str):
    from ltx_av.ltx_core.lora import LoraPatches, bind_lora, fuse_loras_, read_lora

    model = _our_model(path, storage)
    applied = bind_lora(read_lora(lora), model, "LTX-2.3", 1.0)

    def step():
        with torch.inference_mode():
            fuse_loras_(model, [applied])

    def extra() -> dict:
        with torch.inference_mode():
            patches = LoraPatches([applied], model)
            return {"patches_pass_s": _median_seconds(lambda: _one_pass(model, patches))}

    step.extra = extra
    return step


def ours_load(path: str, lora: str, storage: str):
    from ltx_av.ltx_core.lora import bind_lora, fuse_loras_, read_lora

    def step():
        model = _our_model(path, storage)
        applied = bind_lora(read_lora(lora), model, "LTX-2.3", 1.0)
        with torch.inference_mode():
            fuse_loras_(model, [applied])
        del model

    return step


# -- ltx-core ----------------------------------------------------------------------------------------------------------


def ref_merge(path: str, lora: str, storage: str):
    from ltx_core.loader.fuse_loras import apply_loras
    from ltx_core.loader.primitives import LoraStateDictWithStrength
    from ltx_core.loader.sd_ops import LTXV_LORA_COMFY_RENAMING_MAP
    from ltx_core.loader.sft_loader import SafetensorsModelStateDictLoader

    from reference import transformer_cfg

    loader = SafetensorsModelStateDictLoader()
    model_sd = loader.load(path, sd_ops=transformer_cfg.LTXV_MODEL_COMFY_RENAMING_MAP, device=torch.device("cpu"))
    lora_sd = loader.load(lora, sd_ops=LTXV_LORA_COMFY_RENAMING_MAP, device=torch.device("cpu"))
    loras = [LoraStateDictWithStrength(lora_sd, 1.0)]

    def step():
        # As its builder does with the default (no-cache) registry: fused into the loaded state dict in place. A
        # repeated call fuses again into the fused weights: the same work.
        with torch.inference_mode():
            apply_loras(model_sd, loras, dtype=None, destination_sd=model_sd)

    return step


def ref_load(path: str, lora: str, storage: str):
    from ltx_core.loader.sd_ops import LTXV_LORA_COMFY_RENAMING_MAP

    from reference import SingleGPUModelBuilder, transformer_cfg

    builder = SingleGPUModelBuilder(
        model_class_configurator=transformer_cfg.LTXModelConfigurator,
        model_path=path,
        model_sd_ops=transformer_cfg.LTXV_MODEL_COMFY_RENAMING_MAP,
    ).lora(lora, 1.0, LTXV_LORA_COMFY_RENAMING_MAP)

    def step():
        with torch.inference_mode():
            model = builder.build(device=torch.device("cpu"))  # keeps the file's dtypes, bf16 / float8
        del model

    return step


def cases(quick: bool, device: str, workdir: str) -> list[Case]:
    if device != "cpu":
        raise SystemExit("bench/lora.py measures on the CPU only (ltx-core fuses float8 on CUDA with Triton)")
    layers, heads = (1, 8) if quick else (2, 32)
    config = transformer_config("LTX-2.3", layers, heads)
    files = {"bfloat16": os.path.join(workdir, "ltx-2.3-wide-bf16.safetensors")}
    write_checkpoint(files["bfloat16"], config)
    files["float8"] = os.path.join(workdir, "ltx-2.3-wide-fp8.safetensors")
    write_float8_copy(files["bfloat16"], files["float8"])
    lora = os.path.join(workdir, f"lora-rank{RANK}-attention.safetensors")
    count = write_lora(lora, config)
    shape = (
        f"LTX-2.3 {layers} layers, video {heads}x128 / audio {heads}x64; rank-{RANK} LoRA on {count} attention "
        "projections, strength 1"
    )
    out = []
    for storage, path in files.items():
        args = {"path": path, "lora": lora, "storage": storage}
        out.append(
            Case(
                f"lora.merge.{storage}",
                shape,
                f"{storage} storage, bfloat16 compute",
                "bench.lora:ours_merge",
                "bench.lora:ref_merge",
                args,
                interleave=True,
                notes="merge work on a loaded model, both fusing into the weights in place (ours: fuse_loras_, the "
                "headless pipeline's path; patches_pass_s: the non-destructive path's cost per forward instead)",
            )
        )
        out.append(
            Case(
                f"lora.load.{storage}",
                shape,
                f"{storage} storage, bfloat16 compute",
                "bench.lora:ours_load",
                "bench.lora:ref_load",
                args,
                interleave=True,
                notes="file to a model ready to run with the LoRA fused into its weights (ours: fuse_loras_)",
            )
        )
    return out
