"""Tiny LoRA files for the tiny checkpoints, in the key layouts real LoRA files use.

The factors are seeded random matrices sized so that ``B @ A`` changes a weight by about 30% of its spread (the
tiny weights are ~1/sqrt(fan-in)), enough for every test to see a LoRA's effect in the transformer's output.
"""

from __future__ import annotations

import torch
from safetensors.torch import save_file

from ltx_av.ltx_core.config import TransformerConfig
from ltx_av.ltx_core.tiny import tiny_config
from ltx_av.ltx_core.transformer import AudioVideoTransformer

ATTENTIONS = ("attn1", "attn2", "audio_attn1", "audio_attn2", "audio_to_video_attn", "video_to_audio_attn")
PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
OUTSIDE = ("patchify_proj", "proj_out", "adaln_single.linear", "audio_patchify_proj")

# layout -> (prefix, down suffix, up suffix, whether the module path is written with underscores)
LAYOUTS = {
    "official": ("diffusion_model.", ".lora_A.weight", ".lora_B.weight", False),  # trainer / ltx-core / ComfyUI
    "kohya": ("lora_unet_", ".lora_down.weight", ".lora_up.weight", True),
    "bare": ("", ".lora_A", ".lora_B", False),  # PEFT state dict without prefix or .weight
    "peft": ("base_model.model.", ".lora_A.default.weight", ".lora_B.default.weight", False),
    "down_up": ("diffusion_model.", ".lora_down.weight", ".lora_up.weight", False),
}


def linear_shapes(variant: str) -> dict[str, tuple[int, int]]:
    """Module path -> (out, in) of every linear layer of the tiny ``variant`` transformer."""
    with torch.device("meta"):
        model = AudioVideoTransformer(TransformerConfig.from_dict(tiny_config(variant)["transformer"]))
    return {
        n[: -len(".weight")]: tuple(p.shape)
        for n, p in model.named_parameters()
        if p.ndim == 2 and n.endswith(".weight")
    }


def modules(variant: str, kind: str = "attention") -> list[str]:
    """Layers a LoRA of ``kind`` adapts: ``attention`` (the trainer's default: every attention projection),
    ``video`` (the video IC-LoRA set: attn1, attn2, ff), ``audio`` (audio stream only), ``outside`` (attention plus
    layers outside the blocks)."""
    blocks = tiny_config(variant)["transformer"]["num_layers"]
    shapes = linear_shapes(variant)
    if kind == "attention":
        names = [f"transformer_blocks.{i}.{a}.{p}" for i in range(blocks) for a in ATTENTIONS for p in PROJECTIONS]
    elif kind == "video":
        names = [
            f"transformer_blocks.{i}.{m}"
            for i in range(blocks)
            for m in [*(f"{a}.{p}" for a in ("attn1", "attn2") for p in PROJECTIONS), "ff.net.0.proj", "ff.net.2"]
        ]
    elif kind == "audio":
        names = [
            f"transformer_blocks.{i}.{m}"
            for i in range(blocks)
            for m in [*(f"{a}.{p}" for a in ("audio_attn1", "audio_attn2") for p in PROJECTIONS), "audio_ff.net.2"]
        ]
    elif kind == "outside":
        names = [*modules(variant, "attention"), *OUTSIDE]
    else:
        raise ValueError(kind)
    missing = [n for n in names if n not in shapes]
    if missing:
        raise ValueError(f"not in the tiny {variant} model: {missing}")
    return names


def factors(
    shapes: dict[str, tuple[int, int]], rank: int = 4, seed: int = 0, size: float = 0.3
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module -> (down [rank, in], up [out, rank]) with ``up @ down`` about ``size`` / sqrt(in) per entry."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for module, (o, i) in shapes.items():
        down = torch.randn(rank, i, generator=g) / i**0.5
        up = torch.randn(o, rank, generator=g) * size / rank**0.5
        out[module] = (down, up)
    return out


def lora_tensors(
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]],
    layout: str = "official",
    alpha: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    prefix, down_suffix, up_suffix, underscored = LAYOUTS[layout]
    tensors = {}
    for module, (down, up) in layers.items():
        name = prefix + (module.replace(".", "_") if underscored else module)
        tensors[name + down_suffix] = down.to(dtype).contiguous()
        tensors[name + up_suffix] = up.to(dtype).contiguous()
        if alpha is not None:
            tensors[name + ".alpha"] = torch.tensor(alpha, dtype=dtype)
    return tensors


def write_lora(
    path: str,
    variant: str = "LTX-2.3",
    kind: str = "attention",
    *,
    rank: int = 4,
    seed: int = 0,
    layout: str = "official",
    alpha: float | None = None,
    dtype: torch.dtype = torch.float32,
    metadata: dict[str, str] | None = None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Write a LoRA of ``kind`` for the tiny ``variant`` model; returns its factors (module -> (down, up))."""
    shapes = linear_shapes(variant)
    layers = factors({m: shapes[m] for m in modules(variant, kind)}, rank, seed)
    save_file(lora_tensors(layers, layout, alpha, dtype), path, metadata=metadata)
    return layers
