"""Audio decoding: full-size audio VAE decoder and both vocoders, ours against ltx-core 1.0.0, float32.

The checkpoint is written once into the work folder in the official layout with the released audio sizes (audio
VAE ch 128 x [1, 2, 4], 2 res blocks; HiFi-GAN 1024 channels x [6, 5, 2, 2, 2]; BigVGAN 1536 x [5, 2, 2, 2, 2, 2]
+ BWE 512 x [6, 5, 2, 2, 2]) and deterministic weights (vocoder conv weights scaled so activations stay O(1)
like a trained model's). Both sides load the same file (ours through our loader, the reference through its
builder) and get the same input: 5 s of latents (125 frames -> 497 mel frames) or, for the vocoders, a log-mel
of that length. Peak memory is the growth of the resident set (or CUDA allocator peak) during the timed calls.
"""

from __future__ import annotations

import json
import math
import os

import torch

from .runner import Case

LATENTS_PER_SECOND = 25


def _audio_vae_config() -> dict:
    return {
        "model": {
            "params": {
                "ddconfig": {
                    "ch": 128,
                    "ch_mult": [1, 2, 4],
                    "num_res_blocks": 2,
                    "in_channels": 2,
                    "out_ch": 2,
                    "z_channels": 8,
                    "double_z": True,
                    "resolution": 256,
                    "attn_resolutions": [],
                    "mid_block_add_attention": False,
                    "norm_type": "pixel",
                    "causality_axis": "height",
                    "mel_bins": 64,
                    "dropout": 0.0,
                },
                "sampling_rate": 16000,
            }
        },
        "preprocessing": {"stft": {"hop_length": 160, "filter_length": 1024, "causal": True}},
    }


def _vocoder_config(variant: str) -> dict:
    common = {"resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5]] * 3, "stereo": True}
    if variant == "LTX-2":
        return {
            **common,
            "upsample_rates": [6, 5, 2, 2, 2],
            "upsample_kernel_sizes": [16, 15, 8, 4, 4],
            "upsample_initial_channel": 1024,
            "resblock": "1",
            "output_sampling_rate": 24000,
        }
    amp = {
        **common,
        "resblock": "AMP1",
        "activation": "snakebeta",
        "use_tanh_at_final": False,
        "use_bias_at_final": False,
    }
    return {
        "vocoder": {
            **amp,
            "upsample_rates": [5, 2, 2, 2, 2, 2],
            "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4],
            "upsample_initial_channel": 1536,
        },
        "bwe": {
            **amp,
            "upsample_rates": [6, 5, 2, 2, 2],
            "upsample_kernel_sizes": [12, 11, 4, 4, 4],
            "upsample_initial_channel": 512,
            "input_sampling_rate": 16000,
            "output_sampling_rate": 48000,
            "n_fft": 512,
            "hop_length": 80,
            "num_mels": 64,
        },
    }


def write_checkpoint(path: str, variant: str) -> None:
    """Audio VAE + vocoder of ``variant`` at released sizes, official keys, config in the metadata."""
    from safetensors.torch import save_file

    import tiny_models

    config = {"audio_vae": _audio_vae_config(), "vocoder": _vocoder_config(variant)}
    parts = {}
    for i, name in enumerate(("audio_encoder", "audio_decoder", "vocoder")):
        module = tiny_models.REFERENCE_PARTS[name][0](config).float()
        tiny_models.fill_deterministically(module, seed=100 + i)
        parts[name] = module
    parts["audio_decoder"].per_channel_statistics.load_state_dict(
        parts["audio_encoder"].per_channel_statistics.state_dict()
    )
    with torch.no_grad():
        for p in parts["vocoder"].parameters():
            if p.ndim == 3:
                p.mul_(0.5)
    metadata = {"config": json.dumps(config), "model_version": "2.3.0" if variant == "LTX-2.3" else "2.0.0"}
    save_file(tiny_models.file_state_dict(parts), path, metadata=metadata)


def _latent(seconds: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 8, round(seconds * LATENTS_PER_SECOND), 16, generator=g)


def _mel(seconds: float) -> torch.Tensor:
    """A log-mel spectrogram of a chirp plus noise, as long as the decoder's output for ``seconds`` of latents."""
    from ltx_av.ltx_core.mel import log_mel_spectrogram

    frames = 4 * round(seconds * LATENTS_PER_SECOND) - 3
    n = (frames - 1) * 160
    t = torch.arange(n, dtype=torch.float64) / 16000
    g = torch.Generator().manual_seed(0)
    chirp = torch.sin(2 * math.pi * (200 + 1500 * t) * t)
    wave = torch.stack([0.4 * chirp, 0.3 * chirp.roll(800)]).float() + 0.01 * torch.randn(2, n, generator=g)
    return log_mel_spectrogram(wave[None], sample_rate=16000, n_fft=1024, hop_length=160, n_mels=64)


def _stepper(module: torch.nn.Module, x: torch.Tensor, device: str):
    module = module.to(device).eval()
    x = x.to(device)

    def step():
        with torch.no_grad():
            module(x)

    return step


def ours(path: str, part: str, seconds: float, device: str = "cpu"):
    if part == "audio_decoder":
        from ltx_av.ltx_core.audio_vae import load_audio_vae

        vae = load_audio_vae(path, encoder=False)
        z = _latent(seconds).to(device)
        vae = vae.to(device)

        def step():
            with torch.no_grad():
                vae.decode(z)

        return step
    from ltx_av.ltx_core.vocoder import load_vocoder

    return _stepper(load_vocoder(path), _mel(seconds), device)


def ref(path: str, part: str, seconds: float, device: str = "cpu"):
    import tiny_models

    module = tiny_models.load_reference(path, part)
    return _stepper(module, _latent(seconds) if part == "audio_decoder" else _mel(seconds), device)


def cases(quick: bool, device: str, workdir: str) -> list[Case]:
    seconds = 0.5 if quick else 5.0
    paths = {}
    for variant in ("LTX-2", "LTX-2.3"):
        paths[variant] = os.path.join(workdir, f"audio-{variant.lower()}.safetensors")
        write_checkpoint(paths[variant], variant)
    frames = round(seconds * LATENTS_PER_SECOND)
    mel_frames = 4 * frames - 3
    specs = [
        ("audio.vae_decoder", "LTX-2", "audio_decoder", f"latent [1,8,{frames},16] -> mel [1,2,{mel_frames},64]"),
        ("audio.vocoder.hifigan_24k", "LTX-2", "vocoder", f"mel [1,2,{mel_frames},64] -> [1,2,{240 * mel_frames}]"),
        (
            "audio.vocoder.bigvgan_bwe_48k",
            "LTX-2.3",
            "vocoder",
            f"mel [1,2,{mel_frames},64] -> [1,2,{480 * mel_frames}]",
        ),
    ]
    notes = f"{seconds:g} s of audio; full-size released architecture, deterministic weights, float32"
    return [
        Case(
            name,
            shape,
            "float32",
            "bench.audio:ours",
            "bench.audio:ref",
            {"path": paths[variant], "part": part, "seconds": seconds, "device": device},
            device=device,
            notes=notes,
            runs=5,
            interleave=True,
        )
        for name, variant, part, shape in specs
    ]
