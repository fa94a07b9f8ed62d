"""Pixels and sound in and out: image preprocessing for conditioning and muxing frames + audio into an .mp4.

Uses PyAV (FFmpeg) only; nothing here touches a model.
"""

from __future__ import annotations

import io
import math
from fractions import Fraction

import av
import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError

# The reference re-encodes conditioning images as one H.264 frame at this quality, so the model sees the kind of
# compression artefacts it was trained on (0 disables).
DEFAULT_IMAGE_CRF = 33


def h264_roundtrip(image: np.ndarray, crf: float = DEFAULT_IMAGE_CRF) -> np.ndarray:
    """Encode one ``[H, W, 3]`` uint8 RGB image as an H.264 frame (libx264, veryfast, yuv420p) and decode it back.

    Odd heights/widths lose their last row/column (4:2:0 needs even sizes). ``crf`` 0 returns the image unchanged.
    """
    if crf == 0:
        return image
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    if height == 0 or width == 0:
        raise InputError(f"image of size {image.shape[1]}x{image.shape[0]} is too small to compress (at least 2x2)")
    buffer = io.BytesIO()
    try:
        with av.open(buffer, "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=1, options={"crf": str(crf), "preset": "veryfast"})
            stream.height, stream.width = height, width
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24")
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
            container.mux(stream.encode())
        buffer.seek(0)
        with av.open(buffer) as container:
            decoded = next(container.decode(video=0))
            return decoded.to_ndarray(format="rgb24")
    except (av.FFmpegError, StopIteration, ValueError) as e:
        raise InputError(
            f"image of size {width}x{height} could not be re-compressed as H.264 ({e}); resize it or set crf to 0"
        ) from e


def resize_to_fill(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[F, H, W, C]`` -> ``[F, C, height, width]``: scale (bilinear) until both sides cover the target, then crop
    the centre. Aspect ratio is kept; nothing is stretched."""
    src_h, src_w = frames.shape[1], frames.shape[2]
    scale = max(height / src_h, width / src_w)
    # ceil: rounding must never leave the scaled image a pixel short of the target
    new_h, new_w = math.ceil(src_h * scale), math.ceil(src_w * scale)
    x = frames.permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return x[:, :, top : top + height, left : left + width]


def write_mp4(
    path: str,
    frames: torch.Tensor,
    frame_rate: float,
    waveform: torch.Tensor | None = None,
    sample_rate: int | None = None,
    crf: int = 18,
) -> str:
    """Write ``frames`` (``[F, H, W, 3]``, uint8 or float 0..1) as H.264 (yuv420p) and, if given, ``waveform``
    (``[C, N]`` float -1..1, mono or stereo) as AAC, trimmed to the video's duration. Returns ``path``.

    H.264 in yuv420p needs even sizes: an odd height or width loses its last row or column.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise InputError(f"frames must be [F, H, W, 3] with F >= 1; got {list(frames.shape)}")
    if frames.dtype != torch.uint8:
        frames = (frames.float().clamp(0, 1) * 255).round().to(torch.uint8)
    height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    rate = Fraction(frame_rate).limit_denominator(1001)
    with av.open(path, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": "medium"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = None
        if waveform is not None:
            if sample_rate is None:
                raise InputError("write_mp4: a waveform needs its sample_rate")
            audio = container.add_stream("aac", rate=int(sample_rate))
            audio.layout = "stereo"
        for frame in frames[:, :height, :width].cpu().numpy():
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode())
        if audio is not None:
            _mux_audio(container, audio, waveform, int(sample_rate), frames.shape[0] / float(frame_rate))
    return path


def _mux_audio(container, stream, waveform: torch.Tensor, sample_rate: int, duration: float) -> None:
    if waveform.ndim == 1:
        waveform = waveform[None]
    if waveform.ndim != 2 or waveform.shape[0] not in (1, 2):
        raise InputError(f"waveform must be [channels, samples] with 1 or 2 channels; got {list(waveform.shape)}")
    if waveform.shape[0] == 1:
        waveform = waveform.repeat(2, 1)
    waveform = waveform[:, : round(duration * sample_rate)]
    pcm = (waveform.float().clamp(-1, 1) * 32767).round().to(torch.int16).T.contiguous().cpu().numpy()
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = sample_rate
    resampler = av.AudioResampler(format=stream.codec_context.format or "fltp", layout="stereo", rate=sample_rate)
    pts = 0
    for chunk in resampler.resample(frame) + resampler.resample(None):
        chunk.pts = pts
        pts += chunk.samples
        container.mux(stream.encode(chunk))
    container.mux(stream.encode())
