"""Tiny latent-upsampler files of every released kind, written with the reference's own module.

Each file is what an official upsampler file is — flat keys, the architecture as a flat JSON object in
``metadata["config"]`` — at a width small enough for a CPU test (128 latent channels as released, 64 in the
middle, two residual blocks per stage). Every learned tensor gets a seeded value; the rational kinds keep the
binomial blur kernel the reference computes, which the real files store. Import ``reference`` (tests/conftest.py
does) before this module: it makes the official ``ltx_core`` importable.
"""

from __future__ import annotations

import json

import torch
from ltx_core.loader import SingleGPUModelBuilder
from ltx_core.model.upsampler import LatentUpsampler, LatentUpsamplerConfigurator
from safetensors.torch import save_file

from ltx_av.ltx_core.tiny import fill_deterministically

_COMMON = {
    "_class_name": "LatentUpsampler",
    "in_channels": 128,
    "mid_channels": 64,
    "num_blocks_per_stage": 2,
    "dims": 3,
}

# kind -> the config keys that make it (values as the released files spell them)
KINDS: dict[str, dict] = {
    "spatial-x2": {
        "spatial_upsample": True,
        "temporal_upsample": False,
        "spatial_scale": 2.0,
        "rational_resampler": False,
    },
    "spatial-x2-rational": {
        "spatial_upsample": True,
        "temporal_upsample": False,
        "spatial_scale": 2.0,
        "rational_resampler": True,
    },
    "spatial-x1.5": {
        "spatial_upsample": True,
        "temporal_upsample": False,
        "spatial_scale": 1.5,
        "rational_resampler": True,
    },
    "temporal-x2": {
        "spatial_upsample": False,
        "temporal_upsample": True,
        "spatial_scale": 1.0,
        "rational_resampler": True,
    },
}


def tiny_upsampler_config(kind: str, **overrides) -> dict:
    return {**_COMMON, **KINDS[kind], **overrides}


def reference_upsampler(config: dict, seed: int = 0) -> LatentUpsampler:
    """The reference network for ``config``, every learned tensor filled from ``seed`` (float32, CPU)."""
    module = LatentUpsamplerConfigurator.from_config(config).float()
    fixed = {k: v.clone() for k, v in module.state_dict().items() if k.endswith("blur_down.kernel")}
    fill_deterministically(module, seed)
    module.load_state_dict(fixed, strict=False)
    return module.eval()


def write_upsampler(
    path: str, kind: str, seed: int = 0, dtype: torch.dtype = torch.float32, **overrides
) -> dict[str, torch.Tensor]:
    """Write a tiny upsampler file of ``kind`` to ``path``; returns the tensors written."""
    config = tiny_upsampler_config(kind, **overrides)
    module = reference_upsampler(config, seed)
    tensors = {k: v.detach().to(dtype).contiguous().clone() for k, v in module.state_dict().items()}
    save_file(tensors, path, metadata={"config": json.dumps(config)})
    return tensors


def load_reference_upsampler(path: str) -> LatentUpsampler:
    """The reference network loaded from ``path`` by ltx-core's own builder, as its pipelines do (float32, CPU)."""
    builder = SingleGPUModelBuilder(model_class_configurator=LatentUpsamplerConfigurator, model_path=path)
    return builder.build(device=torch.device("cpu"), dtype=torch.float32).eval()
