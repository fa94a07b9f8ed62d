"""Training the built-in demo model on the procedural world (:mod:`.demo_world`): every component of an LTX-2.3
checkpoint at toy widths, trained from scratch on the CPU in stages, each resumable from its checkpoint.

Stages, in order (:data:`STAGES`; steps per stage: :data:`DEFAULT_STEPS`):

1. ``video_vae``: the video VAE as a plain autoencoder on 17-frame pieces of clips (L1, pixels of the shape
   weighted up: it covers a few percent of the frame), with a little noise on the latent so the decoder forgives a
   sampler's small errors. Its latent statistics are then measured on whole clips, so normalised latents have unit
   spread per channel, as the released files' do.
2. ``audio_vae``: the audio VAE on half-second pieces of log-mel (L1), the same way.
3. ``vocoder``: the mel -> 16 kHz generator on quarter-second pieces starting on mel frame boundaries, with the
   waveform's L1 (the world's sounds are phase-locked to those boundaries) and multi-resolution STFT magnitude
   losses (no adversary), half of each batch holding a click, half of it decoded by the audio VAE from a latent
   whose changes over time are overdone, as guided sampling overdoes them (:data:`VOCODER_EXAGGERATION`). The
   bandwidth extension learns nothing (the world has nothing above 8 kHz): its output convolution is zero, so it
   passes the sinc-upsampled 16 kHz signal through.
4. ``video_clips``: the video VAE, encoder and decoder, on whole 49-frame clips at full size, the shape weighted
   only 3x: stage 1's pieces of at most 9 frames never show the encoder a third latent frame, and on whole clips
   its later latent frames came out faint and late (the shape's mark fell from 0.9 to 0.16 over the 7 frames; a
   decoded ball stayed where it started). 107 of these steps made every moving clip of 16 round-trip its
   direction (from 11) and the pictures 25.2 -> 26.8 dB. Half of its clips bounce (:data:`CLIP_BOUNCE_SHARE`).
5. ``latents``: a fixed set of training clips encoded once (video and audio latents), the transformer's data.
6. ``transformer``: the text connectors and the transformer together, by flow matching exactly as the sampler
   steps: ``x_t = (1 - t) x0 + t n`` per token with ``t = mask * sigma``, velocity target ``n - x0``; a share of
   clips keep their first latent frame clean (mask 0, as image conditioning does), a share see the negative prompt
   instead of their caption (so classifier-free guidance has an unconditional model), and a share run with the
   two streams isolated (so modality guidance has its isolated prediction). Tokens weigh more the more they differ
   from the clip's typical token (the shape, the knocks: what the prompt decides). The frozen Gemma stand-in, whose
   tokenizer keeps the grammar's words whole and pads prompts to 128 tokens, supplies the hidden states.
7. ``pure_noise``: the transformer's first guess, every sample at sigma 1 from text alone (see :data:`DEFAULT_STEPS`).
8. ``settle``: the transformer stage's steps again, briefly, at a lower rate (see :data:`DEFAULT_STEPS`).

The model (:func:`demo_config`) keeps LTX-2.3's structure with the transformer 128 wide (8 heads of 16) in
:data:`DEMO_LAYERS` blocks: a velocity is a 128-channel vector per token, and a narrower stream could not carry the
noise it has to predict. Everything is deterministic from the seed on one thread: the data of step ``k`` of a
stage come from a generator seeded by the stage and ``k``, and a checkpoint holds the models, the optimiser and the
step, so a run resumed from its checkpoint is the run that was not interrupted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from . import demo_world as world
from .errors import InputError

log = logging.getLogger("ltx_av.demo")

DEMO_LAYERS = 4
DEMO_WIDTH = 128
DEMO_HEADS = DEMO_WIDTH // 16
DEMO_KEY = "ltx_av_demo"  # metadata entry of the trained file: what it is and how it was made
STAGES = ("video_vae", "audio_vae", "vocoder", "video_clips", "latents", "transformer", "pure_noise", "settle")
DEFAULT_STEPS = {
    "video_vae": 2500,
    "audio_vae": 800,
    "vocoder": 600,
    "video_clips": 250,
    "latents": 150,
    "transformer": 3000,
    "pure_noise": 6000,
    "settle": 1000,
}
# The settle stage: the transformer stage's own steps again (every noise level, first frames, negatives), briefly and
# at a lower rate, after pure_noise. Trained last at sigma 1 only, the model leant on the text at every noise level:
# sampling from a real bounce noised to sigma 0.665 gave back the caption's average bounce (contact 93 px where the
# VAE's round trip has 103), and every held-out bounce came out flat (0 of 4). 500 such steps after it (the third
# from-scratch run) kept the moves and colours and brought the bounces back (4 of 4; the contact at 104), but the
# knocks did not follow under the release's audio guidance (CFG 7 amplified every cond/uncond difference: extra knocks
# at beep starts and one 0.4 s late, 2 of 8 bouncing clips right; 6 of 8 at CFG 3). 1000 steps: 7 of 8 at CFG 7
# (the shipped model: 23 of 24 held-out bouncing clips); a second run from scratch got 11 of 24, most of them lost to
# the vocoder's faint knocks at beep edges (see :data:`VOCODER_EXAGGERATION`: with it, 18 of 24).
# The pure_noise stage trains the transformer on its first guess only: every sample at sigma 1, from text alone.
# The transformer sees positions through RoPE, relative to each other, so with pure noise in it can tell *when* a
# token is only from the sequence's ends, and the world's captions need that (a clip that moves left shows the shape
# right of the centre early and left of it late). After the transformer stage alone its first guess was the same at
# every moment (demo_quality.time_awareness ~0 for every motion) and every clip generated from text kept the shape
# still at the centre (motion 0 % on the held-out captions). After 1,500 then 3,000 more steps at sigma 1 (two
# sittings, the connectors learning for the first 1,800 of each) the guess followed the motions (own 0.54-0.85
# against 0.21-0.28 for the other motions; up still 0.24), clips from text moved the right way in 7 of 12 moving
# held-out clips (bounces: 0 of 4, which the video VAE does not round-trip yet), and clips from a first frame went
# the world's way and distance. Mixing sigma 1 into the transformer stage (25 or 50 % of the samples) taught far
# less in the same steps (own 0.03-0.31). As one stage with the connectors learning for its first 1,800 steps only,
# left and right were not told apart (own 0.37-0.41 against 0.42-0.51 for another motion) and held-out motion stayed
# at 0-12 % (2,500 steps; 4,500 steps with first-frame samples kept), so the connectors now learn throughout it, as
# they did for 3,300 of the two sittings' 4,500 steps. One 4,500-step run so (from the same transformer) told them
# apart again (own 0.50 / 0.55 against 0.30 / 0.26) and moved 6 of 12 held-out moving clips the right way (left 0 of 4).
# With the shapeless captions (:data:`SHAPELESS_SHARE`), 6,000 steps instead of 4,500 on the same data and transformer
# stage moved 12 of 12 held-out moving clips the right way (from 9).
# The text connectors learn together with the transformer for this many steps of the transformer stage, then stay as
# they are: each step after that reads the prompts' contexts from a cache. Over 128 prompt tokens they cost little
# (a step took 0.45 s with them, 0.40 s without).
JOINT_TEXT_STEPS = 1800
# The demo's prompts are padded to this many tokens, not LTX's 1024: a caption is about ten tokens, and with 1024
# the text cross-attention starts with 99 % of its weight on the connectors' registers (a first run of 1,800 steps
# never learnt to look past them: every prompt made the same clip). One tile of the 128 registers.
PROMPT_TOKENS = 128
# Stages of earlier scripts and the stages that replaced them (a checkpoint stopped in one resumes with the other).
REPLACED = {"video_decoder": "video_clips"}
CHECKPOINT = "state.pt"
WEIGHTS = "ltx-2.3-demo.safetensors"
GEMMA = "gemma-demo"

Report = Callable[[str, int, int], None]


def demo_config() -> dict:
    """The demo checkpoint's ``metadata["config"]``: the LTX-2.3 stand-in's structure (lean video VAE, audio VAE,
    vocoder with bandwidth extension) with a 128-wide transformer of :data:`DEMO_LAYERS` blocks."""
    from .tiny import tiny_config

    config = tiny_config("LTX-2.3", DEMO_LAYERS, stand_in=True)
    # One width (128, which the latent statistics fix) at every level: a third of the weights and the work.
    config["audio_vae"]["model"]["params"]["ddconfig"]["ch_mult"] = [1, 1, 1]
    # The stand-in's vocoder halves its 64 channels six times, down to one channel at 16 kHz: too narrow to learn.
    # Four upsamplings (5 x 4 x 4 x 2 = the hop of 160) from 128 channels leave 8 at the output rate.
    config["vocoder"]["vocoder"].update(
        upsample_initial_channel=128, upsample_rates=[5, 4, 4, 2], upsample_kernel_sizes=[11, 8, 8, 4]
    )
    config["transformer"].update(
        num_attention_heads=DEMO_HEADS,
        attention_head_dim=16,
        audio_num_attention_heads=DEMO_HEADS,
        audio_attention_head_dim=16,
        cross_attention_dim=DEMO_WIDTH,
        audio_cross_attention_dim=DEMO_WIDTH,
        connector_num_attention_heads=DEMO_HEADS,
        connector_attention_head_dim=16,
        audio_connector_num_attention_heads=DEMO_HEADS,
        audio_connector_attention_head_dim=16,
    )
    return config


def build_models(seed: int) -> dict[str, torch.nn.Module]:
    """Freshly initialised modules of :func:`demo_config` (float32, CPU): random weights of a sensible scale
    (:func:`~.tiny.fill_deterministically`), the outputs that start a residual path at zero, real STFT bases."""
    from .audio_vae import AudioVAE
    from .config import AudioVAEConfig, TextEncoderConfig, TransformerConfig, VideoVAEConfig, VocoderConfig
    from .mel import mel_filterbank
    from .text_encoder import TextPath
    from .tiny import GEMMA_HIDDEN, GEMMA_STATES, _stft_bases, fill_deterministically
    from .transformer import AudioVideoTransformer
    from .video_vae import VideoVAE
    from .vocoder import build_vocoder

    config = demo_config()
    transformer_cfg = TransformerConfig.from_dict(config["transformer"])
    models = {
        "transformer": AudioVideoTransformer(transformer_cfg),
        "text_encoder": TextPath(
            TextEncoderConfig.from_dict(config["transformer"], (transformer_cfg.video_dim, GEMMA_HIDDEN * GEMMA_STATES))
        ),
        "video_vae": VideoVAE(VideoVAEConfig.from_dict(config["vae"])),
        "audio_vae": AudioVAE(AudioVAEConfig.from_dict(config["audio_vae"])),
        "vocoder": build_vocoder(VocoderConfig.from_dict(config["vocoder"])),
    }
    for i, module in enumerate(models.values()):
        fill_deterministically(module.float(), seed * 100 + i)
    with torch.no_grad():
        t = models["transformer"]
        for linear in (t.proj_out, t.audio_proj_out):  # velocity 0 at first: a calm start
            linear.weight.zero_()
            linear.bias.zero_()
        for name, p in t.named_parameters():
            if "scale_shift_table" in name:  # AdaLN starts as the identity (shift 0, scale 0, gate 0)
                p.zero_()
        for stats in (models["video_vae"].per_channel_statistics, models["audio_vae"].per_channel_statistics):
            stats.get_buffer("mean-of-means").zero_()
            stats.get_buffer("std-of-means").fill_(1.0)
        for vae in (models["video_vae"], models["audio_vae"]):
            for name, p in vae.named_parameters():
                if ".conv2." in name:  # every residual block starts as the identity: deep VAEs learn at once
                    p.zero_()
        vocoder = models["vocoder"]
        for name, p in vocoder.vocoder.named_parameters():
            if ".convs2." in name:  # the residual blocks start as the identity, as the VAEs' do
                p.zero_()
        # the output starts at about a tenth of full scale (2.0 without this): below the clamp to [-1, 1], whose
        # zero gradient would otherwise hold a saturated output there
        vocoder.vocoder.conv_post.weight.mul_(0.05)
        vocoder.bwe_generator.conv_post.weight.zero_()
        bwe = vocoder.config
        rate = bwe.generator.output_sampling_rate
        vocoder.mel_stft.stft_fn.forward_basis.copy_(_stft_bases(bwe.bwe_n_fft))
        vocoder.mel_stft.stft_fn.inverse_basis.copy_(_stft_bases(bwe.bwe_n_fft))
        vocoder.mel_stft.mel_basis.copy_(mel_filterbank(rate, bwe.bwe_n_fft, bwe.bwe_num_mels).float())
    return models


# -- data ----------------------------------------------------------------------------------------------------------


def _generator(seed: int, stage: str, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + STAGES.index(stage) * 10_007 + step) % 2**63)


def _scene_seed(g: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (), generator=g))


def _pixels(frames: torch.Tensor) -> torch.Tensor:
    """``[F, H, W, 3]`` in 0..1 -> the VAE's ``[3, F, H, W]`` in -1..1."""
    return frames.permute(3, 0, 1, 2) * 2.0 - 1.0


CROP = 128  # the video VAE trains on 128x128 crops around the shape: a quarter of the frame, all of the interest


def video_batch(
    g: torch.Generator, batch: int, frames: int, crop: int | None = CROP, bouncing: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixels ``[B, 3, frames, crop, crop]`` in -1..1, per-pixel loss weight ``[B, 1, frames, crop, crop]``):
    pieces of training clips starting at random frames, cropped (``crop`` None: whole frames) so the shape is
    inside at the piece's middle frame; the shape's pixels weighted 10x. ``bouncing``: the chance that a piece
    comes from a bouncing clip, else from a moving one (None: clips as the world draws them)."""
    clips, weights = [], []
    for _ in range(batch):
        scene = world.scene_from_seed(_scene_seed(g))
        if bouncing is not None:
            wanted = bool(torch.rand((), generator=g) < bouncing)
            while (scene.motion == "bounces") != wanted:
                scene = world.scene_from_seed(_scene_seed(g))
        start = int(torch.randint(0, world.FRAMES - frames + 1, (), generator=g))
        pixels = _pixels(world.render_frames(scene)[start : start + frames])
        if crop is not None:
            x, y = world.positions(scene, torch.tensor([(start + frames // 2) / world.FRAME_RATE]))
            jitter = torch.randint(24, crop - 24, (2,), generator=g).tolist()
            left = min(max(int(x) - jitter[0], 0), world.WIDTH - crop)
            top = min(max(int(y) - jitter[1], 0), world.HEIGHT - crop)
            pixels = pixels[:, :, top : top + crop, left : left + crop]
        shape = (pixels - (scene.background * 2 - 1)).abs().amax(0, keepdim=True) > 0.02
        clips.append(pixels)
        weights.append(1.0 + 9.0 * shape.float())
    return torch.stack(clips), torch.stack(weights)


# Samples per mel frame at the world's rate. Pieces of sound start on a frame boundary, where the world's sounds
# have the phase they have at the clip's start (:data:`~.demo_world.FRAME_HZ`).
MEL_HOP = int(world.SAMPLE_RATE / world.FRAME_HZ)


def audio_batch(g: torch.Generator, batch: int, seconds: float, clicks: int = 0) -> torch.Tensor:
    """Stereo pieces ``[B, 2, N]`` at 16 kHz of training clips' sound, starting on mel frame boundaries; the first
    ``clicks`` of them from bouncing clips, each holding a bounce's click (a click is otherwise in one piece of
    twenty)."""
    n = int(seconds * world.SAMPLE_RATE)
    out = []
    for i in range(batch):
        scene = world.scene_from_seed(_scene_seed(g))
        while i < clicks and not world.bounce_times(scene):
            scene = world.scene_from_seed(_scene_seed(g))
        waveform = world.render_audio(scene)
        lo, hi = 0, waveform.shape[1] - n
        if i < clicks:
            times = world.bounce_times(scene)
            at = int(times[int(torch.randint(len(times), (), generator=g))] * world.SAMPLE_RATE)
            lo, hi = max(lo, at - n + n // 4), min(hi, at - n // 8)
        start = int(torch.randint(lo, max(lo, hi) + 1, (), generator=g)) // MEL_HOP * MEL_HOP
        out.append(waveform[:, start : start + n])
    return torch.stack(out)


# -- losses --------------------------------------------------------------------------------------------------------


# Magnitudes below this count as silence in the STFT loss: noise of about 1 % of full scale (-40 dB) in a window.
# A lower floor (1e-5) makes the log term of the silent bins, most of the world's spectrum, outweigh the rest, and
# the quickest way down is an output 40 dB too quiet.
STFT_FLOOR = 0.1


def stft_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss of waveforms ``[B, C, N]``: spectral convergence plus log-magnitude L1 at three
    window sizes."""
    total = predicted.new_zeros(())
    p, t = predicted.flatten(0, 1), target.flatten(0, 1)
    for n_fft in (256, 512, 1024):
        window = torch.hann_window(n_fft, device=p.device)
        sp = torch.stft(p, n_fft, n_fft // 4, window=window, return_complex=True).abs().clamp_min(STFT_FLOOR)
        st = torch.stft(t, n_fft, n_fft // 4, window=window, return_complex=True).abs().clamp_min(STFT_FLOOR)
        total = total + (st - sp).norm() / st.norm().clamp_min(1e-5) + (st.log() - sp.log()).abs().mean()
    return total / 3


# -- the stages ----------------------------------------------------------------------------------------------------


@dataclass
class TrainState:
    """What a checkpoint holds: the stage being trained, its next step, every module's weights, the optimiser of
    the current stage, and per stage the losses logged, the seconds spent and the torch thread counts it ran on."""

    stage: str
    step: int
    models: dict[str, torch.nn.Module]
    optimizer: torch.optim.Optimizer | None
    history: dict[str, list[tuple[int, float]]]
    seconds: dict[str, float]
    threads: dict[str, list[int]] = field(default_factory=dict)


# What each stage trains (model names of build_models) and at what peak learning rate; the latents stage trains
# nothing. The vocoder stage's optimiser takes the vocoder proper, not the bandwidth extension around it.
STAGE_TRAINS = {
    "video_vae": (("video_vae",), 1e-3),
    "audio_vae": (("audio_vae",), 5e-4),
    "vocoder": (("vocoder",), 1e-3),
    "video_clips": (("video_vae",), 3e-4),
    "transformer": (("transformer", "text_encoder"), 1e-3),
    "pure_noise": (("transformer", "text_encoder"), 1e-3),
    "settle": (("transformer", "text_encoder"), 3e-4),
}


def _optimizer(stage: str, models: dict[str, torch.nn.Module]) -> torch.optim.Optimizer | None:
    if stage not in STAGE_TRAINS:
        return None
    names, lr = STAGE_TRAINS[stage]
    params = [p for name in names for p in (models[name].vocoder if name == "vocoder" else models[name]).parameters()]
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)


def _lr_factor(step: int, steps: int) -> float:
    """Linear warm-up over the first 5 %, then a cosine decay to a tenth."""
    warm = max(1, steps // 20)
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, steps - warm)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _reconstruction_loss(decoded: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    error = decoded - target
    return ((error.abs() + error.square()) * weight).mean() / weight.mean()


def _video_vae_step(models, g: torch.Generator, step: int) -> torch.Tensor:
    """Eight single frames (the causal VAE's first frame stands alone) and, every other step, a 9-frame piece (the
    temporal compression), all as crops."""
    vae = models["video_vae"]
    loss = 0.0
    for batch, frames in ((8, 1), (1, 9)) if step % 2 else ((8, 1),):
        pixels, weight = video_batch(g, batch, frames)
        z = vae.encoder(pixels)
        noisy = z + 0.05 * z.detach().std() * torch.randn(z.shape, generator=g)
        loss = loss + _reconstruction_loss(vae.decoder(noisy, None), pixels, weight) + 1e-4 * z.square().mean()
    return loss


# Share of the video_clips stage's clips that bounce (the world draws one in five). A bounce turns round within
# one latent frame of 8 pictures, the hardest thing the encoder has to keep; at the world's own share the second
# run's VAE brought back 6 of 10 bounces with the contact some 25 px above the floor, and the transformer, whose
# samples followed the VAE's round trip to within a few pixels, could do no better (0 of 4 held-out bounces).
# 100 more steps with half the clips bouncing: 9 of 10, the contact 5-10 px lower, moves 8 of 8 still.
CLIP_BOUNCE_SHARE = 0.5


def _video_clips_step(models, g: torch.Generator) -> torch.Tensor:
    """One whole clip through the encoder and the decoder."""
    vae = models["video_vae"]
    pixels, weight = video_batch(g, 1, world.FRAMES, crop=None, bouncing=CLIP_BOUNCE_SHARE)
    return _reconstruction_loss(vae.decoder(vae.encoder(pixels), None), pixels, 1.0 + (weight - 1.0) * (2.0 / 9.0))


def _whole_latents(mel: torch.Tensor) -> torch.Tensor:
    """``mel`` ``[B, 2, T, M]`` cut to whole audio latents: 4k + 1 mel frames."""
    return mel[:, :, : (mel.shape[2] - 1) // 4 * 4 + 1]


def _audio_vae_step(models, g: torch.Generator) -> torch.Tensor:
    vae = models["audio_vae"]
    with torch.no_grad():
        mel = _whole_latents(vae.waveform_to_mel(audio_batch(g, 2, 0.5), world.SAMPLE_RATE))
    z = vae.encoder(mel)
    z = z + 0.05 * torch.randn(z.shape, generator=g)
    decoded = vae.decoder(z)[:, :, : mel.shape[2], : mel.shape[3]]
    return (decoded - mel).abs().mean() + 1e-4 * z.square().mean()


# The waveform L1's weight beside the STFT loss (about 1 at the start each). With magnitudes alone the vocoder never
# found the phase of anything above the hum in 2,400 steps: the beeps came out 40 dB short, the clicks silent. (A
# loss on the clicks' band energy, tried beside it, silenced the beeps instead: its log punished their faint leak.)
WAVEFORM_WEIGHT = 10.0
PADDED_FRAMES = 3  # mel frames at each end of a piece that see its reflect padding


# The vocoder also learns from mels a sampled latent would decode to: half of each batch goes through the audio VAE
# with the latent's changes over time scaled up by 1 to this factor, the target still the world's waveform. Guided
# sampling (audio CFG 7) overshoots the world's beeps: in the second from-scratch run's clips the beep edges held
# about 1.6 times the world's share of what sets a knock apart, and the vocoder, trained on the world's mels alone,
# rendered the edges of the low beeps near the floor as faint 700 Hz ticks -- knocks where none belongs, in 9 of 12
# held-out bouncing clips with beeps. (Plain noise on the latent, up to 0.3 or 0.6 of its spread, did not hold: the
# same sampled latents scored 14 and 22 of 24 with the shipped run, 18 and 11 with the second, against 23 and 11.)
# With this, chosen on bouncing clips of the training captions, the held-out ones: 23 and 18 of 24.
VOCODER_EXAGGERATION = 1.6


def _exaggerate_some(audio_vae, mel: torch.Tensor, g: torch.Generator, frames: int) -> torch.Tensor:
    """``mel`` ``[B, 2, T, M]`` with its odd pieces (one with a click, one without) replaced by the audio VAE's decode
    of their latent with its changes over time scaled up by 1 to :data:`VOCODER_EXAGGERATION`."""
    z = audio_vae.encoder(_whole_latents(mel[1::2]))
    mean = z.mean(2, keepdim=True)
    scale = 1 + torch.rand(z.shape[0], 1, 1, 1, generator=g) * (VOCODER_EXAGGERATION - 1)
    decoded = audio_vae.decoder(mean + scale * (z - mean))[:, :, :frames, : mel.shape[3]]
    out = mel[:, :, :frames].clone()
    out[1::2] = decoded
    return out


def _vocoder_step(models, g: torch.Generator) -> torch.Tensor:
    vocoder = models["vocoder"]
    audio_vae = models["audio_vae"]
    waveform = audio_batch(g, 4, 0.3, clicks=2)
    frames = 24  # 0.24 s of mel frames, inside the piece
    with torch.no_grad():
        mel = audio_vae.waveform_to_mel(waveform, world.SAMPLE_RATE)
        if VOCODER_EXAGGERATION > 1:
            mel = _exaggerate_some(audio_vae, mel, g, frames)
    mel = mel[:, :, :frames]
    predicted = vocoder.vocoder(mel)  # [B, 2, frames * 160] at 16 kHz
    target = waveform[..., : predicted.shape[-1]]
    # The world's sound follows from its mel frames sample by sample (its phase is fixed to the frame boundaries),
    # so the waveform itself is a target; the first and last frames' mel is reflect-padded, not the clip's.
    inner = slice(PADDED_FRAMES * MEL_HOP, predicted.shape[-1] - PADDED_FRAMES * MEL_HOP)
    waveform_l1 = (predicted[..., inner] - target[..., inner]).abs().mean()
    return stft_loss(predicted, target) + WAVEFORM_WEIGHT * waveform_l1


@torch.no_grad()
def _measure_statistics(models, seed: int, clips: int = 24) -> None:
    """Set both VAEs' latent statistics (per-channel mean and spread of the raw latent means over whole clips)."""
    g = _generator(seed, "latents", 10**6)
    video, audio = [], []
    for _ in range(clips):
        scene = world.scene_from_seed(_scene_seed(g))
        video.append(models["video_vae"].encoder(_pixels(world.render_frames(scene))[None]))
        mel = models["audio_vae"].waveform_to_mel(world.render_audio(scene)[None], world.SAMPLE_RATE)
        audio.append(models["audio_vae"].encoder(mel))
    v = torch.cat(video).transpose(0, 1).flatten(1)  # [128, ...]
    stats = models["video_vae"].per_channel_statistics
    stats.get_buffer("mean-of-means").copy_(v.mean(1))
    stats.get_buffer("std-of-means").copy_(v.std(1).clamp_min(1e-3))
    a = torch.cat(audio)  # [N, 8, T, 16] -> per (channel, bin), flat channel-major
    stats = models["audio_vae"].per_channel_statistics
    stats.get_buffer("mean-of-means").copy_(a.mean((0, 2)).flatten())
    stats.get_buffer("std-of-means").copy_(a.std((0, 2)).flatten().clamp_min(1e-3))


LATENT_CLIPS_PER_STEP = 2


@torch.no_grad()
def _latents_step(models, g: torch.Generator, dataset: dict) -> None:
    """Encode the next clips of the transformer's data set (their scene seeds come from the step's generator)."""
    from .latents import audio_latent_length

    length = audio_latent_length(world.FRAMES, world.FRAME_RATE)
    for _ in range(LATENT_CLIPS_PER_STEP):
        scene = world.scene_from_seed(_scene_seed(g))
        video = models["video_vae"].encode(_pixels(world.render_frames(scene))[None])
        mel = models["audio_vae"].waveform_to_mel(world.render_audio(scene)[None], world.SAMPLE_RATE)
        audio = models["audio_vae"].encode(mel)[:, :, :length]
        dataset["video"].append(video[0].clone())
        dataset["audio"].append(audio[0].clone())
        dataset["captions"].append(scene.caption)


def _flow_sigmas(g: torch.Generator, batch: int) -> torch.Tensor:
    """Noise levels in (0, 1], shifted toward high noise (shift 3) as the LTX-2 schedule's steps are, with a tenth
    drawn uniformly so low noise is never unseen."""
    u = torch.rand(batch, generator=g)
    shifted = 3.0 * u / (1.0 + 2.0 * u)
    plain = torch.rand(batch, generator=g)
    pick = torch.rand(batch, generator=g) < 0.1
    return torch.where(pick, plain, shifted).clamp(1e-3, 1.0)


NEGATIVE_SHARE = 0.15
FIRST_FRAME_SHARE = 0.3
ISOLATED_SHARE = 0.1
# Share of the (non-negative) samples whose caption loses its shape word ("a blue moves left, low hum"), so the colour
# must come from the colour word alone. Without it the model also read colour from the shape word, which the
# training pairs correlate with it, and held-out pairs could come out in a colour their shape was trained with: two
# runs of the same recipe differing only in the world's bounce got 16/16 and 12/16 of the held-out clips' colours
# right (the second drew every blue ball green). The second run's transformer stages again with this: 16/16.
SHAPELESS_SHARE = 0.25
TRANSFORMER_BATCH = 4
SHAPE_WEIGHT = 9.0


def _contexts(models, gemma, captions: list[str], cache: dict | None):
    """The text contexts of ``captions``: through the connectors with gradients, or (``cache`` given) from the
    cache, filled on first use without gradients."""
    from .text_encoder import TextContexts

    if cache is None:
        with torch.no_grad():
            hidden = gemma.encode(captions)
        return models["text_encoder"](hidden)
    for caption in captions:
        if caption not in cache:
            with torch.no_grad():
                cache[caption] = models["text_encoder"](gemma.encode([caption]))
    return TextContexts(torch.cat([cache[c].video for c in captions]), torch.cat([cache[c].audio for c in captions]))


def _transformer_step(
    models, g: torch.Generator, dataset: dict, gemma, cache: dict | None, pure_noise: bool = False
) -> torch.Tensor:
    """One flow-matching step on a batch of the data set (``pure_noise``: every sample at sigma 1 from text alone,
    see :data:`DEFAULT_STEPS`' ``pure_noise`` stage)."""
    from .conditioning import audio_state, video_state
    from .perturbations import Perturbations, isolate_modalities
    from .pipeline import TINY_NEGATIVE_PROMPT
    from .transformer import StreamInput

    b = TRANSFORMER_BATCH
    index = torch.randint(0, len(dataset["video"]), (b,), generator=g).tolist()
    video = torch.stack([dataset["video"][i] for i in index])
    audio = torch.stack([dataset["audio"][i] for i in index])
    drop = (torch.rand(b, generator=g) < NEGATIVE_SHARE).tolist()
    captions = [TINY_NEGATIVE_PROMPT if d else dataset["captions"][i] for i, d in zip(index, drop, strict=True)]
    shapeless = (torch.rand(b, generator=g) < SHAPELESS_SHARE).tolist()
    captions = [world.without_shape(c) if s and not d else c for c, s, d in zip(captions, shapeless, drop, strict=True)]
    contexts = _contexts(models, gemma, captions, cache)

    v_state = video_state(video, world.FRAME_RATE)
    a_state = audio_state(audio)
    f, h, w = v_state.grid
    mask = torch.ones(b, f * h * w)
    first = torch.rand(b, generator=g) < FIRST_FRAME_SHARE
    sigma = _flow_sigmas(g, b)
    if pure_noise:
        first[:], sigma = False, torch.ones(b)
    mask[first, : h * w] = 0.0  # the first latent frame given clean, as an image condition at frame 0
    v_noise = torch.randn(v_state.latent.shape, generator=g)
    a_noise = torch.randn(a_state.latent.shape, generator=g)
    v_t = mask * sigma[:, None]
    a_t = sigma[:, None].expand(b, a_state.latent.shape[1])
    v_x = v_state.latent + v_t[..., None] * (v_noise - v_state.latent)
    a_x = a_state.latent + a_t[..., None] * (a_noise - a_state.latent)
    isolated = bool(torch.rand((), generator=g) < ISOLATED_SHARE)
    perturbations = Perturbations.same(b, isolate_modalities()) if isolated else None
    v_in = StreamInput(v_x, sigma, v_t, v_state.positions, contexts.video, keyframes=v_state.keyframes)
    a_in = StreamInput(a_x, sigma, a_t.contiguous(), a_state.positions, contexts.audio)
    v_vel, a_vel = models["transformer"](v_in, a_in, perturbations)
    v_err = (v_vel - (v_noise - v_state.latent)).square().mean(-1)
    a_err = (a_vel - (a_noise - a_state.latent)).square().mean(-1)
    v_weight = mask * _salience_weight(v_state.latent)
    a_weight = _salience_weight(a_state.latent)
    return (v_err * v_weight).sum() / v_weight.sum() + (a_err * a_weight).sum() / a_weight.sum()


def _salience_weight(clean: torch.Tensor) -> torch.Tensor:
    """Per-token loss weights ``[B, N]`` of clean latents ``[B, N, C]``: from 1 up to ``SHAPE_WEIGHT + 1`` by how far
    a token is from the clip's typical token. The shape is a few tokens of each latent frame and the plain
    background all the rest: weighted evenly, the loss is nearly all background, which no prompt changes, and a first
    run learnt to ignore the prompt (its video velocity moved by 0.1 % between prompts). The sound's knocks are as
    rare in its tokens."""
    salience = (clean - clean.median(dim=1, keepdim=True).values).square().mean(-1)
    return 1.0 + SHAPE_WEIGHT * salience / salience.amax(dim=1, keepdim=True).clamp_min(1e-6)


# -- the loop ------------------------------------------------------------------------------------------------------


def _save(path: str, state: TrainState, dataset: dict | None) -> None:
    payload = {
        "stage": state.stage,
        "step": state.step,
        "models": {k: m.state_dict() for k, m in state.models.items()},
        "optimizer": state.optimizer.state_dict() if state.optimizer is not None else None,
        "history": state.history,
        "seconds": state.seconds,
        "threads": state.threads,
        "dataset": dataset,
    }
    partial = path + ".partial"
    torch.save(payload, partial)
    os.replace(partial, path)


def _ensure_gemma(work: str, seed: int) -> str:
    """The frozen Gemma stand-in the model trains with: random weights, and a tokenizer that keeps each word of the
    world's grammar whole (a colour, a shape, a direction as one token each, as a real tokenizer would; bytes alone
    would leave the toy model to spell), whose words do not mix: with random attention, a word's hidden states also
    carried the words before it (the states of "square" after four colours spread about half as far as "square" from
    "ball"), so a colour-shape pair held out of training reached the model as new states at every later word, and
    held-out clips took the colour the shape was trained with (25-50 % right)."""
    from .tiny import write_tiny_gemma

    folder = os.path.join(work, GEMMA)
    if not os.path.isfile(os.path.join(folder, "model.safetensors")):
        write_tiny_gemma(
            folder,
            seed,
            words=world.vocabulary(),
            note="random weights, the demo world's words as tokens; written by python -m ltx_av train-demo",
            max_length=PROMPT_TOKENS,
            contextual=False,
        )
    return folder


# The stages the second process of ``processes=2`` trains. They train only the audio VAE and the vocoder, each step's
# data come from the stage's own generator, and every module starts from the seed, so the result is the one
# process's, bit for bit. The video VAE's stage is the longest (28 min on the 2-core test machine against 17 for
# both audio stages), so the helper is done by the time the video VAE is.
AUDIO_STAGES = ("audio_vae", "vocoder")
HELPER = "audio"


def _audio_helper(work: str, steps: dict[str, int], seed: int, save_seconds: float) -> None:
    import multiprocessing
    import threading

    # A parent killed outright (SIGKILL, a closed terminal) runs no cleanup, so without this the helper would go on
    # training alone; the checkpoint it may be writing is replaced atomically, so leaving at any moment is safe.
    parent = multiprocessing.parent_process()
    threading.Thread(target=_leave_with, args=(parent,), daemon=True).start()
    torch.set_num_threads(1)
    train_demo(work, steps={**steps, "video_vae": 0}, seed=seed, save_seconds=save_seconds, stop_after=AUDIO_STAGES[-1])


def _leave_with(parent) -> None:
    parent.join()
    os._exit(1)


def _start_audio_helper(work: str, steps: dict[str, int], seed: int, save_seconds: float):
    import multiprocessing

    helper = multiprocessing.get_context("spawn").Process(
        target=_audio_helper, args=(os.path.join(work, HELPER), steps, seed, save_seconds), daemon=True
    )
    helper.start()
    log.info("training %s in a second process (pid %d) in %s", " and ".join(AUDIO_STAGES), helper.pid, HELPER)
    return helper


def _take_audio(work: str, state: TrainState, steps: dict[str, int], helper) -> bool:
    """Put the audio helper's finished stages into ``state`` (waiting for it first); False when there is no helper
    and no finished helper's checkpoint, so the stages train here."""
    path = os.path.join(work, HELPER, CHECKPOINT)
    if helper is not None:
        helper.join()
        if helper.exitcode != 0:
            raise RuntimeError(
                f"the second process training {' and '.join(AUDIO_STAGES)} failed (exit status {helper.exitcode}); "
                f"its checkpoint in {os.path.dirname(path)} resumes when train-demo runs again"
            )
    if not os.path.exists(path):
        return False
    saved = torch.load(path, weights_only=False)
    last = AUDIO_STAGES[-1]
    if saved["stage"] != last or saved["step"] != steps[last]:
        if helper is None:
            return False  # an unfinished helper's run from another command: train here instead
        raise RuntimeError(f"the second process stopped in {saved['stage']} at step {saved['step']} of {path}")
    for stage in AUDIO_STAGES:  # each stage trains the module of its name
        state.history[stage], state.seconds[stage] = saved["history"][stage], saved["seconds"][stage]
        state.threads[stage] = saved.get("threads", {}).get(stage, [])
        state.models[stage].load_state_dict(saved["models"][stage])
    state.stage, state.step = last, steps[last]
    log.info("took %s from the second process", " and ".join(AUDIO_STAGES))
    return True


def train_demo(
    work: str,
    *,
    steps: dict[str, int] | None = None,
    seed: int = 0,
    report: Report | None = None,
    save_seconds: float = 120.0,
    stop_after: str | None = None,
    statistics_clips: int = 24,
    processes: int = 1,
) -> str | None:
    """Train (or go on training) the demo model in the folder ``work``: the checkpoint ``state.pt`` there is resumed
    when present; ``steps`` overrides :data:`DEFAULT_STEPS` per stage. The checkpoint is written every
    ``save_seconds`` and at the end of every stage. ``stop_after``: return after this stage. ``statistics_clips``: how
    many whole clips the latent statistics are measured on. ``processes`` 2: the audio stages train in a second
    process (in ``work/audio``, on one thread) while this one trains the video VAE on one thread, and this one takes
    their result when it comes to them: the same model as in one process, its first three stages in the video
    VAE's time (see :data:`AUDIO_STAGES`). Returns the path of the
    exported weights (``ltx-2.3-demo.safetensors`` beside the Gemma stand-in ``gemma-demo/``) when every stage is
    done, else None."""
    from .gemma import load_gemma

    steps = {**DEFAULT_STEPS, **(steps or {})}
    unknown = sorted(set(steps) - set(STAGES))
    if unknown:
        raise InputError(f"steps names unknown stages {unknown}; the stages are {STAGES}")
    report = report or (lambda stage, done, total: None)
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, CHECKPOINT)
    models = build_models(seed)
    dataset: dict = {"video": [], "audio": [], "captions": []}
    state = TrainState(STAGES[0], 0, models, None, {s: [] for s in STAGES}, {s: 0.0 for s in STAGES})
    saved = None
    if os.path.exists(path):
        saved = torch.load(path, weights_only=False)
        for k, m in models.items():
            m.load_state_dict(saved["models"][k])
        state.stage, state.step = saved["stage"], saved["step"]
        if state.stage in REPLACED:  # an older script's stage: its successor starts afresh
            state.stage, state.step, saved["optimizer"] = REPLACED[state.stage], 0, None
        if state.stage not in STAGES:
            raise InputError(f"{path} stopped in stage {state.stage!r}, which train-demo no longer has ({STAGES})")
        # a checkpoint of an earlier script may lack a stage added since (it then runs in its turn)
        state.history = {s: saved["history"].get(s, []) for s in STAGES}
        state.seconds = {s: saved["seconds"].get(s, 0.0) for s in STAGES}
        state.threads = {s: list(saved.get("threads", {}).get(s, [])) for s in STAGES}
        dataset = saved["dataset"] or dataset
        log.info("resuming %s at step %d from %s", state.stage, state.step, path)
    gemma = load_gemma(_ensure_gemma(work, seed), dtype=torch.float32, device="cpu")
    text_cache: dict = {}
    helper = None
    threads = torch.get_num_threads()
    if processes > 1 and STAGES.index(state.stage) < STAGES.index(AUDIO_STAGES[0]):
        helper = _start_audio_helper(work, steps, seed, save_seconds)
        torch.set_num_threads(1)  # the other core is the helper's
    try:
        for stage in STAGES[STAGES.index(state.stage) :]:
            total = steps[stage]
            if stage == AUDIO_STAGES[0] and (state.stage != stage or state.step == 0):
                if _take_audio(work, state, steps, helper):  # the vocoder's turn below saves and stops if asked
                    torch.set_num_threads(threads)
                    if stop_after == stage:
                        _save(path, state, dataset)
                        return None
                    continue
            if stage != state.stage:
                state.stage, state.step = stage, 0
            trained = STAGE_TRAINS[stage][0] if stage in STAGE_TRAINS else ()
            for name, m in models.items():
                trains = name in trained
                m.train(trains)
                m.requires_grad_(trains)
            state.optimizer = _optimizer(stage, models)
            if saved is not None and saved["stage"] == stage and saved["optimizer"] is not None:
                state.optimizer.load_state_dict(saved["optimizer"])
            saved = None
            if stage == "latents" and state.step == 0:
                _measure_statistics(models, seed, statistics_clips)
            text_cache.clear()  # the connectors learn again in each transformer stage (see JOINT_TEXT_STEPS)
            last_save = time.monotonic()
            started = time.monotonic()
            running = None
            if state.step < total:
                _note_threads(state, stage)
            report(stage, state.step, total)
            while state.step < total:
                g = _generator(seed, stage, state.step)
                if stage == "latents":
                    _latents_step(models, g, dataset)
                else:
                    for group in state.optimizer.param_groups:
                        group.setdefault("base_lr", group["lr"])
                        group["lr"] = group["base_lr"] * _lr_factor(state.step, total)
                    if stage == "video_vae":
                        loss = _video_vae_step(models, g, state.step)
                    elif stage == "audio_vae":
                        loss = _audio_vae_step(models, g)
                    elif stage == "vocoder":
                        loss = _vocoder_step(models, g)
                    elif stage == "video_clips":
                        loss = _video_clips_step(models, g)
                    else:
                        joint = state.step < JOINT_TEXT_STEPS or stage == "pure_noise"
                        cache = None if joint else text_cache
                        loss = _transformer_step(models, g, dataset, gemma, cache, pure_noise=stage == "pure_noise")
                    if not torch.isfinite(loss):
                        raise RuntimeError(f"{stage}: the loss became {float(loss)} at step {state.step}")
                    state.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(
                        [p for grp in state.optimizer.param_groups for p in grp["params"]], 1.0
                    )
                    state.optimizer.step()
                    value = float(loss.detach())
                    running = value if running is None else 0.95 * running + 0.05 * value
                    if state.step % 25 == 0 or state.step == total - 1:
                        state.history[stage].append((state.step, running))
                        log.info("%s step %d/%d loss %.4f", stage, state.step + 1, total, running)
                state.step += 1
                now = time.monotonic()
                state.seconds[stage] += now - started
                started = now
                report(stage, state.step, total)
                if now - last_save > save_seconds and state.step < total:
                    _save(path, state, dataset)
                    last_save = time.monotonic()
            _save(path, state, dataset)
            if stop_after == stage:
                return None
        return export(work, models, state, steps, seed)
    finally:
        if helper is not None and helper.is_alive():  # interrupted: the helper's checkpoint resumes next time
            helper.terminate()
            helper.join()
        torch.set_num_threads(threads)


def _note_threads(state: TrainState, stage: str) -> None:
    """Record the torch thread count ``stage`` runs on now; warn when a resumed stage goes on with another one."""
    used = state.threads.setdefault(stage, [])
    threads = torch.get_num_threads()
    if used and threads not in used:
        # a sum split over another number of threads adds its parts in another order
        log.warning(
            "%s started on %d torch thread(s) and goes on with %d: the model will differ from an uninterrupted run's "
            "in its last bits and so in everything trained after it; resume with --threads %d (and the same "
            "--processes) to keep it bit for bit",
            stage,
            used[-1],
            threads,
            used[-1],
        )
    if threads not in used:
        used.append(threads)


def export(work: str, models: dict[str, torch.nn.Module], state: TrainState, steps: dict[str, int], seed: int) -> str:
    """Write the trained model as an official LTX-2.3 single-file checkpoint in float16 (config, version and how it
    was trained in the metadata) beside its Gemma stand-in. float16 rather than the releases' bfloat16: the same
    size, and its finer mantissa keeps a toy model's small weights (none comes near float16's range limit)."""
    from .tiny import MODEL_VERSIONS, _save_atomically, to_file_key

    tensors = {}
    for component, module in models.items():
        for key, value in module.state_dict().items():
            if value.is_floating_point() and float(value.detach().abs().max()) > torch.finfo(torch.float16).max:
                raise RuntimeError(f"{component}.{key} holds values beyond float16's range; the export cannot keep it")
            tensors[to_file_key(component, key)] = value.detach().to(torch.float16).contiguous().clone()
    note = {
        "what": "the built-in demo model of python -m ltx_av generate, trained by python -m ltx_av train-demo on the "
        "procedural world of ltx_core/demo_world.py",
        "seed": seed,
        "steps": dict(steps),
        "seconds": {s: round(v, 1) for s, v in state.seconds.items()},
        "final_loss": {s: round(state.history[s][-1][1], 5) for s in STAGES if state.history[s]},
        "threads": {s: v for s, v in state.threads.items() if v},
    }
    metadata = {
        "config": json.dumps(demo_config()),
        "model_version": MODEL_VERSIONS["LTX-2.3"],
        DEMO_KEY: json.dumps(note),
    }
    path = _save_atomically(tensors, os.path.join(work, WEIGHTS), metadata)
    gemma = os.path.join(work, GEMMA)
    if not os.path.isdir(gemma):
        raise RuntimeError(f"the Gemma stand-in the model was trained with is missing: {gemma}")
    return path


def copy_weights(work: str, destination: str) -> None:
    """Copy the exported weights and their Gemma stand-in from ``work`` into ``destination``."""
    os.makedirs(destination, exist_ok=True)
    shutil.copy2(os.path.join(work, WEIGHTS), os.path.join(destination, WEIGHTS))
    shutil.copytree(os.path.join(work, GEMMA), os.path.join(destination, GEMMA), dirs_exist_ok=True)
