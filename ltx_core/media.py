"""Pixels and sound in and out: image preprocessing for conditioning and muxing frames + audio into an .mp4.

Uses PyAV (FFmpeg) only; nothing here touches a model. :class:`Mp4Writer` writes a video as its frames arrive (a
long video is never in memory at once); :func:`write_mp4` writes one that is.
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

    H.264 in yuv420p needs even sizes: an odd height or width loses its last row or column. A video made in
    pieces goes through :class:`Mp4Writer` instead.
    """
    _check_frames(frames)  # before the file is opened: bad frames leave nothing behind
    with Mp4Writer(path, frame_rate, waveform, sample_rate, crf) as writer:
        writer.write(frames)
    return path


class Mp4Writer:
    """An .mp4 (H.264 + AAC) written as its frames arrive, so a long video never has to be in memory at once.

    ``write`` takes the frames in order, in runs of any length (``[n, H, W, 3]``, uint8 or float 0..1, every run
    the same size); ``close`` (or leaving the ``with`` block) ends the file. The soundtrack is given whole at the
    start (it is small beside the frames) and muxed alongside the frames, each time up to the moment the frames
    written so far reach, so the file is interleaved as a player reads it; it is trimmed to the video's duration
    (a shorter one ends early). Leaving the ``with`` block on an error closes the file as far as it got: the
    caller removes it.
    """

    def __init__(
        self,
        path: str,
        frame_rate: float,
        waveform: torch.Tensor | None = None,
        sample_rate: int | None = None,
        crf: int = 18,
    ):
        if not (isinstance(frame_rate, (int, float)) and math.isfinite(frame_rate) and frame_rate > 0):
            raise InputError(f"write_mp4: frame_rate must be a positive number; got {frame_rate!r}")
        self.frame_rate = float(frame_rate)
        self.frames = 0  # written so far
        self.size: tuple[int, int] | None = None  # (height, width) of the first run, cropped to even sides
        self._pcm = None if waveform is None else _stereo_pcm(waveform)
        if self._pcm is not None and sample_rate is None:
            raise InputError("write_mp4: a waveform needs its sample_rate")
        self.sample_rate = None if self._pcm is None else int(sample_rate)
        self._muxed = 0  # audio samples handed to the encoder so far
        self._pts = 0  # samples out of the resampler so far (it may hold a few back until flushed)
        self._container = av.open(path, "w", format="mp4")
        rate = Fraction(frame_rate).limit_denominator(1001)
        self._video = self._container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": "medium"})
        self._video.pix_fmt = "yuv420p"
        self._audio = self._resampler = None
        if self._pcm is not None:
            self._audio = self._container.add_stream("aac", rate=self.sample_rate)
            self._audio.layout = "stereo"
            self._resampler = av.AudioResampler(
                format=self._audio.codec_context.format or "fltp", layout="stereo", rate=self.sample_rate
            )

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.close()
        else:
            self._container.close()

    def write(self, frames: torch.Tensor) -> None:
        """Encode the next ``frames`` ``[n, H, W, 3]`` (and the sound up to the end of them)."""
        _check_frames(frames)
        size = (frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2)
        if self.size is None:
            self.size = size
            self._video.height, self._video.width = size
        elif size != self.size:
            raise InputError(
                f"write_mp4: frames of {frames.shape[2]}x{frames.shape[1]} after frames of "
                f"{self.size[1]}x{self.size[0]}; every frame of a video has one size"
            )
        if frames.dtype != torch.uint8:
            frames = (frames.float().clamp(0, 1) * 255).round().to(torch.uint8)
        for frame in frames[:, : size[0], : size[1]].cpu().numpy():
            self._container.mux(self._video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        self.frames += frames.shape[0]
        self._mux_audio(self._samples_at(self.frames))

    def close(self) -> int:
        """Flush both encoders and end the file; returns the frames written."""
        if self.frames == 0:
            self._container.close()
            raise InputError("write_mp4: no frames were written; a video needs at least one")
        self._container.mux(self._video.encode())
        if self._audio is not None:
            self._mux_audio(self._samples_at(self.frames), final=True)
        self._container.close()
        return self.frames

    def _samples_at(self, frames: int) -> int:
        return round(frames / self.frame_rate * self.sample_rate) if self.sample_rate else 0

    def _mux_audio(self, until: int, final: bool = False) -> None:
        if self._audio is None:
            return
        until = min(until, self._pcm.shape[0])
        chunks = []
        if until > self._muxed:
            piece = self._pcm[self._muxed : until]
            frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="stereo")
            frame.sample_rate = self.sample_rate
            chunks += self._resampler.resample(frame)
        if final:
            chunks += self._resampler.resample(None)
        for chunk in chunks:
            chunk.pts = self._pts
            self._pts += chunk.samples
            self._container.mux(self._audio.encode(chunk))
        self._muxed = max(self._muxed, until)
        if final:
            self._container.mux(self._audio.encode())


def _stereo_pcm(waveform: torch.Tensor) -> np.ndarray:
    """``[C, N]`` (or ``[N]``) float -1..1, mono or stereo -> interleaved int16 stereo ``[N, 2]``."""
    if waveform.ndim == 1:
        waveform = waveform[None]
    if waveform.ndim != 2 or waveform.shape[0] not in (1, 2):
        raise InputError(f"waveform must be [channels, samples] with 1 or 2 channels; got {list(waveform.shape)}")
    if waveform.shape[0] == 1:
        waveform = waveform.repeat(2, 1)
    return (waveform.float().clamp(-1, 1) * 32767).round().to(torch.int16).T.contiguous().cpu().numpy()


def _check_frames(frames: torch.Tensor) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise InputError(f"frames must be [F, H, W, 3] with F >= 1; got {list(frames.shape)}")
