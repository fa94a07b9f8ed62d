"""Latent upsamplers: ours against ltx-core 1.0.0 at the released widths (random weights).

The stage-1 latent of a 768x512x121 video, ``[1,128,16,8,12]``, through

* ``upsampler.spatial_x2``: the x2 spatial upsampler (1024 wide, 4 + 4 residual blocks, pixel shuffle; about
  498 M parameters) -> ``[1,128,16,16,24]``;
* ``upsampler.temporal_x2``: the temporal upsampler (512 wide, about 131 M parameters) -> ``[1,128,31,8,12]``.

The file is written once into the work folder in the official layout (flat keys, the config as metadata) with
seeded weights of a trained network's scale; ours loads it through :func:`load_upsampler`, the reference through
its own builder, as its pipelines do. Both sides map the same un-normalised latent under ``torch.no_grad``
(the VAE statistics around the call are two elementwise passes over 128 channels and are left out). Float32 on
the CPU, bfloat16 with ``--device cuda``. Peak memory is what the calls need beyond the loaded weights; ours
also reports its own estimate (``estimate_upsample_bytes``) in ``ours_extra``. ``--quick``: the tiny test configs.
"""

from __future__ import annotations

import json
import os

import torch

from .runner import Case

LATENT = [1, 128, 16, 8, 12]  # 768 x 512, 121 frames, halved for stage 1 -> 384 x 256 -> 8 x 12 latent cells

_COMMON = {"_class_name": "LatentUpsampler", "in_channels": 128, "num_blocks_per_stage": 4, "dims": 3}
RELEASED = {
    "spatial_x2": {
        **_COMMON,
        "mid_channels": 1024,
        "spatial_upsample": True,
        "temporal_upsample": False,
        "spatial_scale": 2.0,
        "rational_resampler": False,
    },
    "temporal_x2": {
        **_COMMON,
        "mid_channels": 512,
        "spatial_upsample": False,
        "temporal_upsample": True,
        "spatial_scale": 1.0,
        "rational_resampler": True,
    },
}
_TINY = {"spatial_x2": "spatial-x2", "temporal_x2": "temporal-x2"}


def _official() -> None:
    """Make the official ``ltx_core`` importable (tests/reference.py: no shadowing, torchaudio stand-in)."""
    import reference  # noqa: F401


def _config(kind: str, quick: bool) -> dict:
    if quick:
        _official()
        import tiny_upsamplers

        return tiny_upsamplers.tiny_upsampler_config(_TINY[kind])
    return RELEASED[kind]


def _write(path: str, config: dict) -> None:
    """The reference network with seeded weights (N(0, 1/fan_in) kernels, norm weights near 1), saved in the
    official layout."""
    _official()
    from ltx_core.model.upsampler import LatentUpsamplerConfigurator
    from safetensors.torch import save_file

    with torch.device("meta"):
        module = LatentUpsamplerConfigurator.from_config(config)
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for name, t in module.state_dict().items():
        if name.endswith("blur_down.kernel"):
            taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
            value = (torch.outer(taps, taps) / 256).view(1, 1, 5, 5)
        elif t.ndim > 1:
            value = torch.randn(t.shape, generator=g).mul_(t[0].numel() ** -0.5)
        elif name.endswith("weight"):
            value = 1.0 + 0.1 * torch.randn(t.shape, generator=g)
        else:
            value = 0.1 * torch.randn(t.shape, generator=g)
        tensors[name] = value
    save_file(tensors, path, metadata={"config": json.dumps(config)})


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def _input(shape: list[int], dtype: str, device: str) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(device=device, dtype=_dtype(dtype))


def ours(path: str, shape: list[int], dtype: str, device: str = "cpu"):
    from ltx_av.ltx_core.upsampler import estimate_upsample_bytes, load_upsampler

    model = load_upsampler(path, dtype=_dtype(dtype), device=device)
    x = _input(shape, dtype, device)

    def step() -> torch.Tensor:
        return model(x)

    estimate = estimate_upsample_bytes(model.config, x.shape, model.dtype)
    step.extra = {"estimate_mib": round(estimate / 2**20, 1)}
    return step


def ref(path: str, shape: list[int], dtype: str, device: str = "cpu"):
    _official()
    from ltx_core.loader import SingleGPUModelBuilder
    from ltx_core.model.upsampler import LatentUpsamplerConfigurator

    builder = SingleGPUModelBuilder(model_class_configurator=LatentUpsamplerConfigurator, model_path=path)
    model = builder.build(device=torch.device(device), dtype=_dtype(dtype)).eval().requires_grad_(False)
    x = _input(shape, dtype, device)

    def step() -> torch.Tensor:
        with torch.no_grad():
            return model(x)

    return step


def cases(quick: bool, device: str, workdir: str) -> list[Case]:
    cuda = device.startswith("cuda")
    dtype = "bfloat16" if cuda else "float32"
    shape = [1, 128, 3, 3, 5] if quick else LATENT
    out = []
    for kind in ("spatial_x2", "temporal_x2"):
        config = _config(kind, quick)
        path = os.path.join(workdir, f"upsampler-{kind}.safetensors")
        _write(path, config)
        args = {"path": path, "shape": shape, "dtype": dtype, "device": device}
        out.append(
            Case(
                name=f"upsampler.{kind}" + (".cuda" if cuda else ""),
                shape="x".join(str(s) for s in shape),
                dtype=dtype,
                ours="bench.upsampler:ours",
                ref="bench.upsampler:ref",
                args=args,
                device=device,
                timeout=7200.0,
                interleave=True,
                notes=f"{kind.replace('_', ' ')} upsampler, "
                + (
                    "tiny test config"
                    if quick
                    else f"mid {config['mid_channels']}, released architecture, random weights"
                )
                + "; stage-1 latent of 768x512x121",
            )
        )
    return out
