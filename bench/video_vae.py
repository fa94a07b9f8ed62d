"""Video VAE: ours against ltx-core 1.0.0 with the full-size LTX-2 and LTX-2.3 architectures (random weights).

Both sides build the same architecture from the same config and fill every tensor from the same seeded generator,
in state-dict order (key names are identical), so they run identical weights and inputs. Cases (CPU, float32):

* ``decode.<variant>``: latent ``[1,128,4,8,12]`` -> 25 frames of 256x384, untiled.
* ``encode.<variant>``: video ``[1,3,25,256,384]`` -> latent, untiled.
* ``decode_tiled.LTX-2.f25`` / ``.f97``: the same 256x384 size streamed with 16-frame chunks (8 overlap) and 256 px
  tiles (64 overlap); each run of frames is converted to uint8 and dropped as it arrives, as a video writer would.
  The requirement is peak(97 frames) <= 1.3x peak(25 frames). The chunks are short so that the 25-frame video is
  itself cut into full-size chunks: with 32-frame chunks it fits in one chunk of 4 latent frames while the longer
  video's chunks hold 5 (4 + overlap), and the comparison would measure the chunk size instead of the length.

With ``--quick`` the cases use the tiny test configs and small inputs and measure what a fresh process pays: no
warm-up call, so the first timed call is the first call of the process (``extra.first_call_s``; ``later_s`` the
median of the two after it; the case's time is still the median of the three). On a quiet machine the first call
costs what the later ones do on both sides (no set-up of ours is deferred to it); on a busy one every call of these
millisecond-sized convolutions waits for OpenMP's second thread, the first one most.

With ``--device cuda``: the LTX-2 decoder in bfloat16 for 768x512x121 (latent ``[1,128,16,16,24]``), untiled and
tiled, peak memory from the CUDA allocator.
"""

from __future__ import annotations

import copy
import math
import time
import zlib

import torch

from .runner import Case


def _res(n: int) -> list:
    return ["res_x", {"num_layers": n}]


_COMMON = {
    "_class_name": "CausalVideoAutoencoder",
    "dims": 3,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "patch_size": 4,
    "norm_layer": "pixel_norm",
    "latent_log_var": "uniform",
    "causal_decoder": False,
    "decoder_base_channels": 128,
}

# docs/ltx2-architecture.md §2.1 (LTX-2: the diffusers conversion config; LTX-2.3: third-party dumps).
FULL_CONFIGS = {
    "LTX-2": {
        **_COMMON,
        "timestep_conditioning": False,
        "encoder_blocks": [
            _res(4),
            ["compress_space_res", {"multiplier": 2}],
            _res(6),
            ["compress_time_res", {"multiplier": 2}],
            _res(6),
            ["compress_all_res", {"multiplier": 2}],
            _res(2),
            ["compress_all_res", {"multiplier": 2}],
            _res(2),
        ],
        "decoder_blocks": [
            _res(5),
            ["compress_all", {"residual": True, "multiplier": 2}],
            _res(5),
            ["compress_all", {"residual": True, "multiplier": 2}],
            _res(5),
            ["compress_all", {"residual": True, "multiplier": 2}],
            _res(5),
        ],
    },
    "LTX-2.3": {
        **_COMMON,
        "timestep_conditioning": False,
        "spatial_padding_mode": "zeros",
        "encoder_blocks": [
            _res(4),
            ["compress_space_res", {"multiplier": 2}],
            _res(6),
            ["compress_time_res", {"multiplier": 2}],
            _res(4),
            ["compress_all_res", {"multiplier": 2}],
            _res(2),
            ["compress_all_res", {"multiplier": 1}],
            _res(2),
        ],
        "decoder_blocks": [
            _res(4),
            ["compress_space", {"multiplier": 2}],
            _res(6),
            ["compress_time", {"multiplier": 2}],
            _res(4),
            ["compress_all", {"multiplier": 1}],
            _res(2),
            ["compress_all", {"multiplier": 2}],
            _res(2),
        ],
    },
}

TILED = {"spatial": (256, 64), "temporal": (16, 8)}


def vae_config(variant: str, quick: bool) -> dict:
    if quick:
        import tiny_models

        return tiny_models.tiny_config(variant)["vae"]
    return copy.deepcopy(FULL_CONFIGS[variant])


def _fill(module: torch.nn.Module, seed: int) -> None:
    """Every floating tensor from a generator seeded by its key (without the ``encoder.``/``decoder.`` root, so
    both sides get the same values): N(0, 1/fan_in) for conv and linear weights, small values for biases and
    tables, positive std statistics."""
    with torch.no_grad():
        for name, t in module.state_dict(keep_vars=True).items():
            key = name.removeprefix("encoder.").removeprefix("decoder.")
            g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
            if name.endswith("std-of-means"):
                value = 0.5 + torch.rand(t.shape, generator=g)
            elif name.endswith("timestep_scale_multiplier"):
                value = torch.full(t.shape, 1000.0)
            elif t.ndim >= 2 and "scale_shift_table" not in name:
                value = torch.randn(t.shape, generator=g) / math.sqrt(t[0].numel())
            else:
                value = 0.1 * torch.randn(t.shape, generator=g)
            t.copy_(value.to(t.dtype))


def _build(module_factory, seed: int, dtype: torch.dtype, device: str) -> torch.nn.Module:
    with torch.device("meta"):
        module = module_factory()
    module = module.to_empty(device="cpu")
    _fill(module, seed)
    return module.to(device=device, dtype=dtype).eval().requires_grad_(False)


def _inputs(part: str, shape: list[int], dtype: torch.dtype, device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    if part == "encode":
        x = x.clamp(-1, 1)
    return x.to(device=device, dtype=dtype)


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def _drain(chunks) -> None:
    # What a video writer does with each run of frames: uint8 and let go.
    for frames in chunks:
        (((frames + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0).to(torch.uint8)


class _Calls:
    """Times each call of ``fn`` (for the first call of a fresh process, which the runner's median hides)."""

    def __init__(self, fn):
        self.fn, self.times = fn, []

    def __call__(self):
        start = time.perf_counter()
        self.fn()
        self.times.append(time.perf_counter() - start)

    def extra(self) -> dict:
        later = sorted(self.times[1:])
        return {
            "first_call_s": round(self.times[0], 4),
            "later_s": round(later[len(later) // 2], 4) if later else None,
            "calls_s": [round(t, 4) for t in self.times],
        }


def _timed_calls(fn, quick: bool):
    return _Calls(fn) if quick else fn


def ours(variant: str, part: str, shape: list[int], quick: bool, dtype: str, device: str = "cpu", tiled: bool = False):
    return _timed_calls(_ours(variant, part, shape, quick, dtype, device, tiled), quick)


def ref(variant: str, part: str, shape: list[int], quick: bool, dtype: str, device: str = "cpu", tiled: bool = False):
    return _timed_calls(_ref(variant, part, shape, quick, dtype, device, tiled), quick)


def _ours(variant: str, part: str, shape: list[int], quick: bool, dtype: str, device: str, tiled: bool):
    from ltx_av.ltx_core import tiling
    from ltx_av.ltx_core.config import VideoVAEConfig
    from ltx_av.ltx_core.video_vae import VideoVAE

    config = VideoVAEConfig.from_dict(vae_config(variant, quick))
    half = "encoder" if part == "encode" else "decoder"
    vae = _build(lambda: VideoVAE(config, parts=(half,)), 1, _dtype(dtype), device)
    x = _inputs(part, shape, _dtype(dtype), device)
    if part == "encode":
        return lambda: vae.encode(x)
    if not tiled:
        return lambda: vae.decode(x)
    setting = tiling.DecodeTiling(*TILED["spatial"], *TILED["temporal"])
    return lambda: _drain(frames for _, frames in tiling.iter_decode(vae, x, setting, retry_on_oom=False))


def _ref(variant: str, part: str, shape: list[int], quick: bool, dtype: str, device: str, tiled: bool):
    from reference import video_cfg

    config = {"vae": vae_config(variant, quick)}
    if part == "encode":
        module = _build(lambda: video_cfg.VideoEncoderConfigurator.from_config(config), 1, _dtype(dtype), device)
    else:
        module = _build(lambda: video_cfg.VideoDecoderConfigurator.from_config(config), 1, _dtype(dtype), device)
    x = _inputs(part, shape, _dtype(dtype), device)
    if not tiled:
        return lambda: module(x)
    from ltx_core.model.video_vae.tiling import SpatialTilingConfig, TemporalTilingConfig, TilingConfig

    setting = TilingConfig(SpatialTilingConfig(*TILED["spatial"]), TemporalTilingConfig(*TILED["temporal"]))
    return lambda: _drain(module.tiled_decode(x, setting))


def _case(name: str, variant: str, part: str, shape: list[int], quick: bool, dtype: str, device: str, **extra) -> Case:
    args = {"variant": variant, "part": part, "shape": shape, "quick": quick, "dtype": dtype, "device": device, **extra}
    return Case(
        name=name,
        shape="x".join(str(s) for s in shape),
        dtype=dtype,
        ours="bench.video_vae:ours",
        ref="bench.video_vae:ref",
        args=args,
        device=device,
        timeout=7200.0,
        warmup=0 if quick else 1,
        notes=f"{variant} {'encoder' if part == 'encode' else 'decoder'}"
        + (f", tiled {TILED}" if extra.get("tiled") else "")
        + (
            " (tiny test config, no warm-up: first call of a fresh process)"
            if quick
            else ", full-size architecture, random weights"
        ),
    )


def cases(quick: bool, device: str, workdir: str) -> list[Case]:
    if device.startswith("cuda"):
        latent = [1, 128, 16, 16, 24]  # 768 x 512, 121 frames
        return [
            _case("video_vae.decode.LTX-2.cuda", "LTX-2", "decode", latent, quick, "bfloat16", device),
            _case(
                "video_vae.decode_tiled.LTX-2.cuda", "LTX-2", "decode", latent, quick, "bfloat16", device, tiled=True
            ),
        ]
    if quick:
        decode, encode, long = [1, 128, 2, 2, 3], [1, 3, 9, 64, 96], [1, 128, 5, 2, 3]
    else:
        decode, encode, long = [1, 128, 4, 8, 12], [1, 3, 25, 256, 384], [1, 128, 13, 8, 12]
    out = []
    for variant in ("LTX-2.3", "LTX-2"):
        out.append(_case(f"video_vae.decode.{variant}", variant, "decode", decode, quick, "float32", device))
        out.append(_case(f"video_vae.encode.{variant}", variant, "encode", encode, quick, "float32", device))
    for latent, label in ((decode, "f25"), (long, "f97")):
        name = f"video_vae.decode_tiled.LTX-2.{label}"
        out.append(_case(name, "LTX-2", "decode", latent, quick, "float32", device, tiled=True))
    return out
