"""Measuring a clip of the demo world (:mod:`.demo_world`) from its pixels and samples alone: which colour the shape
is, which way it moves, whether its tone is low or high, when clicks sound, and how close a frame is to another.

The same functions judge the world's own clips (which must pass them, see tests/test_demo_world.py) and the demo
model's output (the quality test), so a model is held to exactly what the world itself shows.
"""

from __future__ import annotations

import math

import torch

from .demo_world import CLICK_BAND, COLOURS, EDGE_FRAMES, FRAME_RATE

# A pixel belongs to the shape when it differs from the background by more than this (0..1 RGB, max over channels);
# the world's backgrounds are grey, its colours saturated, so a decoded clip's blur and noise stay far below it.
FOREGROUND_THRESHOLD = 0.2
# A move shorter than this many pixels over the clip is no move at all.
MIN_TRAVEL = 20.0


def _as_float(frames: torch.Tensor) -> torch.Tensor:
    """``[F, H, W, 3]`` uint8 or float in 0..1 -> float32 in 0..1."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [F, H, W, 3]; got {list(frames.shape)}")
    if frames.dtype == torch.uint8:
        return frames.float() / 255.0
    return frames.float().clamp(0.0, 1.0)


def background_colour(frames: torch.Tensor) -> torch.Tensor:
    """The per-frame background ``[F, 3]``: the median of the frame's border pixels (the shape covers little of it)."""
    x = _as_float(frames)
    border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], dim=1)  # [F, 2W + 2H, 3]
    return border.median(dim=1).values


def foreground(frames: torch.Tensor) -> torch.Tensor:
    """``[F, H, W]`` bool: pixels that differ from their frame's background by more than
    :data:`FOREGROUND_THRESHOLD` in some channel."""
    x = _as_float(frames)
    diff = (x - background_colour(frames)[:, None, None, :]).abs().amax(dim=-1)
    return diff > FOREGROUND_THRESHOLD


def dominant_colour(frames: torch.Tensor) -> str | None:
    """The palette colour (:data:`~.demo_world.COLOURS`) nearest the mean of the foreground pixels over the clip,
    compared by chromaticity (each RGB divided by its sum) so lighting and blur matter little; None when nothing
    stands out from the background."""
    x = _as_float(frames)
    mask = foreground(frames)
    if int(mask.sum()) < 20:
        return None
    pixels = x[mask]  # [P, 3]
    chroma = pixels / pixels.sum(-1, keepdim=True).clamp_min(1e-3)
    mean = chroma.mean(0)
    best, best_d = None, math.inf
    for name, rgb in COLOURS.items():
        ref = torch.tensor(rgb)
        d = float(((ref / ref.sum()) - mean).norm())
        if d < best_d:
            best, best_d = name, d
    return best


def centroid_track(frames: torch.Tensor) -> torch.Tensor:
    """``[F, 2]`` float64 (x, y) centroid of each frame's foreground in pixels (+0.5: pixel centres); NaN where a
    frame has no foreground."""
    mask = foreground(frames).double()
    f, h, w = mask.shape
    area = mask.sum(dim=(1, 2))
    xs = torch.arange(w, dtype=torch.float64) + 0.5
    ys = torch.arange(h, dtype=torch.float64) + 0.5
    cx = (mask.sum(1) * xs).sum(-1) / area
    cy = (mask.sum(2) * ys).sum(-1) / area
    track = torch.stack([cx, cy], dim=-1)
    track[area < 10] = math.nan
    return track


def motion_direction(track: torch.Tensor) -> str | None:
    """The world's motion a centroid track shows: "bounces" when the shape comes down to its lowest point and goes
    up again, by at least :data:`MIN_TRAVEL` pixels each way, else "moves left/right/up/down" by the larger net
    displacement; None when it barely moves or the shape is lost in most frames."""
    valid = ~torch.isnan(track).any(-1)
    if int(valid.sum()) < track.shape[0] // 2:
        return None
    t = track[valid]
    x, y = t[:, 0], t[:, 1]
    dx, dy = float(x[-1] - x[0]), float(y[-1] - y[0])
    # A bounce falls to the floor and rises off it; a move never turns.
    low = int(y.argmax())  # y grows downwards
    if float(y[low] - y[: low + 1].min()) >= MIN_TRAVEL and float(y[low] - y[low:].min()) >= MIN_TRAVEL:
        return "bounces"
    if max(abs(dx), abs(dy)) < MIN_TRAVEL:
        return None
    if abs(dx) >= abs(dy):
        return "moves left" if dx < 0 else "moves right"
    return "moves up" if dy < 0 else "moves down"


def floor_contacts(track: torch.Tensor, min_rise: float = MIN_TRAVEL) -> list[int]:
    """Frames at which the centroid is lowest between two rises of at least ``min_rise`` pixels (or the clip's
    ends): where a bouncing shape touches the floor. Frames within :data:`~.demo_world.EDGE_FRAMES` of the ends
    are not reported (the world sounds no click there)."""
    valid = ~torch.isnan(track).any(-1)
    y = track[:, 1].clone()
    y[~valid] = -math.inf
    frames = []
    n = y.shape[0]
    for i in range(EDGE_FRAMES, n - EDGE_FRAMES):
        if not valid[i]:
            continue
        lo, hi = max(0, i - 3), min(n, i + 4)
        if float(y[i]) < float(y[lo:hi].max()):
            continue
        # a contact: the shape stands at least min_rise higher somewhere on each side (or the side is the edge)
        left, right = y[:i][valid[:i]], y[i + 1 :][valid[i + 1 :]]
        ok_left = left.numel() == 0 or i <= 2 or float(left.min()) < float(y[i]) - min_rise
        ok_right = right.numel() == 0 or i >= n - 3 or float(right.min()) < float(y[i]) - min_rise
        if ok_left and ok_right and (not frames or i - frames[-1] > 3):
            frames.append(i)
    return frames


# -- sound ---------------------------------------------------------------------------------------------------------


def _mono(waveform: torch.Tensor) -> torch.Tensor:
    if waveform.ndim == 1:
        return waveform.double()
    if waveform.ndim != 2:
        raise ValueError(f"waveform must be [N] or [channels, N]; got {list(waveform.shape)}")
    return waveform.double().mean(0)


def band_energies(waveform: torch.Tensor, sample_rate: int, bands: list[tuple[float, float]]) -> list[float]:
    """Energy of the mono mix in each ``(low, high)`` Hz band (one FFT over the whole clip)."""
    x = _mono(waveform).float()
    spectrum = torch.fft.rfft(x * torch.hann_window(x.numel())).abs() ** 2
    freqs = torch.fft.rfftfreq(x.numel(), 1.0 / sample_rate)
    return [float(spectrum[(freqs >= low) & (freqs < high)].sum()) for low, high in bands]


def tone_band(waveform: torch.Tensor, sample_rate: int) -> str | None:
    """ "low hum" when the 50-500 Hz band holds more energy than the 800-2800 Hz band, "high beeps" the other way;
    None for (near) silence."""
    low, high = band_energies(waveform, sample_rate, [(50.0, 500.0), (800.0, 2800.0)])
    if low + high < 1e-6:
        return None
    return "low hum" if low > high else "high beeps"


def onset_times(waveform: torch.Tensor, sample_rate: int, *, share: float = 0.05, rise: float = 8.0) -> list[float]:
    """Seconds at which clicks start: 5 ms windows whose clicks' band (:data:`~.demo_world.CLICK_BAND`, where neither
    tone reaches) holds more than ``share`` of the window's energy and ``rise`` times the band's median over the
    clip, one onset per 60 ms."""
    x = _mono(waveform)
    hop = max(1, int(0.005 * sample_rate))
    window = 2 * hop
    if x.numel() < window:
        return []
    frames = x.unfold(0, window, hop) * torch.hann_window(window, dtype=torch.float64)
    spectrum = torch.fft.rfft(frames).abs() ** 2
    freqs = torch.fft.rfftfreq(window, 1.0 / sample_rate).double()
    band = spectrum[:, (freqs >= CLICK_BAND[0]) & (freqs <= CLICK_BAND[1])].sum(-1)
    total = spectrum.sum(-1)
    # absolute floor: a click's band energy at -40 dBFS or more (silence and dither never count)
    floor = max(rise * float(band.median()), window * window * 1e-4 / 8)
    hits = ((band > share * total) & (band > floor)).tolist()
    out: list[float] = []
    for i, hit in enumerate(hits):
        t = i * hop / sample_rate
        if hit and (not out or t - out[-1] > 0.06):
            out.append(t)
    return out


def onset_frames(waveform: torch.Tensor, sample_rate: int, frame_rate: float = FRAME_RATE) -> list[int]:
    """:func:`onset_times` as the nearest video frames."""
    return [round(t * frame_rate) for t in onset_times(waveform, sample_rate)]


def clicks_match(onsets: list[int], bounces: list[int], tolerance: int = 2) -> bool:
    """Every bounce has a click within ``tolerance`` frames and every click a bounce (a clip with neither
    matches)."""
    heard = all(any(abs(o - b) <= tolerance for o in onsets) for b in bounces)
    seen = all(any(abs(o - b) <= tolerance for b in bounces) for o in onsets)
    return heard and seen


def peak_dbfs(waveform: torch.Tensor) -> float:
    """The waveform's peak in dB relative to full scale (1.0); -inf for silence."""
    peak = float(waveform.abs().max())
    return -math.inf if peak == 0 else 20 * math.log10(peak)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two pictures (uint8 or floats in 0..1, same shape)."""
    if a.shape != b.shape:
        raise ValueError(f"pictures differ in shape: {list(a.shape)} and {list(b.shape)}")
    fa = a.double() / 255.0 if a.dtype == torch.uint8 else a.double()
    fb = b.double() / 255.0 if b.dtype == torch.uint8 else b.double()
    mse = float(((fa - fb) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)
