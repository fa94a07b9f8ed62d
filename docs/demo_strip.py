"""Draw the README's picture of the main job: every sixth frame of the built-in demo model's default clip in a row,
above the clip's spectrogram on the same time axis (the hum's harmonics as lines, each bounce's click as a bright
vertical stroke under the frame where the ball lands).

    python docs/demo_strip.py [docs/demo_strip.png]
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

from ltx_av.__main__ import DEMO_PROMPT
from ltx_av.ltx_core import demo_model
from ltx_av.ltx_core.pipeline import TINY_NEGATIVE_PROMPT

EVERY = 6  # frames 0, 6, ..., 48: nine pictures across the clip's 2 s
SPECTRUM_HEIGHT = 96
TOP_HZ = 3000.0  # the world's sound lies below (hum harmonics to 300 Hz, the knock at 700 Hz, beeps 1.2-2.4 kHz)


def spectrogram(waveform: torch.Tensor, sample_rate: int, width: int) -> Image.Image:
    """Log-magnitude spectrogram of the mono mix, 0..TOP_HZ bottom to top, stretched to ``width`` columns."""
    mono = waveform.float().mean(0)
    n_fft = 1024
    spectrum = torch.stft(mono, n_fft, n_fft // 4, window=torch.hann_window(n_fft), return_complex=True).abs()
    keep = int(TOP_HZ / (sample_rate / 2) * spectrum.shape[0])
    db = 20 * torch.log10(spectrum[:keep].clamp_min(1e-5))
    level = ((db - (db.max() - 70)) / 70).clamp(0, 1).flip(0).numpy()
    image = Image.fromarray((level * 255).astype(np.uint8), "L").resize((width, SPECTRUM_HEIGHT), Image.BILINEAR)
    return image.convert("RGB")


def main(path: str = "docs/demo_strip.png") -> None:
    torch.set_num_threads(1)
    pipe = demo_model.load()
    result = pipe.generate(DEMO_PROMPT, negative_prompt=TINY_NEGATIVE_PROMPT, width=256, height=160, frames=49, steps=8)
    frames = result.frames.numpy()
    picked = frames[::EVERY]
    height, width = picked.shape[1:3]
    strip = Image.new("RGB", (width * len(picked), height + SPECTRUM_HEIGHT + 4), (255, 255, 255))
    for i, frame in enumerate(picked):
        strip.paste(Image.fromarray(frame), (i * width, 0))
    # the spectrogram spans the clip, so frame k's picture starts above the time of frame k
    seconds = frames.shape[0] / result.frame_rate
    span = int(round(strip.width * seconds / (len(picked) * EVERY / result.frame_rate)))
    strip.paste(spectrogram(result.waveform, result.sample_rate, span), (0, height + 4))
    ImageDraw.Draw(strip).text((4, height + 6), f"{DEMO_PROMPT!r}: spectrogram 0-3 kHz", fill=(255, 255, 255))
    strip.save(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
