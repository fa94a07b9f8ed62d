"""Token states, image/keyframe conditions, image preprocessing and denoise masks against the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier
from ltx_core.conditioning import VideoConditionByKeyframeIndex, VideoConditionByLatentIndex
from ltx_core.tools import AudioLatentTools, VideoLatentTools
from ltx_core.types import AudioLatentShape, VideoLatentShape
from ltx_pipelines.retake import TemporalRegionMask
from ltx_pipelines.utils import media_io as ref_media
from PIL import Image

from ltx_av.ltx_core.conditioning import (
    FrameCondition,
    KeyframeCondition,
    apply_conditions,
    audio_denoise_mask,
    audio_state,
    condition_for_frame,
    condition_from_dict,
    condition_pixels,
    condition_to_dict,
    own_tokens,
    time_window_mask,
    video_denoise_mask,
    video_state,
)
from ltx_av.ltx_core.errors import InputError

from reference import ltx_core_ref  # noqa: F401

FPS = 25.0


def _reference_video(shape, conditions):
    tools = VideoLatentTools(VideoLatentPatchifier(1), VideoLatentShape(*shape), FPS)
    state = tools.create_initial_state("cpu", torch.float32)
    for c in conditions:
        state = c.apply_to(state, tools)
    return state, tools


def test_video_state_with_replaced_frame_and_keyframes_equals_the_reference():
    shape = (2, 128, 4, 2, 3)
    g = torch.Generator().manual_seed(0)
    first = torch.randn(1, 128, 1, 2, 3, generator=g)
    middle = torch.randn(1, 128, 1, 2, 3, generator=g)
    clip = torch.randn(1, 128, 2, 2, 3, generator=g)
    ref, _ = _reference_video(
        shape,
        [
            VideoConditionByLatentIndex(first.expand(2, -1, -1, -1, -1), 0.9, 0),
            VideoConditionByKeyframeIndex(middle.expand(2, -1, -1, -1, -1), 11, 0.7),
            VideoConditionByKeyframeIndex(clip.expand(2, -1, -1, -1, -1), 16, 1.0),
        ],
    )
    ours = apply_conditions(
        video_state(torch.zeros(shape), FPS),
        [FrameCondition(first, 0.9, 0), KeyframeCondition(middle, 11, 0.7), KeyframeCondition(clip, 16, 1.0)],
    )
    assert torch.equal(ours.latent, ref.latent) and torch.equal(ours.clean, ref.clean_latent)
    torch.testing.assert_close(ours.mask, ref.denoise_mask[..., 0], atol=0, rtol=0)
    assert torch.equal(ours.positions, ref.positions)
    assert ref.attention_mask is None  # plain conditioning items add no attention mask
    assert ours.own_tokens == 24 and ours.latent.shape[1] == 24 + 6 + 12
    trimmed = own_tokens(ours)
    assert trimmed.latent.shape[1] == 24 and trimmed.positions.shape[2] == 24


def test_replacing_later_latent_frames_equals_the_reference():
    shape = (1, 128, 4, 2, 2)
    frames = torch.randn(1, 128, 2, 2, 2)
    ref, _ = _reference_video(shape, [VideoConditionByLatentIndex(frames, 0.5, 2)])
    ours = apply_conditions(video_state(torch.zeros(shape), FPS), [FrameCondition(frames, 0.5, 2)])
    assert torch.equal(ours.latent, ref.latent) and torch.equal(ours.mask, ref.denoise_mask[..., 0])


def test_audio_state_equals_the_reference():
    latent = torch.randn(1, 8, 13, 16)
    tools = AudioLatentTools(AudioPatchifier(1), AudioLatentShape(1, 8, 13, 16))
    ref = tools.create_initial_state("cpu", torch.float32, latent)
    ours = audio_state(latent)
    assert torch.equal(ours.latent, ref.latent) and torch.equal(ours.positions, ref.positions)
    assert torch.equal(ours.mask, ref.denoise_mask[..., 0])


def test_conditions_are_checked():
    state = video_state(torch.zeros(1, 128, 3, 2, 3), FPS)
    with pytest.raises(InputError, match="encoded at 64x64 pixels but the video latent is 96x64"):
        apply_conditions(state, [FrameCondition(torch.zeros(1, 128, 1, 2, 2))])
    with pytest.raises(InputError, match="do not fit a video latent of 3 frames"):
        apply_conditions(state, [FrameCondition(torch.zeros(1, 128, 2, 2, 3), 1.0, 2)])
    with pytest.raises(InputError, match="strength must be in"):
        apply_conditions(state, [KeyframeCondition(torch.zeros(1, 128, 1, 2, 3), 4, 1.5)])
    with pytest.raises(InputError, match=r"frame 17 lie beyond the video, which has frames 0..16"):
        condition_for_frame(torch.zeros(1, 128, 1, 2, 3), 17, 1.0, 17)
    with pytest.raises(InputError, match=r"frames 9..17 lie beyond"):
        condition_for_frame(torch.zeros(1, 128, 2, 2, 3), 9, 1.0, 17)
    assert isinstance(condition_for_frame(torch.zeros(1, 128, 1, 2, 3), 0, 1.0, 17), FrameCondition)
    assert isinstance(condition_for_frame(torch.zeros(1, 128, 1, 2, 3), 16, 1.0, 17), KeyframeCondition)


def test_conditions_round_trip_through_plain_dicts():
    cond = KeyframeCondition(torch.randn(1, 128, 1, 2, 3), 8, 0.6)
    back = condition_from_dict(condition_to_dict(cond))
    assert isinstance(back, KeyframeCondition) and (back.frame_index, back.strength) == (8, 0.6)
    assert torch.equal(back.latent, cond.latent)
    with pytest.raises(InputError, match="kind is 'other'"):
        condition_from_dict({**condition_to_dict(cond), "kind": "other"})


@pytest.mark.parametrize("crf", [0, 33])
def test_condition_pixels_equal_the_reference_image_preprocessing(tmp_path, crf):
    y, x = np.mgrid[0:75, 0:110]
    img = np.stack([127 + 100 * np.sin(x / 7.0), 127 + 100 * np.cos(y / 5.0), (x + y) % 256], -1).astype(np.uint8)
    path = str(tmp_path / "image.png")
    Image.fromarray(img).save(path)
    expected = ref_media.load_image_conditioning(path, 64, 96, torch.float32, torch.device("cpu"), crf=crf)
    got = condition_pixels(torch.from_numpy(img)[None].float() / 255, 64, 96, crf)
    assert got.shape == expected.shape == (1, 3, 1, 64, 96)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_condition_pixels_trim_clips_and_pad_into_the_content_region():
    frames = torch.rand(11, 40, 60, 3)
    assert condition_pixels(frames, 64, 96, 0).shape == (1, 3, 9, 64, 96)
    padded = condition_pixels(frames[:1], 64, 96, 0, content=(4, 8, 56, 80))
    inner = condition_pixels(frames[:1], 56, 80, 0)
    assert torch.equal(padded[..., 4:60, 8:88], inner)
    assert torch.equal(padded[..., :4, 8:88], inner[..., :1, :].expand(-1, -1, -1, 4, -1))


@pytest.mark.parametrize("start,end", [(0.0, 0.1), (0.3, 0.62), (0.5, 5.0)])
def test_time_window_masks_equal_the_reference_retake_mask(start, end):
    video_shape, audio_shape = (1, 128, 4, 2, 2), (1, 8, 17, 16)
    vtools = VideoLatentTools(VideoLatentPatchifier(1), VideoLatentShape(*video_shape), FPS)
    atools = AudioLatentTools(AudioPatchifier(1), AudioLatentShape(*audio_shape))
    region = TemporalRegionMask(start, end, FPS)
    ref_v = region.apply_to(vtools.create_initial_state("cpu", torch.float32), vtools).denoise_mask[0, :, 0]
    ref_a = region.apply_to(atools.create_initial_state("cpu", torch.float32), atools).denoise_mask[0, :, 0]
    v = video_denoise_mask(time_window_mask(video_shape, start, end, FPS), video_shape)[0]
    a = audio_denoise_mask(time_window_mask(audio_shape, start, end), audio_shape)[0]
    assert torch.equal(v, ref_v) and torch.equal(a, ref_a)
    assert torch.equal(
        video_denoise_mask(time_window_mask(video_shape, start, end, FPS, inside=False), video_shape)[0], 1 - ref_v
    )


def test_video_noise_masks_in_every_accepted_layout():
    shape = (1, 128, 3, 2, 2)  # 17 pixel frames of 64x64
    pixel = torch.zeros(17, 64, 64)
    pixel[9, 40:, :10] = 1.0  # one pixel frame, bottom-left corner -> latent frame 2, cell (1, 0)
    got = video_denoise_mask(pixel, shape).view(3, 2, 2)
    expected = torch.zeros(3, 2, 2)
    expected[2, 1, 0] = 1.0
    assert torch.equal(got, expected)
    assert torch.equal(video_denoise_mask(pixel.unsqueeze(1)[None, :, 0], shape).view(3, 2, 2), expected)
    assert torch.equal(video_denoise_mask(pixel.unsqueeze(1), shape).view(3, 2, 2), expected)  # SetLatentNoiseMask
    latent_res = torch.rand(1, 1, 3, 2, 2)
    assert torch.equal(video_denoise_mask(latent_res, shape), latent_res.flatten(1))
    assert torch.equal(video_denoise_mask(torch.ones(1, 1, 1, 1, 1) * 0.5, shape), torch.full((1, 12), 0.5))
    with pytest.raises(InputError, match="has 5 frames; expected 1 \\(all frames\\), 3 \\(latent frames\\) or 17"):
        video_denoise_mask(torch.ones(5, 64, 64), shape, "noise_mask")
    with pytest.raises(InputError, match=r"values in \[0, 1\]"):
        video_denoise_mask(torch.full((1, 64, 64), 2.0), shape)


def test_audio_noise_masks_in_every_accepted_layout():
    shape = (2, 8, 6, 16)
    m = torch.tensor([0.0, 1, 1, 0, 0, 0.5])
    assert torch.equal(audio_denoise_mask(m, shape), m.expand(2, 6))
    assert torch.equal(audio_denoise_mask(m.view(1, 1, 6, 1), shape), m.expand(2, 6))
    full = torch.zeros(2, 8, 6, 16)
    full[1, 3, 4, 7] = 1.0
    assert audio_denoise_mask(full, shape).tolist() == [[0] * 6, [0, 0, 0, 0, 1, 0]]
    with pytest.raises(InputError, match="audio latent of 6 frames"):
        audio_denoise_mask(torch.ones(7), shape)


def test_conditions_follow_the_latent_channel_count():
    """A VAE configured with another latent width (64 here) conditions its own latents like the reference does;
    encoded frames of another width are refused naming both."""
    shape = (1, 64, 3, 2, 3)
    g = torch.Generator().manual_seed(5)
    first, key = torch.randn(1, 64, 1, 2, 3, generator=g), torch.randn(1, 64, 1, 2, 3, generator=g)
    ref, _ = _reference_video(
        shape, [VideoConditionByLatentIndex(first, 0.9, 0), VideoConditionByKeyframeIndex(key, 9, 0.6)]
    )
    ours = apply_conditions(
        video_state(torch.zeros(shape), FPS), [FrameCondition(first, 0.9, 0), KeyframeCondition(key, 9, 0.6)]
    )
    assert ours.latent.shape == ref.latent.shape == (1, 18 + 6, 64)
    assert torch.equal(ours.latent, ref.latent) and torch.equal(ours.clean, ref.clean_latent)
    assert torch.equal(ours.mask, ref.denoise_mask[..., 0]) and torch.equal(ours.positions, ref.positions)
    state = video_state(torch.zeros(shape), FPS)
    with pytest.raises(InputError, match="encoded frames have 128 channels but the video latent has 64"):
        apply_conditions(state, [FrameCondition(torch.zeros(1, 128, 1, 2, 3))])
    with pytest.raises(InputError, match=r"must be \[1, 64, frames, H, W\]; got \[1, 64, 2, 3\]"):
        apply_conditions(state, [KeyframeCondition(torch.zeros(1, 64, 2, 3), 4)])
