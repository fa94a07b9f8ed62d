"""How well a model follows the demo world: clips generated from captions judged with :mod:`.demo_measure`, and the
autoencoders' round trip of the world's own clips (the ceiling any generated clip can reach).

:func:`judge` scores one clip against what its caption asks; :func:`generation_scores` runs a pipeline on captions
(typically the held-out ones, :func:`~.demo_world.all_captions` ``(True)``) with several seeds and returns the share
of clips whose colour, motion, tone and clicks match; :func:`image_condition_psnr` checks that image conditioning
keeps the given first frame. :func:`time_awareness` looks inside the transformer: whether its first guess from pure
noise already places the shape where the caption's motion has it at each moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from . import demo_measure as measure
from . import demo_world as world

# The quality bar of issue 22's test: shares of clips that must match, and the first frame's PSNR.
BARS = {"colour": 0.8, "motion": 0.8, "tone": 0.8, "clicks": 0.7}
IMAGE_PSNR_BAR = 25.0


def judge(frames: torch.Tensor, waveform: torch.Tensor, sample_rate: int, caption: str) -> dict[str, bool | None]:
    """Whether ``frames`` ``[F, H, W, 3]`` and ``waveform`` ``[C, N]`` show what ``caption`` says: colour, motion
    and tone; ``clicks`` (only for a caption that bounces, else None): the clicks heard fall within 2 frames of the
    floor contacts seen, and there is at least one of each."""
    parsed = world.parse_caption(caption)
    if parsed is None:
        raise ValueError(f"{caption!r} is not a caption of the demo world's grammar")
    colour, _, motion, tone = parsed
    track = measure.centroid_track(frames)
    result: dict[str, bool | None] = {
        "colour": measure.dominant_colour(frames) == colour,
        "motion": measure.motion_direction(track) == motion,
        "tone": measure.tone_band(waveform, sample_rate) == tone,
        "clicks": None,
    }
    if motion == "bounces":
        contacts = measure.floor_contacts(track)
        onsets = measure.onset_frames(waveform, sample_rate)
        result["clicks"] = bool(contacts) and bool(onsets) and measure.clicks_match(onsets, contacts)
    return result


@dataclass
class Scores:
    """Shares of judged clips that matched, per measure, and every clip's verdict."""

    shares: dict[str, float] = field(default_factory=dict)
    clips: list[tuple[str, int, dict]] = field(default_factory=list)

    def passes(self) -> bool:
        return all(self.shares.get(k, 0.0) >= bar for k, bar in BARS.items() if k in self.shares)

    def describe(self) -> str:
        return ", ".join(f"{k} {100 * v:.0f}%" for k, v in self.shares.items())


def _shares(clips: list[tuple[str, int, dict]]) -> dict[str, float]:
    shares = {}
    for key in BARS:
        verdicts = [v[key] for _, _, v in clips if v[key] is not None]
        if verdicts:
            shares[key] = sum(verdicts) / len(verdicts)
    return shares


def _generate(pipe, caption: str, steps: int, seed: int, **extra):
    """One clip of the world's size and rate, with the demo's negative prompt."""
    return pipe.generate(
        caption,
        negative_prompt=_negative(),
        width=world.WIDTH,
        height=world.HEIGHT,
        frames=world.FRAMES,
        frame_rate=world.FRAME_RATE,
        steps=steps,
        seed=seed,
        **extra,
    )


def generation_scores(pipe, captions: Sequence[str], seeds: Sequence[int], *, steps: int = 8, report=None) -> Scores:
    """Generate every caption with every seed at the demo size (256x160, 49 frames) and judge the clips."""
    clips = []
    for caption in captions:
        for seed in seeds:
            result = _generate(pipe, caption, steps, seed)
            clips.append((caption, seed, judge(result.frames, result.waveform, result.sample_rate, caption)))
            if report is not None:
                report("judge", len(clips), len(captions) * len(seeds))
    return Scores(_shares(clips), clips)


def image_condition_psnr(pipe, scene: world.Scene, *, steps: int = 8, seed: int = 0) -> float:
    """PSNR (dB) of the first generated frame against the world's first frame given as the image condition."""
    first = world.render_frames(scene, 1)[0]
    result = _generate(pipe, scene.caption, steps, seed, image=first)
    return measure.psnr(result.frames[0], (first * 255).round().to(torch.uint8))


@torch.no_grad()
def round_trip_scores(models: dict, seeds: Sequence[int]) -> tuple[Scores, float]:
    """The world's clips (training distribution) through the video VAE and the audio VAE + vocoder, judged as
    generated clips are; and the mean PSNR of the decoded pictures."""
    from .audio import decode_audio

    clips, psnrs = [], []
    for seed in seeds:
        scene = world.scene_from_seed(seed)
        frames, waveform = world.render(scene)
        pixels = frames.permute(3, 0, 1, 2)[None] * 2 - 1
        decoded = models["video_vae"].decode(models["video_vae"].encode(pixels))
        rgb = ((decoded[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        mel = models["audio_vae"].waveform_to_mel(waveform[None], world.SAMPLE_RATE)
        sound = decode_audio(models["audio_vae"], models["vocoder"], models["audio_vae"].encode(mel))[0]
        rate = int(models["vocoder"].sample_rate)
        psnrs.append(measure.psnr(rgb, (frames * 255).round().to(torch.uint8)))
        clips.append((scene.caption, seed, judge(rgb, sound, rate, scene.caption)))
    return Scores(_shares(clips), clips), sum(psnrs) / len(psnrs)


@torch.no_grad()
def time_awareness(
    models: dict, gemma, dataset: dict, *, draws: int = 8, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Per motion, (own, other): how the transformer's first guess of the clean latent from pure noise (sigma 1, the
    sampler's first step) varies over latent frames 1.. compared with the data's mean latent of that motion (own)
    and, as a control, of the motion it resembles most among the others (other), as correlations of the
    frame-dependent parts (each token minus its mean over the frames). ``dataset``: the transformer stage's latents
    (``video``, ``audio``, ``captions``).

    The transformer sees positions only through RoPE, i.e. relative to each other; with pure noise in, the only hint
    of *when* a token is lies at the sequence's ends. A guess that cannot tell the frames apart is the same at every
    moment (own ~ 0) and sampling then makes a still shape; a model that learnt its place in time has own well
    above other."""
    from .conditioning import audio_state, video_state
    from .transformer import StreamInput

    g = torch.Generator().manual_seed(seed)
    data, guess = {}, {}
    for motion in world.MOTIONS:
        index = [i for i, c in enumerate(dataset["captions"]) if world.parse_caption(c)[2] == motion]
        if not index:
            continue
        v = video_state(torch.stack([dataset["video"][i] for i in index]), world.FRAME_RATE)
        f, h, w = v.grid
        data[motion] = v.latent.mean(0).reshape(f, h * w, -1)
        pick = index[:draws]  # the first clips of the state above
        b = len(pick)
        a = audio_state(torch.stack([dataset["audio"][i] for i in pick]))
        contexts = models["text_encoder"](gemma.encode([dataset["captions"][i] for i in pick]))
        sigma = torch.ones(b)
        v_noise = torch.randn(v.latent[:b].shape, generator=g)
        a_noise = torch.randn(a.latent.shape, generator=g)
        v_in = StreamInput(
            v_noise, sigma, torch.ones(v_noise.shape[:2]), v.positions[:b], contexts.video, keyframes=v.keyframes[:b]
        )
        a_in = StreamInput(a_noise, sigma, torch.ones(a_noise.shape[:2]), a.positions, contexts.audio)
        velocity, _ = models["transformer"](v_in, a_in, None)
        guess[motion] = (v_noise - velocity).mean(0).reshape(f, h * w, -1)

    def moving(x: torch.Tensor) -> torch.Tensor:  # frame 0 encodes one pixel frame alone: it differs for every motion
        return (x - x.mean(0, keepdim=True))[1:]

    def correlation(x: torch.Tensor, y: torch.Tensor) -> float:
        return float((x * y).sum() / (x.norm() * y.norm()).clamp_min(1e-12))

    out = {}
    for motion in guess:
        changes = moving(guess[motion])
        if changes.norm() <= 1e-5 * guess[motion].norm():  # the same at every moment, to rounding
            out[motion] = (0.0, 0.0)
            continue
        scores = {other: correlation(changes, moving(data[other])) for other in data}
        own = scores.pop(motion)
        out[motion] = (own, max(scores.values(), default=0.0))
    return out


def _negative() -> str:
    from .pipeline import TINY_NEGATIVE_PROMPT

    return TINY_NEGATIVE_PROMPT
