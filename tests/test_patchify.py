"""Latent <-> token layouts and token positions against ltx-core's patchifiers and conditioning items."""

from __future__ import annotations

import reference  # noqa: F401  (first: sets up the reference import safely, see tests/reference.py)

# isort: split

import pytest
import torch
from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier
from ltx_core.conditioning.types.keyframe_cond import VideoConditionByKeyframeIndex
from ltx_core.tools import AudioLatentTools, VideoLatentTools
from ltx_core.types import AudioLatentShape, VideoLatentShape

from ltx_av.ltx_core import InputError
from ltx_av.ltx_core import patchify as P


def test_video_tokens_match_the_reference_order_and_round_trip():
    latent = torch.randn(2, 128, 3, 4, 5)
    tokens = P.patchify_video(latent)
    assert torch.equal(tokens, VideoLatentPatchifier(1).patchify(latent))
    assert torch.equal(P.unpatchify_video(tokens, 3, 4, 5), latent)
    with pytest.raises(InputError, match="remove appended conditioning"):
        P.unpatchify_video(torch.cat([tokens, tokens[:, :20]], 1), 3, 4, 5)


def test_audio_tokens_match_the_reference_order_and_round_trip():
    latent = torch.randn(2, 8, 11, 16)
    tokens = P.patchify_audio(latent)
    assert torch.equal(tokens, AudioPatchifier(1).patchify(latent))
    assert torch.equal(P.unpatchify_audio(tokens), latent)
    with pytest.raises(InputError, match="features"):
        P.unpatchify_audio(tokens[..., :100])


@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0])
def test_video_positions_match_the_reference_latent_tools(fps):
    shape = VideoLatentShape(batch=2, channels=128, frames=4, height=3, width=5)
    state = VideoLatentTools(VideoLatentPatchifier(1), shape, fps).create_initial_state("cpu", torch.float32)
    ours = P.video_positions(2, 4, 3, 5, fps)
    assert ours.dtype == torch.float32 and torch.equal(ours, state.positions)
    # latent frame 0 covers one pixel frame, frame f covers [8f - 7, 8f + 1)
    assert ours[0, 0, 0].tolist() == [0.0, pytest.approx(1 / fps)]
    assert ours[0, 0, 15].tolist() == [pytest.approx(1 / fps), pytest.approx(9 / fps)]


@pytest.mark.parametrize("frame_idx", [0, 8, 17])
def test_keyframe_positions_match_the_reference_conditioning(frame_idx):
    fps = 24.0
    shape = VideoLatentShape(batch=1, channels=128, frames=3, height=2, width=3)
    tools = VideoLatentTools(VideoLatentPatchifier(1), shape, fps)
    state = tools.create_initial_state("cpu", torch.float32)
    keyframe = torch.randn(1, 128, 2, 2, 3)
    state = VideoConditionByKeyframeIndex(keyframe, frame_idx, strength=1.0).apply_to(state, tools)
    appended = state.positions[:, :, shape.token_count() :]
    assert torch.equal(P.keyframe_positions(1, 2, 2, 3, frame_idx, fps), appended)
    assert torch.equal(state.latent[:, shape.token_count() :], P.patchify_video(keyframe))


@pytest.mark.parametrize("start", [0, 5])
def test_audio_positions_match_the_reference_seconds(start):
    ref = AudioPatchifier(1, shift=start).get_patch_grid_bounds(
        AudioLatentShape(batch=2, channels=8, frames=9, mel_bins=16)
    )
    ours = P.audio_positions(2, 9, start=start)
    assert torch.equal(ours, ref)
    if start == 0:
        assert ours[0, 0, :3].flatten().tolist() == pytest.approx([0.0, 0.01, 0.01, 0.05, 0.05, 0.09])
        tools = AudioLatentTools(AudioPatchifier(1), AudioLatentShape(2, 8, 9, 16))
        assert torch.equal(tools.create_initial_state("cpu", torch.float32).positions, ours)


def test_bad_grids_are_refused():
    with pytest.raises(InputError, match="frame_rate"):
        P.video_positions(1, 2, 2, 2, 0.0)
    with pytest.raises(InputError, match="height"):
        P.video_positions(1, 2, 0, 2, 24.0)
    with pytest.raises(InputError, match="frame_idx"):
        P.keyframe_positions(1, 1, 2, 2, -1, 24.0)
    with pytest.raises(InputError, match=r"\[B, C, F, H, W\]"):
        P.patchify_video(torch.zeros(1, 128, 2, 2))
