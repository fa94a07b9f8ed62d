"""Joining a long video: the memory of a three-segment join against one segment's decode.

Requirement (issue 19): peak(join of 3 segments) <= 1.3 x peak(decode of one segment). Both cases run the
full-size LTX-2.3 video decoder (random weights, float32, CPU) on segments of 25 frames of 128x192 (latent
``[1, 128, 4, 4, 6]``):

* ``long_video.decode_one``: one segment decoded, its frames turned to uint8 and let go as they arrive, as a
  video writer would.
* ``long_video.join3``: three such segments, each overlapping the next by 9 frames (one kept latent frame, as
  LTX-AV Extend lays them out), decoded one after another and streamed through ``ltx_core.join.join_frames``
  (57 frames out); the joined frames go to uint8 and are let go the same way.

The ratio is ``join3``'s ``ours_peak_mib`` over ``decode_one``'s (no reference side: ltx-core has no join).
``--quick`` uses the tiny test config and a 64x64 size.
"""

from __future__ import annotations

import torch

from .runner import Case
from .video_vae import _build, vae_config

FRAMES = 25  # per segment: 4 latent frames
SHIFT = 16  # each extension adds 2 latent frames, keeping 1 (9 shared frames)


def _decoder(quick: bool):
    from ltx_av.ltx_core.config import VideoVAEConfig
    from ltx_av.ltx_core.video_vae import VideoVAE

    config = VideoVAEConfig.from_dict(vae_config("LTX-2.3", quick))
    return _build(lambda: VideoVAE(config, parts=("decoder",)), 1, torch.float32, "cpu")


def _latents(shape: list[int], count: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(shape, generator=g) for _ in range(count)]


def _drain(frames: torch.Tensor) -> None:
    # What a video writer does with each run of frames: uint8 and let go.
    (((frames + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0).to(torch.uint8)


def _runs(vae, latent: torch.Tensor):
    from ltx_av.ltx_core import tiling

    for start, frames in tiling.iter_decode(vae, latent, None, retry_on_oom=False):
        yield start, frames[0].permute(1, 2, 3, 0)  # [n, H, W, 3]


def one_segment(shape: list[int], quick: bool):
    vae = _decoder(quick)
    (latent,) = _latents(shape, 1)

    def run() -> None:
        for _, frames in _runs(vae, latent):
            _drain(frames)

    return run


def join_three(shape: list[int], quick: bool):
    from ltx_av.ltx_core.extend import Segment
    from ltx_av.ltx_core.join import join_frames

    vae = _decoder(quick)
    latents = _latents(shape, 3)
    segments = [Segment(i * SHIFT, FRAMES, 24.0) for i in range(3)]

    def run() -> None:
        out = 0
        for chunk in join_frames(segments, (_runs(vae, latent) for latent in latents)):
            _drain(chunk)
            out += chunk.shape[0]
        if out != FRAMES + 2 * SHIFT:
            raise RuntimeError(f"the join gave {out} frames; expected {FRAMES + 2 * SHIFT}")

    return run


def cases(quick: bool, device: str, workdir: str) -> list[Case]:
    shape = [1, 128, 4, 2, 2] if quick else [1, 128, 4, 4, 6]
    size = f"{shape[4] * 32}x{shape[3] * 32}"
    common = dict(shape="x".join(map(str, shape)), dtype="float32", ref=None, device="cpu", timeout=7200.0)
    config = "tiny test config" if quick else "full-size LTX-2.3 decoder, random weights"
    return [
        Case(
            name="long_video.decode_one",
            ours="bench.long_video:one_segment",
            args={"shape": shape, "quick": quick},
            notes=f"one segment: {FRAMES} frames of {size} decoded and drained as uint8 ({config})",
            **common,
        ),
        Case(
            name="long_video.join3",
            ours="bench.long_video:join_three",
            args={"shape": shape, "quick": quick},
            notes=f"3 segments of {FRAMES} frames of {size}, 9 shared frames each, joined to {FRAMES + 2 * SHIFT} "
            f"frames and drained as uint8; requirement: peak <= 1.3 x long_video.decode_one ({config})",
            **common,
        ),
    ]
