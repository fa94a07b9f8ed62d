"""Tiny stand-in models: every structural feature of LTX-2 / LTX-2.3 at a width a CPU runs in seconds.

They serve ``python -m ltx_av generate`` when no checkpoint is given, ``python -m ltx_av make-tiny-models`` (files
for the shipped workflows) and the tests. The weights are random from a fixed seed, so the output is structured
noise rather than a meaningful video: what a tiny model proves is that the whole path runs, file formats included.

The configs keep each release's structure (block kinds, text-path version, gated attention, prompt AdaLN, vocoder
type, padding modes) with small widths: transformer video 4x16 and audio 4x8 wide with 2 layers, 128 latent
channels (the real latent layout), a video VAE with 16-channel pixel-side blocks, and a Gemma 3 of width 32 with 4
layers whose tokenizer reads bytes.

The *stand-ins* (``stand_in=True``: the files ``make-tiny-models`` writes and the command line's built-in model)
must run the shipped workflows at their shipped settings (768x512, 121 frames, 30 guided steps) on a small CPU.
There the video transformer's self-attention over 6,144 tokens is nearly all the work, repeated for every layer,
guidance pass (4) and step (30), so they are leaner: one 16-wide attention head per stream (16 is the fastest head
width of torch's CPU attention; 8 is slower), just enough layers for the official STG block (29 for LTX-2.3, 30 for
LTX-2), a video encoder that leaves full resolution at once (its first width is the 128 latent channels), a
half-width video decoder and vocoder. Their files carry :data:`STAND_IN_KEY` in the metadata.

The latent upsamplers (:func:`write_tiny_upsampler`) are our own :class:`~.upsampler.LatentUpsampler` at 64
channels in the middle with two residual blocks per stage (the released ones have 1024 or 512 and four), in the
official flat layout: bare keys, the architecture as a flat JSON object in ``metadata["config"]``.

LTX-2.5 (:func:`write_tiny_ltx25`) comes as the release's split files (:data:`LTX25_FILES`): the stand-in
transformer in LTX-2.3's lean layout with the 2.5 switches (no feed-forward biases, the keyframe embedding), a
3-layer Gemma 4 of width 24 with the byte tokenizer and the text projection, a video VAE with the diffusion decoder
and one with the conv decoder, LTX-2.3's audio VAE and vocoder, and a duration head; each carries its config,
``model_version`` 2.5.0 and :data:`STAND_IN_KEY`.

The LoRAs (:func:`write_tiny_lora`) fit the stand-in checkpoints (the 2.5 distilled LoRA the 2.5 stand-in
transformer) and stand in for the official files the workflows name (distilled, camera and IC-LoRAs): rank 4, the
official key layout, the IC-LoRA's reference scale in its metadata as the trainer writes it. LTX-2.5's spatial x2
upsampler has LTX-2.3's architecture, so its stand-in is LTX-2.3's under the 2.5 name.
"""

from __future__ import annotations

import json
import math
import os

import torch

from .checkpoint import COMPONENTS
from .config import (
    TRANSFORMER_FIXED_VALUES,
    AudioVAEConfig,
    TextEncoderConfig,
    TransformerConfig,
    VideoVAEConfig,
    VocoderConfig,
)

VARIANTS = ("LTX-2", "LTX-2.3")
MODEL_VERSIONS = {"LTX-2": "2.0.0", "LTX-2.3": "2.3.0"}

# The stand-in Gemma: hidden width and number of hidden states (layers + 1) the tiny text projection expects.
GEMMA_HIDDEN = 32
GEMMA_STATES = 5
GEMMA_VOCAB = 300

# The transformer keys whose values are the same in every official config (the loader checks them); the
# None-valued one is left out.
_TRANSFORMER_FIXED = {k: v for k, v in TRANSFORMER_FIXED_VALUES.items() if v is not None}


def _res(layers: int = 1) -> list:
    return ["res_x", {"num_layers": layers}]


# Layers of the stand-ins: just enough for the official default STG block (29 for LTX-2, 28 for LTX-2.3) to
# exist. Tests use 2.
STAND_IN_LAYERS = {"LTX-2": 30, "LTX-2.3": 29}

# Metadata entry that marks a file as a random-weight stand-in written by this module.
STAND_IN_KEY = "ltx_av_stand_in"
# make-tiny-models never replaces a file or folder this large that is not a stand-in: no real LTX or Gemma weights
# are this small, and no stand-in is this large.
PROTECTED_BYTES = 2**30


def tiny_config(variant: str, num_layers: int | None = None, *, stand_in: bool = False) -> dict:
    """The metadata config (``metadata["config"]``) of a tiny checkpoint of ``variant``: the test widths, or the
    leaner stand-ins' (see the module's docstring). ``num_layers`` default: 2, or :data:`STAND_IN_LAYERS`."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}; got {variant!r}")
    if num_layers is None:
        num_layers = STAND_IN_LAYERS[variant] if stand_in else 2
    config = _test_config(variant, num_layers)
    if stand_in:
        _make_lean(config, variant)
    return config


def _make_lean(config: dict, variant: str) -> None:
    """Shrink a test config to the stand-ins' widths in place (structure and block kinds kept)."""
    t = config["transformer"]
    t.update(
        num_attention_heads=1,
        attention_head_dim=16,
        audio_num_attention_heads=1,
        audio_attention_head_dim=16,
        cross_attention_dim=16,
        audio_cross_attention_dim=16,
    )
    if variant == "LTX-2.3":  # the text path projects straight to the streams' widths
        t.update(
            connector_num_attention_heads=1,
            connector_attention_head_dim=16,
            audio_connector_num_attention_heads=1,
            audio_connector_attention_head_dim=16,
        )
    vae = config["vae"]
    # The encoder's first width is the latent width (128): leave full resolution with the first block instead of
    # running residual blocks there (4x less work for a 768x512 video); every block kind is still there.
    vae["encoder_blocks"] = [
        ["compress_all_res", {"multiplier": 1}],
        ["compress_space_res", {"multiplier": 1}],
        _res(),
        ["compress_time_res", {"multiplier": 1}],
        ["compress_all_res", {"multiplier": 1}],
        _res(),
    ]
    vae["decoder_base_channels"] = 8
    # The audio VAE keeps its width: its latent statistics have 'ch' entries, which must be z_channels x mel bins / 4.
    vocoder = config["vocoder"]
    if variant == "LTX-2.3":
        vocoder["vocoder"]["upsample_initial_channel"] = 64  # six 2x channel halvings
        vocoder["bwe"]["upsample_initial_channel"] = 32
    else:
        vocoder["upsample_initial_channel"] = 32


def _test_config(variant: str, num_layers: int) -> dict:
    v23 = variant == "LTX-2.3"
    transformer = {
        **_TRANSFORMER_FIXED,
        "num_layers": num_layers,
        "num_attention_heads": 4,
        "attention_head_dim": 16,
        "audio_num_attention_heads": 4,
        "audio_attention_head_dim": 8,
        "in_channels": 128,
        "out_channels": 128,
        "audio_in_channels": 128,
        "audio_out_channels": 128,
        "cross_attention_dim": 64,
        "audio_cross_attention_dim": 32,
        "caption_channels": GEMMA_HIDDEN,
        "norm_eps": 1e-6,
        "positional_embedding_theta": 10000.0,
        "positional_embedding_max_pos": [20, 2048, 2048],
        "audio_positional_embedding_max_pos": [20],
        "timestep_scale_multiplier": 1000,
        "av_ca_timestep_scale_multiplier": 1000,
        "rope_type": "split",
        "frequencies_precision": "float64",
        "connector_positional_embedding_max_pos": [4096],
        "connector_num_layers": 2,
    }
    if v23:
        transformer.update(
            apply_gated_attention=True,
            cross_attention_adaln=True,
            caption_proj_before_connector=True,
            caption_projection_first_linear=False,
            caption_proj_input_norm=False,
            caption_projection_second_linear=False,
            connector_num_attention_heads=4,
            connector_attention_head_dim=16,
            audio_connector_num_attention_heads=4,
            audio_connector_attention_head_dim=8,
            audio_connector_num_layers=2,
            connector_apply_gated_attention=True,
        )
    else:
        transformer.update(connector_num_attention_heads=2, connector_attention_head_dim=16)

    if v23:
        vae = {
            "spatial_padding_mode": "zeros",
            "timestep_conditioning": False,
            "encoder_blocks": [
                _res(), ["compress_space_res", {"multiplier": 1}], _res(), ["compress_time_res", {"multiplier": 1}],
                _res(), ["compress_all_res", {"multiplier": 2}], _res(), ["compress_all_res", {"multiplier": 1}], _res(),
            ],
            "decoder_blocks": [
                _res(), ["compress_space", {"multiplier": 2}], _res(), ["compress_time", {"multiplier": 2}],
                _res(), ["compress_all", {"multiplier": 1}], _res(), ["compress_all", {"multiplier": 2}], _res(),
            ],
        }  # fmt: skip
    else:
        # No spatial_padding_mode: the encoder pads with zeros and the decoder reflects, as LTX-2 does.
        vae = {
            "timestep_conditioning": True,
            "encoder_blocks": [
                _res(), ["compress_space_res", {"multiplier": 1}], _res(), ["compress_time_res", {"multiplier": 1}],
                _res(), ["compress_all_res", {"multiplier": 1}], _res(), ["compress_all_res", {"multiplier": 2}], _res(),
            ],
            "decoder_blocks": [
                _res(), ["compress_all", {"residual": True, "multiplier": 2}],
                _res(), ["compress_all", {"residual": True, "multiplier": 2}],
                _res(), ["compress_all", {"residual": True, "multiplier": 2}], _res(),
            ],
        }  # fmt: skip
    vae.update(
        {
            "_class_name": "CausalVideoAutoencoder",
            "dims": 3,
            "in_channels": 3,
            "out_channels": 3,
            "latent_channels": 128,
            "patch_size": 4,
            "norm_layer": "pixel_norm",
            "latent_log_var": "uniform",
            "causal_decoder": False,
            "decoder_base_channels": 16,
        }
    )

    audio_vae = {
        "model": {
            "params": {
                "ddconfig": {
                    "ch": 128,
                    "ch_mult": [1, 1, 2],
                    "num_res_blocks": 1,
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
        "preprocessing": {
            "stft": {"hop_length": 160, "filter_length": 1024, "causal": True},
            "mel": {"n_mel_channels": 64},
        },
    }

    generator = {
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "stereo": True,
    }
    if v23:
        vocoder = {
            "vocoder": {
                **generator,
                "upsample_rates": [5, 2, 2, 2, 2, 2],
                "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4],
                "upsample_initial_channel": 128,
                "resblock": "AMP1",
                "activation": "snakebeta",
                "use_tanh_at_final": False,
                "use_bias_at_final": False,
            },
            "bwe": {
                **generator,
                "upsample_rates": [6, 5, 2, 2, 2],
                "upsample_kernel_sizes": [12, 11, 4, 4, 4],
                "upsample_initial_channel": 64,
                "resblock": "AMP1",
                "activation": "snakebeta",
                "use_tanh_at_final": False,
                "use_bias_at_final": False,
                "input_sampling_rate": 16000,
                "output_sampling_rate": 48000,
                "n_fft": 512,
                "hop_length": 80,
                "num_mels": 64,
            },
        }
    else:
        vocoder = {
            **generator,
            "upsample_rates": [6, 5, 2, 2, 2],
            "upsample_kernel_sizes": [16, 15, 8, 4, 4],
            "upsample_initial_channel": 64,
            "resblock": "1",
            "output_sampling_rate": 24000,
        }
    return {"transformer": transformer, "vae": vae, "audio_vae": audio_vae, "vocoder": vocoder}


# -- weights ---------------------------------------------------------------------------------------------------------

# Buffers a checkpoint stores but that are fixed functions of the config (filters, transforms), not learned.
_FIXED_SUFFIXES = (".filter", "mel_basis", "forward_basis", "inverse_basis")


def fill_deterministically(module: torch.nn.Module, seed: int) -> None:
    """Give every learned tensor of ``module`` a seeded random value of a sensible scale: weights ~ 1/sqrt(fan-in),
    norm weights near 1, latent statistics with positive spread; fixed buffers (filters, transforms) are kept."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict(keep_vars=True).items():
            if not t.is_floating_point() or name.endswith(_FIXED_SUFFIXES):
                continue
            if name.endswith("std-of-means"):
                value = 0.5 + torch.rand(t.shape, generator=g)
            elif name.endswith("mean-of-means"):
                value = 0.1 * torch.randn(t.shape, generator=g)
            elif name.endswith("timestep_scale_multiplier"):
                value = torch.full(t.shape, 1000.0)
            elif t.ndim >= 2 and "scale_shift_table" not in name:
                value = torch.randn(t.shape, generator=g) / math.sqrt(t[0].numel())
            elif t.ndim >= 1 and name.endswith("weight"):
                value = 1.0 + 0.1 * torch.randn(t.shape, generator=g)
            else:
                value = 0.1 * torch.randn(t.shape, generator=g)
            t.copy_(value.to(t.dtype))


def _stft_bases(n_fft: int) -> torch.Tensor:
    """Hann-windowed DFT rows, real parts then imaginary parts: ``[2 * (n_fft // 2 + 1), 1, n_fft]``."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    angle = 2 * math.pi * k * n / n_fft
    return torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window]).unsqueeze(1).float()


def tiny_modules(
    variant: str, seed: int = 0, num_layers: int | None = None, *, stand_in: bool = False
) -> dict[str, torch.nn.Module]:
    """Our modules of every component of a tiny ``variant`` checkpoint, filled from ``seed`` (float32, CPU)."""
    from .audio_vae import AudioVAE
    from .mel import mel_filterbank
    from .text_encoder import TextPath
    from .transformer import AudioVideoTransformer
    from .video_vae import VideoVAE
    from .vocoder import build_vocoder

    config = tiny_config(variant, num_layers, stand_in=stand_in)
    transformer_cfg = TransformerConfig.from_dict(config["transformer"])
    text_out = GEMMA_HIDDEN if transformer_cfg.text_path_version == 1 else transformer_cfg.video_dim
    modules = {
        "transformer": AudioVideoTransformer(transformer_cfg),
        "text_encoder": TextPath(
            TextEncoderConfig.from_dict(config["transformer"], (text_out, GEMMA_HIDDEN * GEMMA_STATES))
        ),
        "video_vae": VideoVAE(VideoVAEConfig.from_dict(config["vae"])),
        "audio_vae": AudioVAE(AudioVAEConfig.from_dict(config["audio_vae"])),
        "vocoder": build_vocoder(VocoderConfig.from_dict(config["vocoder"])),
    }
    for i, module in enumerate(modules.values()):
        fill_deterministically(module.float(), seed * 100 + i)
    mel_stft = getattr(modules["vocoder"], "mel_stft", None)
    if mel_stft is not None:  # the bandwidth extension's transforms are stored in real files: give them real values
        bwe = modules["vocoder"].config
        rate = bwe.generator.output_sampling_rate
        with torch.no_grad():
            mel_stft.stft_fn.forward_basis.copy_(_stft_bases(bwe.bwe_n_fft))
            mel_stft.stft_fn.inverse_basis.copy_(_stft_bases(bwe.bwe_n_fft))
            mel_stft.mel_basis.copy_(mel_filterbank(rate, bwe.bwe_n_fft, bwe.bwe_num_mels).float())
    return modules


def to_file_key(component: str, module_key: str) -> str:
    """Where a monolith stores ``module_key`` of ``component`` (the inverse of the checkpoint split)."""
    for file_prefix, module_prefix in sorted(COMPONENTS[component], key=lambda pair: -len(pair[1])):
        if module_key.startswith(module_prefix):
            return file_prefix + module_key[len(module_prefix) :]
    raise KeyError(module_key)


def write_tiny_checkpoint(
    path: str,
    variant: str,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    num_layers: int | None = None,
    *,
    stand_in: bool = False,
) -> str:
    """Write a tiny ``variant`` monolith in the official single-file layout (config in the metadata); with
    ``stand_in`` the leaner stand-in widths, marked with :data:`STAND_IN_KEY`. The file appears complete or not at
    all (written beside it, then renamed)."""
    tensors = {}
    for component, module in tiny_modules(variant, seed, num_layers, stand_in=stand_in).items():
        for key, value in module.state_dict().items():
            value = value.detach().to(dtype) if value.is_floating_point() else value.detach()
            tensors[to_file_key(component, key)] = value.contiguous().clone()
    metadata = {
        "config": json.dumps(tiny_config(variant, num_layers, stand_in=stand_in)),
        "model_version": MODEL_VERSIONS[variant],
    }
    if stand_in:
        metadata[STAND_IN_KEY] = "random weights written by python -m ltx_av make-tiny-models"
    return _save_atomically(tensors, path, metadata)


# -- tiny latent upsamplers -----------------------------------------------------------------------------------------

# kind -> the config keys that make it, spelled as the released files spell them
UPSAMPLER_KINDS: dict[str, dict] = {
    "spatial-x2": {  # LTX-2.3's x2 (pixel shuffle, keys upsampler.0.*)
        "spatial_upsample": True,
        "temporal_upsample": False,
        "spatial_scale": 2.0,
        "rational_resampler": False,
    },
    "spatial-x2-rational": {  # LTX-2.0's x2 (keys upsampler.conv.*, blur kernel stored)
        "spatial_upsample": True,
        "temporal_upsample": False,
        "spatial_scale": 2.0,
        "rational_resampler": True,
    },
    "spatial-x1.5": {
        "spatial_upsample": True,
        "temporal_upsample": False,
        "spatial_scale": 1.5,
        "rational_resampler": True,
    },
    "temporal-x2": {  # the released file says 1.0 and true for the two keys the temporal kind ignores
        "spatial_upsample": False,
        "temporal_upsample": True,
        "spatial_scale": 1.0,
        "rational_resampler": True,
    },
}
# Middle width and residual blocks per stage of the tiny upsamplers (released: 1024 or 512, and 4).
UPSAMPLER_MID_CHANNELS = 64
UPSAMPLER_BLOCKS = 2


def tiny_upsampler_config(kind: str) -> dict:
    """The flat ``metadata["config"]`` of a tiny upsampler of ``kind`` (a key of :data:`UPSAMPLER_KINDS`)."""
    if kind not in UPSAMPLER_KINDS:
        raise ValueError(f"kind must be one of {tuple(UPSAMPLER_KINDS)}; got {kind!r}")
    return {
        "_class_name": "LatentUpsampler",
        "in_channels": 128,
        "mid_channels": UPSAMPLER_MID_CHANNELS,
        "num_blocks_per_stage": UPSAMPLER_BLOCKS,
        "dims": 3,
        **UPSAMPLER_KINDS[kind],
    }


def tiny_upsampler(kind: str, seed: int = 0):
    """Our :class:`~.upsampler.LatentUpsampler` of a tiny ``kind``, every learned tensor filled from ``seed``
    (float32, CPU); the rational kinds' blur kernel keeps its binomial value, as the released files store it."""
    from .upsampler import LatentUpsampler, UpsamplerConfig

    module = LatentUpsampler(UpsamplerConfig.from_dict(tiny_upsampler_config(kind))).float()
    fixed = {k: v.clone() for k, v in module.state_dict().items() if k.endswith("blur_down.kernel")}
    fill_deterministically(module, seed)
    module.load_state_dict(fixed, strict=False)
    return module.eval()


def write_tiny_upsampler(
    path: str, kind: str, seed: int = 0, dtype: torch.dtype = torch.float32, *, stand_in: bool = False
) -> str:
    """Write a tiny upsampler file of ``kind`` in the official layout; with ``stand_in`` marked with
    :data:`STAND_IN_KEY`. The file appears complete or not at all (written beside it, then renamed)."""
    module = tiny_upsampler(kind, seed)
    tensors = {k: v.detach().to(dtype).contiguous().clone() for k, v in module.state_dict().items()}
    metadata = {"config": json.dumps(tiny_upsampler_config(kind))}
    if stand_in:
        metadata[STAND_IN_KEY] = "random weights written by python -m ltx_av make-tiny-models"
    return _save_atomically(tensors, path, metadata)


def _save_atomically(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str]) -> str:
    from safetensors.torch import save_file

    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.partial"
    try:
        save_file(tensors, partial, metadata=metadata)
        # safetensors creates its files readable by their owner only; a ComfyUI running as another user must read
        # these, like any file written with the user's umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return path


# -- tiny LoRAs ------------------------------------------------------------------------------------------------------

# The attention projections the official trainer adapts by default, in every attention of a block.
LORA_ATTENTIONS = ("attn1", "attn2", "audio_attn1", "audio_attn2", "audio_to_video_attn", "video_to_audio_attn")
LORA_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
# Where each kind of tiny LoRA adapts a block: "attention" (the trainer's default), "video" (the video IC-LoRA
# set: the video stream's attentions and feed-forward), "all" (every attention and both feed-forwards).
LORA_TARGETS = {
    "attention": tuple(f"{a}.{p}" for a in LORA_ATTENTIONS for p in LORA_PROJECTIONS),
    "video": (*(f"{a}.{p}" for a in ("attn1", "attn2") for p in LORA_PROJECTIONS), "ff.net.0.proj", "ff.net.2"),
    "all": (
        *(f"{a}.{p}" for a in LORA_ATTENTIONS for p in LORA_PROJECTIONS),
        *(f"{ff}.net.{i}" for ff in ("ff", "audio_ff") for i in ("0.proj", "2")),
    ),
}
# The stand-in LoRAs make-tiny-models writes: kind -> (variant, targets, metadata). The IC-LoRA declares the
# reference scale its official namesake ("...-ref0.5") is trained with, under both keys the trainer writes.
TINY_LORA_KINDS: dict[str, tuple[str, str, dict[str, str]]] = {
    "lora-distilled-2.3": ("LTX-2.3", "all", {}),
    "lora-ic-union-2.3": (
        "LTX-2.3",
        "video",
        {"reference_downscale_factor": "2", "reference_spatial_scale_factor": "2"},
    ),
    "lora-distilled-2": ("LTX-2", "all", {}),
    "lora-camera-2": ("LTX-2", "attention", {}),
    "lora-distilled-2.5": ("LTX-2.5", "all", {}),
}
# make-tiny-models never replaces a LoRA this large that is not a stand-in (stand-ins hold well under 1 MB; the
# smallest official LoRAs hold hundreds of MB).
PROTECTED_LORA_BYTES = 16 * 2**20


def tiny_lora_tensors(
    variant: str, targets: str = "attention", rank: int = 4, seed: int = 0, *, stand_in: bool = False
) -> dict[str, torch.Tensor]:
    """A rank-``rank`` LoRA for the tiny ``variant`` transformer (a key of :data:`VARIANTS`, or ``"LTX-2.5"`` for
    the split release's transformer) in the official layout (``diffusion_model.<module>.lora_A.weight [rank, in]`` /
    ``.lora_B.weight [out, rank]``, no alpha), adapting :data:`LORA_TARGETS` ``[targets]`` in every block. Each
    ``B @ A`` is about a tenth of the weight's own spread."""
    from .transformer import AudioVideoTransformer

    if variant == "LTX-2.5":
        section = tiny_ltx25_config(stand_in=stand_in)["transformer"]
        config = TransformerConfig.from_dict(section, LTX25_MODEL_VERSION)
    else:
        config = TransformerConfig.from_dict(tiny_config(variant, stand_in=stand_in)["transformer"])
    with torch.device("meta"):
        shapes = {n: p.shape for n, p in AudioVideoTransformer(config).named_parameters()}
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for block in range(config.num_layers):
        for target in LORA_TARGETS[targets]:
            module = f"transformer_blocks.{block}.{target}"
            out_features, in_features = shapes[f"{module}.weight"]
            tensors[f"diffusion_model.{module}.lora_A.weight"] = torch.randn(rank, in_features, generator=g) / (
                in_features**0.5
            )
            tensors[f"diffusion_model.{module}.lora_B.weight"] = torch.randn(out_features, rank, generator=g) * (
                0.1 / (rank * in_features) ** 0.5
            )
    return tensors


def write_tiny_lora(path: str, kind: str, seed: int = 0, dtype: torch.dtype = torch.bfloat16) -> str:
    """Write the stand-in LoRA of ``kind`` (a key of :data:`TINY_LORA_KINDS`) for the stand-in checkpoints, in
    bfloat16 as the trainer writes, marked with :data:`STAND_IN_KEY`."""
    variant, targets, extra = TINY_LORA_KINDS[kind]
    tensors = {
        k: v.to(dtype).contiguous() for k, v in tiny_lora_tensors(variant, targets, seed=seed, stand_in=True).items()
    }
    metadata = {**extra, STAND_IN_KEY: "random weights written by python -m ltx_av make-tiny-models"}
    return _save_atomically(tensors, path, metadata)


# -- a stand-in Gemma 3 --------------------------------------------------------------------------------------------

_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>")


def _byte_tokenizer(words: tuple[str, ...] = ()):
    """A byte-level tokenizer with Gemma's special-token ids (pad 0, eos 1, bos 2) that puts BOS first. ``words``:
    lower-case words that become one token each after a space (merges build them letter by letter, so any other text
    still falls back to bytes), the text lower-cased first."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    vocab = {t: i for i, t in enumerate(_SPECIALS)}
    for ch in sorted(byte_chars):
        vocab[ch] = len(vocab)
    merges = []
    for word in words:
        piece = "Ġ"  # the byte-level alphabet's space
        for ch in word:
            if piece + ch not in vocab:
                vocab[piece + ch] = len(vocab)
                merges.append((piece, ch))
            piece += ch
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    if words:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    return tok


def write_tiny_gemma(
    folder: str,
    seed: int = 0,
    *,
    words: tuple[str, ...] = (),
    note: str = "random weights written by python -m ltx_av make-tiny-models",
    max_length: int | None = None,
    contextual: bool = True,
) -> str:
    """Save a random text-only Gemma 3 (width :data:`GEMMA_HIDDEN`, ``GEMMA_STATES - 1`` layers) with its
    tokenizer as a Hugging Face folder, the layout of ``google/gemma-3-12b-it``. ``words``: whole-word tokens the
    tokenizer adds (see :func:`_byte_tokenizer`; the vocabulary grows past :data:`GEMMA_VOCAB` as they need);
    ``note``: what the stand-in marker file says; ``max_length``: the prompt length the tokenizer declares (LTX
    pads to it instead of 1024 when shorter); ``contextual`` False: every attention's output projection is zero, so
    a token's hidden states follow from that token alone (see :func:`~.demo_train._ensure_gemma`)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    tokenizer_object = _byte_tokenizer(words)
    layers = GEMMA_STATES - 1
    config = Gemma3TextConfig(
        hidden_size=GEMMA_HIDDEN,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        intermediate_size=2 * GEMMA_HIDDEN,
        vocab_size=max(GEMMA_VOCAB, tokenizer_object.get_vocab_size()),
        sliding_window=8,
        layer_types=["full_attention" if i % 2 else "sliding_attention" for i in range(layers)],
        max_position_embeddings=2048,
        query_pre_attn_scalar=16,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Gemma3ForCausalLM(config).float().eval()
    if not contextual:
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        **({"model_max_length": max_length} if max_length is not None else {}),
    )
    tokenizer.save_pretrained(folder)
    with open(os.path.join(folder, STAND_IN_FILE), "w") as f:
        f.write(note + "\n")
    return folder


# Marks a Gemma folder as a stand-in (the checkpoints carry STAND_IN_KEY in their metadata instead).
STAND_IN_FILE = "ltx_av_stand_in.txt"


# -- stand-ins under the file names the example workflows use ------------------------------------------------------

# relative path in a ComfyUI models folder -> what goes there: a tiny checkpoint's variant (a key of VARIANTS), a
# tiny upsampler's kind (a key of UPSAMPLER_KINDS), a tiny LoRA's (a key of TINY_LORA_KINDS) or None (the stand-in
# Gemma 3 folder)
TINY_MODEL_FILES: dict[str, str | None] = {
    "checkpoints/ltx-2.3-22b-dev.safetensors": "LTX-2.3",
    "checkpoints/ltx-2.3-22b-distilled.safetensors": "LTX-2.3",
    "checkpoints/ltx-2-19b-dev.safetensors": "LTX-2",
    "text_encoders/gemma-3-12b-it-qat-q4_0-unquantized": None,
    "latent_upscale_models/ltx-2.3-spatial-upscaler-x2-1.1.safetensors": "spatial-x2",
    "latent_upscale_models/ltx-2.3-temporal-upscaler-x2-1.0.safetensors": "temporal-x2",
    "loras/ltx-2.3-22b-distilled-lora-384.safetensors": "lora-distilled-2.3",
    "loras/ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors": "lora-ic-union-2.3",
    "loras/ltx-2-19b-distilled-lora-384.safetensors": "lora-distilled-2",
    "loras/ltx-2-19b-lora-camera-control-dolly-in.safetensors": "lora-camera-2",
    # LTX-2.5's split release (a key of LTX25_PARTS each): written together by write_tiny_ltx25
    "diffusion_models/ltx-2.5-22b-dev-transformer-bf16.safetensors": "ltx-2.5-transformer",
    "text_encoders/gemma4-12b-with-proj-ltx-2.5-bf16.safetensors": "ltx-2.5-text-encoder",
    "vae/ltx-2.5-video-vae-bf16.safetensors": "ltx-2.5-video-vae",
    "vae/ltx-2.5-video-vae-conv-bf16.safetensors": "ltx-2.5-video-vae-conv",
    "vae/ltx-2.5-audio-vae-bf16.safetensors": "ltx-2.5-audio-vae",
    "model_patches/ltx-2.5-duration-head-bf16.safetensors": "ltx-2.5-duration-head",
    # LTX-2.5's spatial x2 has LTX-2.3's architecture (mid 1024, pixel shuffle): the same stand-in under its name
    "latent_upscale_models/ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors": "spatial-x2",
    "loras/ltx-2.5-22b-distilled-lora-450-bf16.safetensors": "lora-distilled-2.5",
}

# TINY_MODEL_FILES kind -> (the part of write_tiny_ltx25, the size from which a file that is not a stand-in is
# taken for the real one: the released transformer and text encoder are tens of GB, the VAEs hundreds of MB, the
# duration head a few MB; their stand-ins are under 2, 50 and 0.1 MB).
LTX25_PARTS: dict[str, tuple[str, int]] = {
    "ltx-2.5-transformer": ("transformer", PROTECTED_BYTES),
    "ltx-2.5-text-encoder": ("text_encoder", PROTECTED_BYTES),
    "ltx-2.5-video-vae": ("video_vae", 64 * 2**20),
    "ltx-2.5-video-vae-conv": ("video_vae_conv", 64 * 2**20),
    "ltx-2.5-audio-vae": ("audio_vae", 64 * 2**20),
    "ltx-2.5-duration-head": ("duration_head", 2**20),
}

# make-tiny-models never replaces an upsampler file this large that is not a stand-in: the smallest released one
# (temporal x2) holds 262 MB, a stand-in under 10 MB.
PROTECTED_UPSAMPLER_BYTES = 64 * 2**20


def _protected_bytes(what: str | None) -> int:
    if what in LTX25_PARTS:
        return LTX25_PARTS[what][1]
    if what in TINY_LORA_KINDS:
        return PROTECTED_LORA_BYTES
    return PROTECTED_UPSAMPLER_BYTES if what in UPSAMPLER_KINDS else PROTECTED_BYTES


def _is_stand_in(path: str) -> bool:
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, STAND_IN_FILE))
    try:
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            return STAND_IN_KEY in (f.metadata() or {})
    except Exception:  # not a safetensors file at all: certainly not ours
        return False


def _size(path: str) -> int:
    if not os.path.isdir(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if os.path.isfile(os.path.join(root, f)))
    return total


def check_tiny_targets(models_dir: str) -> None:
    """Refuse, before anything is written, to put stand-ins where a real model is: a file or folder at one of
    :data:`TINY_MODEL_FILES` that is not a stand-in and holds :data:`PROTECTED_BYTES` or more
    (:data:`PROTECTED_UPSAMPLER_BYTES` for an upsampler), or a file where a folder must go (and the reverse)."""
    from . import checks
    from .errors import InputError

    for relative, variant in TINY_MODEL_FILES.items():
        path = os.path.join(models_dir, *relative.split("/"))
        parent = os.path.dirname(path)
        if os.path.lexists(parent) and not os.path.isdir(parent):
            raise InputError(f"{parent!r} is a file, but the stand-ins go in a folder of that name")
        if not os.path.lexists(path):
            continue
        if (variant is None) != os.path.isdir(path):
            want = "a folder" if variant is None else "a file"
            raise InputError(f"{path!r} exists and is not {want}; move it away first")
        size = _size(path)
        if size >= _protected_bytes(variant) and not _is_stand_in(path):
            raise InputError(
                f"{path!r} already exists and holds {checks.gib(size)}: it looks like the real model, which a "
                "random stand-in must never replace; write the stand-ins into another folder"
            )


def write_tiny_models(models_dir: str, seed: int = 0) -> list[str]:
    """Write the stand-ins under :data:`TINY_MODEL_FILES` in ``models_dir`` (laid out like ``ComfyUI/models``) so
    every example workflow runs at its shipped settings on a CPU (about two minutes each on 2 cores; see the
    README): checkpoints, the Gemma 3 folder, the latent upsamplers, the LoRAs and LTX-2.5's split files. Earlier stand-ins and small files are
    replaced; a real model is never (:func:`check_tiny_targets`). If writing fails, what this call created is
    removed. Returns the paths written."""
    import shutil

    check_tiny_targets(models_dir)
    written, created = [], []
    done: dict[str, str] = {}  # variant -> the file written for it
    pending: set[str] = set()  # LTX-2.5 parts written ahead of their turn, absent before
    partial = None
    try:
        for relative, variant in TINY_MODEL_FILES.items():
            path = os.path.join(models_dir, *relative.split("/"))
            missing = []
            folder = os.path.dirname(path)
            while not os.path.lexists(folder):
                missing.append(folder)
                folder = os.path.dirname(folder)
            created.extend(reversed(missing))
            existed = os.path.lexists(path) and path not in pending
            if variant is None:
                partial = f"{path}.partial"
                shutil.rmtree(partial, ignore_errors=True)
                write_tiny_gemma(partial, seed)
                if existed:
                    shutil.rmtree(path)
                os.replace(partial, path)
                partial = None
            elif variant in done:  # the same stand-in under a second name (dev and distilled)
                partial = f"{path}.partial"
                shutil.copyfile(done[variant], partial)
                os.replace(partial, path)
                partial = None
            elif variant in UPSAMPLER_KINDS:
                write_tiny_upsampler(path, variant, seed, stand_in=True)
                done[variant] = path
            elif variant in TINY_LORA_KINDS:
                write_tiny_lora(path, variant, seed)
                done[variant] = path
            elif variant in LTX25_PARTS:
                if "ltx-2.5" not in done:  # every part at once: they are made together
                    parts = {LTX25_PARTS[v][0]: r for r, v in TINY_MODEL_FILES.items() if v in LTX25_PARTS}
                    for r in parts.values():
                        other = os.path.join(models_dir, *r.split("/"))
                        if other != path and not os.path.lexists(other):
                            pending.add(other)
                        folder = os.path.dirname(other)
                        while not os.path.lexists(folder):
                            created.append(folder)
                            folder = os.path.dirname(folder)
                    write_tiny_ltx25(models_dir, seed, stand_in=True, files=parts)
                    done["ltx-2.5"] = path
            else:
                write_tiny_checkpoint(path, variant, seed, stand_in=True)
                done[variant] = path
            if not existed:
                created.append(path)
            written.append(path)
    except BaseException:
        for path in reversed(created):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.unlink(path)
        if partial is not None and os.path.isdir(partial):
            shutil.rmtree(partial, ignore_errors=True)
        elif partial is not None and os.path.lexists(partial):
            os.unlink(partial)
        raise
    return written


# -- LTX-2.5 stand-ins in the official split layout ---------------------------------------------------------------

LTX25_MODEL_VERSION = "2.5.0"
# The Gemma the 2.5 transformer names (metadata gemma_source_checkpoint) and its text encoder declares.
LTX25_GEMMA_VERSION = "gemma4-12b-ltx-v1"
# The stand-in Gemma 4: width, layers (sliding, sliding, global, ...), vocabulary (the byte tokenizer's).
GEMMA4_HIDDEN = 24
GEMMA4_LAYERS = 3

# The split files of one LTX-2.5 release, as ComfyUI keeps them (relative to ComfyUI/models).
LTX25_FILES = {
    "transformer": "diffusion_models/ltx-2.5-22b-dev-transformer-bf16.safetensors",
    "text_encoder": "text_encoders/gemma4-12b-with-proj-ltx-2.5-bf16.safetensors",
    "video_vae": "vae/ltx-2.5-video-vae-bf16.safetensors",
    "video_vae_conv": "vae/ltx-2.5-video-vae-conv-bf16.safetensors",
    "audio_vae": "vae/ltx-2.5-audio-vae-bf16.safetensors",
    "duration_head": "model_patches/ltx-2.5-duration-head-bf16.safetensors",
}


def tiny_ltx25_gemma_config() -> dict:
    """``metadata["gemma_config"]`` of the stand-in text encoder: a ``gemma4_unified`` config with the LTX
    fine-tune's ``gemma_version`` and a 3-layer text stack (two sliding layers, one global)."""
    layers = ["sliding_attention", "sliding_attention", "full_attention"][:GEMMA4_LAYERS]
    return {
        "architectures": ["Gemma4UnifiedForConditionalGeneration"],
        "model_type": "gemma4_unified",
        "gemma_version": LTX25_GEMMA_VERSION,
        "text_config": {
            "model_type": "gemma4_unified_text",
            "hidden_size": GEMMA4_HIDDEN,
            "num_hidden_layers": GEMMA4_LAYERS,
            "layer_types": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "num_global_key_value_heads": 1,
            "head_dim": 8,
            "global_head_dim": 16,
            "intermediate_size": 40,
            "vocab_size": GEMMA_VOCAB,
            "rms_norm_eps": 1e-6,
            "sliding_window": 8,
            "attention_k_eq_v": True,
            "attention_bias": False,
            "hidden_activation": "gelu_pytorch_tanh",
            "use_bidirectional_attention": "vision",
            "num_kv_shared_layers": 0,
            "rope_parameters": {
                "full_attention": {
                    "rope_type": "proportional",
                    "partial_rotary_factor": 0.25,
                    "rope_theta": 1000000.0,
                },
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            },
            "pad_token_id": 0,
            "eos_token_id": 1,
            "bos_token_id": 2,
        },
    }


def tiny_ltx25_config(num_layers: int | None = None, *, stand_in: bool = False) -> dict:
    """The ``metadata["config"]`` sections of the tiny LTX-2.5 files: ``transformer`` (LTX-2.3's tiny layout with
    the 2.5 switches: no feed-forward biases, the learned keyframe embedding, Gemma 4's width as caption width),
    ``vae`` (a ``CausalDiffusionVAE`` with 128 latent channels), ``vae_conv`` (the conv-decoder file's section),
    ``audio_vae`` / ``vocoder`` (LTX-2.3's) and ``duration_head``."""
    base = tiny_config("LTX-2.3", num_layers, stand_in=stand_in)
    transformer = dict(base["transformer"])
    transformer.update(
        caption_channels=GEMMA4_HIDDEN,
        ff_bias=False,
        audio_ff_bias=False,
        use_keyframes_abs_pos_embedding=True,
    )
    encoder_blocks = base["vae"]["encoder_blocks"]
    diffusion_vae = {
        "_class_name": "CausalDiffusionVAE",
        "dims": 3,
        "model_output_type": "x0",
        "encoder": {
            "dims": 3,
            "in_channels": 3,
            "out_channels": 128,
            "blocks": encoder_blocks,
            "patch_size": 4,
            "latent_log_var": "constant",
            "norm_layer": "pixel_norm",
            "base_channels": 128,
            "spatial_padding_mode": "zeros",
        },
        "decoder": {
            "in_channels": 128,
            "out_channels": 3,
            "patch_size": 4,
            "head_dim": 16,
            "t_emb_dim": 32,
            "stage_channels": [32, 16, 16, 16, 16],
            "stage_depths": [1, 1, 1, 1, 1],
            "stage_kernels": [[3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
            "upsamples": [[[1, 2, 2], 2], [[2, 1, 1], 1], [[2, 2, 2], 1], [[2, 2, 2], 1]],
            "stage5_kernel": [3, 3, 3],
            "timestep_scale_multiplier": 1000.0,
            "default_num_inference_steps": 1,
        },
    }
    conv_vae = dict(base["vae"], latent_log_var="constant")
    return {
        "transformer": transformer,
        "vae": diffusion_vae,
        "vae_conv": conv_vae,
        "audio_vae": base["audio_vae"],
        "vocoder": base["vocoder"],
        "duration_head": {"pooler_hidden_dim": 16, "num_queries": 1, "num_pooler_heads": 2, "mlp_hidden": 16},
    }


def tiny_ltx25_modules(seed: int = 0, num_layers: int | None = None, *, stand_in: bool = False) -> dict:
    """Our modules of every tiny LTX-2.5 part, filled from ``seed`` (float32, CPU): ``transformer``,
    ``text_encoder`` (the text path: projection + connectors), ``gemma`` (the Gemma 4 text stack), ``video_vae``
    (diffusion decoder), ``video_vae_conv``, ``audio_vae``, ``vocoder``, ``duration_head``."""
    from .duration_head import DurationHead, DurationHeadConfig
    from .gemma4 import Gemma4TextConfig, Gemma4TextModel
    from .text_encoder import TextPath
    from .transformer import AudioVideoTransformer
    from .video_vae import VideoVAE
    from .video_vae_file import video_vae_configs

    config = tiny_ltx25_config(num_layers, stand_in=stand_in)
    transformer_cfg = TransformerConfig.from_dict(config["transformer"], LTX25_MODEL_VERSION)
    gemma_cfg = Gemma4TextConfig.from_dict(tiny_ltx25_gemma_config())
    vae_cfg, diffusion_cfg = video_vae_configs(config["vae"])
    text_cfg = TextEncoderConfig.from_dict(
        config["transformer"],
        (transformer_cfg.video_dim, GEMMA4_HIDDEN * gemma_cfg.num_hidden_states),
        gemma_hidden_size=GEMMA4_HIDDEN,
        model_version=LTX25_MODEL_VERSION,
    )
    modules = {
        "transformer": AudioVideoTransformer(transformer_cfg),
        "text_encoder": TextPath(text_cfg),
        "gemma": Gemma4TextModel(gemma_cfg),
        "video_vae": VideoVAE(vae_cfg, diffusion=diffusion_cfg),
        "video_vae_conv": VideoVAE(VideoVAEConfig.from_dict(config["vae_conv"])),
        "duration_head": DurationHead(DurationHeadConfig.from_metadata({"config": _duration_config(config)})),
    }
    # The audio VAE and vocoder are LTX-2.3's (the 2.5 release keeps them).
    lean = tiny_modules("LTX-2.3", seed, num_layers=1, stand_in=stand_in)
    for i, module in enumerate(modules.values()):
        fill_deterministically(module.float(), seed * 100 + 50 + i)
    modules["audio_vae"], modules["vocoder"] = lean["audio_vae"], lean["vocoder"]
    return modules


def _duration_config(config: dict) -> dict:
    t = config["transformer"]
    widths = {k: t[k] for k in ("cross_attention_dim", "audio_cross_attention_dim")}
    return {"transformer": widths, "duration_head": config["duration_head"]}


def _ltx25_metadata(config: dict, stand_in: bool) -> dict[str, str]:
    metadata = {"config": json.dumps(config), "model_version": LTX25_MODEL_VERSION}
    if stand_in:
        metadata[STAND_IN_KEY] = "random weights written by python -m ltx_av make-tiny-models"
    return metadata


def _text_tensor(text: str) -> torch.Tensor:
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.uint8)


def write_tiny_ltx25(
    models_dir: str,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    num_layers: int | None = None,
    *,
    stand_in: bool = False,
    files: dict[str, str] | None = None,
) -> dict[str, str]:
    """Write a tiny LTX-2.5 release as split files under ``models_dir`` (laid out like ``ComfyUI/models``;
    ``files``: part -> relative path, default :data:`LTX25_FILES`), each in the official key layout with its config
    in the metadata: the transformer file holds the transformer and the text connectors (and names its Gemma in
    ``gemma_source_checkpoint``), the text-encoder file Gemma 4 (``model.*``), the text projection, the tokenizer
    (``tokenizer_json``, ``hf_asset__tokenizer_config.json``) and ``gemma_config``; the video VAE files bare
    ``encoder.*`` / ``decoder.*`` / ``per_channel_statistics.*``; the audio VAE file ``audio_vae.*`` +
    ``vocoder.*``; the duration head ``duration_head.*``. Returns part -> path written."""
    files = dict(LTX25_FILES if files is None else files)
    config = tiny_ltx25_config(num_layers, stand_in=stand_in)
    modules = tiny_ltx25_modules(seed, num_layers, stand_in=stand_in)

    def cast(value: torch.Tensor) -> torch.Tensor:
        value = value.detach()
        return (value.to(dtype) if value.is_floating_point() else value).contiguous().clone()

    def state(name: str, prefix: str = "") -> dict[str, torch.Tensor]:
        return {prefix + k: cast(v) for k, v in modules[name].state_dict().items()}

    text_path = state("text_encoder")
    projection = {k: v for k, v in text_path.items() if k.startswith("text_embedding_projection.")}
    connectors = {to_file_key("text_encoder", k): v for k, v in text_path.items() if k not in projection}
    gemma_source = json.dumps({"ltx_version": LTX25_MODEL_VERSION, "gemma_version": LTX25_GEMMA_VERSION})
    tokenizer_config = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}
    contents: dict[str, tuple[dict[str, torch.Tensor], dict[str, str]]] = {
        "transformer": (
            {**state("transformer", "model.diffusion_model."), **connectors},
            {
                **_ltx25_metadata({"transformer": config["transformer"]}, stand_in),
                "gemma_source_checkpoint": gemma_source,
            },
        ),
        "text_encoder": (
            {
                **state("gemma", "model."),
                **projection,
                "tokenizer_json": _text_tensor(_byte_tokenizer().to_str()),
                "hf_asset__tokenizer_config.json": _text_tensor(json.dumps(tokenizer_config)),
            },
            {**_ltx25_metadata({}, stand_in), "gemma_config": json.dumps(tiny_ltx25_gemma_config())},
        ),
        "video_vae": (state("video_vae"), _ltx25_metadata({"vae": config["vae"]}, stand_in)),
        "video_vae_conv": (
            state("video_vae_conv"),
            _ltx25_metadata({"vae": {"_class_name": "CausalVideoAutoencoder", **config["vae_conv"]}}, stand_in),
        ),
        "audio_vae": (
            {**state("audio_vae", "audio_vae."), **state("vocoder", "vocoder.")},
            _ltx25_metadata({"audio_vae": config["audio_vae"], "vocoder": config["vocoder"]}, stand_in),
        ),
        "duration_head": (
            state("duration_head", "duration_head."),
            _ltx25_metadata(_duration_config(config), stand_in),
        ),
    }
    written = {}
    for part, relative in files.items():
        tensors, metadata = contents[part]
        written[part] = _save_atomically(tensors, os.path.join(models_dir, *relative.split("/")), metadata)
    return written
