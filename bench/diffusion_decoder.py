"""LTX-2.5 diffusion video decoder: ours against ltx-core 1.2.0 at the released widths (random weights).

The latent of a 768x512x25 video, ``[1,128,4,16,24]``, decoded in one tile by the decoder of
``vae/ltx-2.5-video-vae-bf16`` as configured in the release (stage widths 2048/1024/512/512/256, depths 4/6/4/2/8,
windows 3x7x7, 3x7x7, 3x5x5, 3x5x5 and 11x11x11 for stage 5, one x0 step at t = 1; 417 M parameters). The file is
written once into the work folder in the official layout (bare ``decoder.*`` keys, the config as metadata, bf16
weights of a trained network's scale); both sides load it in float32. Ours: ``load_video_vae_file`` and
``VideoVAE.decode``. The reference: ltx-pipelines 1.2.0's way, its builder with the decoder's state-dict ops and
``DiffVAEMode.CHUNKED_EAGER`` (its default), which without natten attends with its eager tiled SDPA; both draw
their noise from the same seeded generator and give the same frames. Float32 on the CPU.

ltx-core 1.2.0 is not on PyPI: its side runs in the Python named by ``LTX_AV_BENCH_REF_PYTHON`` (an environment
with ltx-core 1.2.0 installed from GitHub). ``--quick``: the tiny test decoder (tests/fixtures/ltx25) on
``[1,16,3,5,5]``.

One full-size decode takes about half an hour on a shared 2-core CPU (the reference's longer still), so that case
(``diffusion_decoder.decode_full``, ``--case full``) times its calls without a warm-up and takes the peak from the
timed process (``memory_run`` off); three calls need hours there, ``--runs 1`` times one call per side.
``diffusion_decoder.decode_small`` (``--case small``) runs the same released decoder on the smallest latent it
decodes unpadded, ``[1,128,3,7,8]`` (256x224, 17 frames), in minutes.
"""

from __future__ import annotations

import json
import os
import sys

import torch

from .runner import REF_PYTHON_ENV, Case

LATENT = [1, 128, 4, 16, 24]  # 768 x 512, 25 frames
SMALL = [1, 128, 3, 7, 8]  # 256 x 224, 17 frames: the stage windows' minimum (3 x 7 x 7 latent cells)
SEED = 0
RELEASED = {
    "_class_name": "CausalDiffusionVAE",
    "dims": 3,
    "model_output_type": "x0",
    # The encoder's description (the file holds only the decoder's tensors here; ours loads parts=("decoder",)).
    "encoder": {
        "dims": 3,
        "in_channels": 3,
        "out_channels": 128,
        "blocks": [
            ["res_x", {"num_layers": 4}],
            ["compress_space_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 6}],
            ["compress_time_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 4}],
            ["compress_all_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 2}],
            ["compress_all_res", {"multiplier": 1}],
            ["res_x", {"num_layers": 2}],
        ],
        "patch_size": 4,
        "latent_log_var": "constant",
        "norm_layer": "pixel_norm",
        "spatial_padding_mode": "zeros",
    },
    "decoder": {
        "in_channels": 128,
        "out_channels": 3,
        "patch_size": 4,
        "head_dim": 64,
        "stage_channels": [2048, 1024, 512, 512, 256],
        "stage_depths": [4, 6, 4, 2, 8],
        "stage_kernels": [[3, 7, 7], [3, 7, 7], [3, 5, 5], [3, 5, 5], [11, 11, 11]],
        "upsamples": [[[1, 2, 2], 2], [[2, 1, 1], 2], [[2, 2, 2], 1], [[2, 2, 2], 2]],
        "stage5_kernel": [11, 11, 11],
        "timestep_scale_multiplier": 1000.0,
        "default_num_inference_steps": 1,
    },
}
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TINY = os.path.join(_ROOT, "tests", "fixtures", "ltx25", "decoder_vae_diffusion_x0.safetensors")


def _write(path: str) -> None:
    """The released decoder's tensors under the official keys, seeded: N(0, 1/fan_in) matrices, norm weights near
    1, small biases and modulation tables; the latent statistics of a trained VAE's scale."""
    from safetensors.torch import save_file

    from ltx_av.ltx_core.diffusion_decoder import DiffusionDecoder, DiffusionDecoderConfig

    with torch.device("meta"):
        module = DiffusionDecoder(DiffusionDecoderConfig.from_vae_config(RELEASED))
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for name, t in module.state_dict().items():
        if t.ndim > 1 and not name.endswith("scale_shift_table"):
            value = torch.randn(t.shape, generator=g).mul_(t[0].numel() ** -0.5)
        elif name.endswith("norm.weight") or name.endswith(("norm1.weight", "norm2.weight", "norm_out.weight")):
            value = 1.0 + 0.1 * torch.randn(t.shape, generator=g)
        else:
            value = 0.05 * torch.randn(t.shape, generator=g)
        tensors["decoder." + name] = value.to(torch.bfloat16)
    tensors["per_channel_statistics.mean-of-means"] = (0.1 * torch.randn(128, generator=g)).to(torch.bfloat16)
    tensors["per_channel_statistics.std-of-means"] = (0.5 + torch.rand(128, generator=g)).to(torch.bfloat16)
    save_file(tensors, path, metadata={"config": json.dumps({"vae": RELEASED}), "model_version": "2.5.0"})


def _latent(shape: list[int]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(1))


def ours(path: str, shape: list[int]):
    from ltx_av.ltx_core.diffusion_tiling import estimate_decode_bytes
    from ltx_av.ltx_core.video_vae_file import load_video_vae_file

    vae = load_video_vae_file(path, parts=("decoder",), dtype=torch.float32)
    latent = _latent(shape)

    def step() -> torch.Tensor:
        with torch.inference_mode():
            return vae.decode(latent, noise=torch.Generator().manual_seed(SEED))

    estimate = estimate_decode_bytes(vae.diffusion_config, latent.shape, None)
    step.extra = {"estimate_mib": round(estimate / 2**20, 1)}
    return step


def ref(path: str, shape: list[int]):
    # Our ltx_core/ must not shadow the reference's (the worker runs from the repository root).
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _ROOT]
    try:
        from ltx_core.loader import SingleGPUModelBuilder
        from ltx_core.model.video_vae import VideoDecoderConfigurator, video_decoder_sd_ops_for_checkpoint
        from ltx_core.model.video_vae.transformer import DiffVAEMode, build_diffvae_mode_op
    except ImportError as e:
        raise RuntimeError(
            f"the reference side needs ltx-core 1.2.0 ({e}); set {REF_PYTHON_ENV} to the python of an environment "
            "that has it, or run with --ours-only"
        ) from e

    builder = SingleGPUModelBuilder(
        model_class_configurator=VideoDecoderConfigurator,
        model_path=path,
        model_sd_ops=video_decoder_sd_ops_for_checkpoint(path),
        module_ops=(build_diffvae_mode_op(DiffVAEMode.CHUNKED_EAGER),),
    )
    decoder = builder.build(device=torch.device("cpu"), dtype=torch.float32).eval()
    latent = _latent(shape)

    def step() -> torch.Tensor:
        with torch.inference_mode():
            return decoder(latent, generator=torch.Generator().manual_seed(SEED))

    return step


def cases(quick: bool, device: str, workdir: str) -> list[Case]:
    if device != "cpu":
        raise SystemExit("bench diffusion_decoder runs on the CPU (the reference's CUDA path needs natten)")
    reference = (
        "reference: ltx-core 1.2.0, DiffVAEMode.CHUNKED_EAGER with its eager neighbourhood attention (no natten)"
    )
    if quick:
        runs = [("decode", _TINY, [1, 16, 3, 5, 5], "tiny test decoder (tests/fixtures/ltx25), one x0 step")]
    else:
        path = os.path.join(workdir, "ltx-2.5-video-vae-decoder.safetensors")
        _write(path)
        released = "LTX-2.5 diffusion decoder, released widths, random weights"
        runs = [
            ("decode_full", path, LATENT, f"{released}; 768x512x25 in one tile; {reference}"),
            ("decode_small", path, SMALL, f"{released}; 256x224x17 in one tile; {reference}"),
        ]
    return [
        Case(
            name=f"diffusion_decoder.{name}",
            shape="x".join(str(s) for s in shape),
            dtype="float32",
            ours="bench.diffusion_decoder:ours",
            ref="bench.diffusion_decoder:ref",
            args={"path": path, "shape": shape},
            timeout=8 * 3600.0,
            warmup=0 if shape == LATENT else 1,
            memory_run=shape != LATENT,
            ref_python=os.environ.get(REF_PYTHON_ENV),
            notes=notes,
        )
        for name, path, shape, notes in runs
    ]
