"""Image preprocessing for conditioning (against the reference pipeline) and .mp4 muxing."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from ltx_pipelines.utils import media_io as ref_media

from ltx_av.ltx_core import media
from ltx_av.ltx_core.errors import InputError


def _smooth_image(h, w):
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([127 + 100 * np.sin(x / 7.0), 127 + 100 * np.cos(y / 5.0), (x + y) % 256], axis=-1)
    return img.astype(np.uint8)


@pytest.mark.parametrize("crf", [0, 33])
def test_h264_roundtrip_equals_the_reference_preprocessing(crf):
    img = _smooth_image(71, 90)
    ours = media.h264_roundtrip(img, crf)
    theirs = ref_media.preprocess(img, crf)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)
    if crf:
        assert ours.shape == (70, 90, 3) and 0 < np.abs(ours.astype(int) - img[:70].astype(int)).mean() < 10


@pytest.mark.parametrize("size", [(64, 96), (96, 64), (32, 32)])
def test_resize_to_fill_equals_the_reference(size):
    frames = torch.rand(3, 50, 77, 3) * 255
    ours = media.resize_to_fill(frames, *size)
    theirs = ref_media.resize_and_center_crop(frames, *size)[0].transpose(0, 1)  # [1,C,F,H,W] -> [F,C,H,W]
    torch.testing.assert_close(ours, theirs)


def test_mp4_has_video_and_audio_trimmed_to_the_video(tmp_path):
    frames = torch.rand(17, 64, 96, 3)
    waveform = torch.randn(1, 48_000) * 0.1  # 2 s of mono audio for a 17/24 s video
    path = media.write_mp4(str(tmp_path / "out.mp4"), frames, 24.0, waveform, 24_000)
    with av.open(path) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        assert (video.codec_context.name, video.width, video.height, video.frames) == ("h264", 96, 64, 17)
        assert (audio.codec_context.name, audio.rate, audio.codec_context.channels) == ("aac", 24_000, 2)
        assert abs(float(audio.duration * audio.time_base) - 17 / 24) < 0.05


def test_mp4_rejects_bad_frames(tmp_path):
    with pytest.raises(InputError, match=r"frames must be \[F, H, W, 3\]"):
        media.write_mp4(str(tmp_path / "x.mp4"), torch.rand(4, 8, 8), 24.0)
