"""demo_quality.time_awareness: a transformer whose first guess from pure noise follows each motion's mean over time
scores own 1, one whose guess is the same at every moment scores own 0."""

from __future__ import annotations

import torch

from ltx_av.ltx_core import demo_quality
from ltx_av.ltx_core import demo_world as world
from ltx_av.ltx_core.conditioning import video_state
from ltx_av.ltx_core.text_encoder import TextContexts

FRAMES, HEIGHT, WIDTH = 4, 2, 3


def _dataset() -> dict:
    """Two clips per motion whose latents put a bump at a motion-specific place in each latent frame."""
    g = torch.Generator().manual_seed(0)
    video, audio, captions = [], [], []
    for m, motion in enumerate(world.MOTIONS):
        for _ in range(2):
            latent = 0.1 * torch.randn(128, FRAMES, HEIGHT, WIDTH, generator=g)
            for f in range(FRAMES):
                latent[m, f, (f + m) % HEIGHT, (f * (m + 1)) % WIDTH] += 3.0
            video.append(latent)
            audio.append(torch.zeros(8, 5, 16))
            captions.append(world.caption("red", "ball", motion, "low hum"))
    return {"video": video, "audio": audio, "captions": captions}


class _Gemma:
    def encode(self, captions):
        return torch.tensor([[float(world.MOTIONS.index(world.parse_caption(c)[2]))] for c in captions])


class _Text:
    def __call__(self, motions):
        return TextContexts(motions[:, None, :], motions[:, None, :])


class _Oracle:
    """Guesses each motion's data mean at every token (``static``: its mean over the frames instead)."""

    def __init__(self, dataset: dict, static: bool):
        self.means = {}
        for m, motion in enumerate(world.MOTIONS):
            clips = [v for v, c in zip(dataset["video"], dataset["captions"], strict=True) if motion in c]
            tokens = video_state(torch.stack(clips), world.FRAME_RATE).latent.mean(0)
            if static:
                tokens = tokens.reshape(FRAMES, HEIGHT * WIDTH, -1).mean(0).repeat(FRAMES, 1)
            self.means[m] = tokens

    def __call__(self, video, audio, perturbations):
        guess = torch.stack([self.means[int(m)] for m in video.context[:, 0, 0]])
        return video.latent - guess, torch.zeros_like(audio.latent)


def test_a_guess_that_follows_time_scores_one_and_a_still_guess_zero():
    dataset = _dataset()
    for static, expected in ((False, 1.0), (True, 0.0)):
        models = {"transformer": _Oracle(dataset, static), "text_encoder": _Text()}
        scores = demo_quality.time_awareness(models, _Gemma(), dataset, draws=2)
        assert set(scores) == set(world.MOTIONS)
        for motion, (own, other) in scores.items():
            assert abs(own - expected) < 1e-4, (static, motion, own)
            assert other < 0.9, (motion, other)  # the motions' bumps lie in different channels
