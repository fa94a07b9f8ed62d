"""Tiny LTX-2-style and LTX-2.3-style checkpoints built with the reference, in the official single-file layout.

Each variant keeps every structural feature of its release (block kinds, text-path version, gating, prompt AdaLN,
vocoder type, padding modes) at a width small enough for a CPU test. Every tensor is filled from a seeded generator
(the reference leaves some tables uninitialised) except buffers the reference computes (sinc filters, STFT bases),
which are kept. The file is then loaded back through ltx-core's own builder, so parity tests compare our loader
and theirs on the very same file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import torch
from safetensors.torch import save_file

from reference import SingleGPUModelBuilder, audio_cfg, connector_cfg, feature_ref, transformer_cfg, video_cfg

VARIANTS = ("LTX-2", "LTX-2.3")
MODEL_VERSIONS = {"LTX-2": "2.0.0", "LTX-2.3": "2.3.0"}

# Gemma stand-in for the text path: hidden width and number of hidden states (layers + 1).
GEMMA_HIDDEN = 32
GEMMA_STATES = 5

_TRANSFORMER_FIXED = {
    "dropout": 0.0,
    "attention_bias": True,
    "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000,
    "use_linear_projection": False,
    "only_cross_attention": False,
    "cross_attention_norm": True,
    "double_self_attention": False,
    "upcast_attention": False,
    "standardization_norm": "rms_norm",
    "norm_elementwise_affine": False,
    "qk_norm": "rms_norm",
    "positional_embedding_type": "rope",
    "use_audio_video_cross_attention": True,
    "share_ff": False,
    "av_cross_ada_norm": True,
    "use_middle_indices_grid": True,
}


def _res(n: int = 1) -> list:
    return ["res_x", {"num_layers": n}]


def tiny_config(variant: str) -> dict:
    """The metadata config of a tiny checkpoint of ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(variant)
    v23 = variant == "LTX-2.3"
    transformer = {
        **_TRANSFORMER_FIXED,
        "num_layers": 2,
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
                _res(),
                ["compress_space_res", {"multiplier": 1}],
                _res(),
                ["compress_time_res", {"multiplier": 1}],
                _res(),
                ["compress_all_res", {"multiplier": 2}],
                _res(),
                ["compress_all_res", {"multiplier": 1}],
                _res(),
            ],
            "decoder_blocks": [
                _res(),
                ["compress_space", {"multiplier": 2}],
                _res(),
                ["compress_time", {"multiplier": 2}],
                _res(),
                ["compress_all", {"multiplier": 1}],
                _res(),
                ["compress_all", {"multiplier": 2}],
                _res(),
            ],
        }
    else:
        # No spatial_padding_mode: the encoder pads with zeros and the decoder reflects, as LTX-2 does.
        vae = {
            "timestep_conditioning": True,
            "encoder_blocks": [
                _res(),
                ["compress_space_res", {"multiplier": 1}],
                _res(),
                ["compress_time_res", {"multiplier": 1}],
                _res(),
                ["compress_all_res", {"multiplier": 1}],
                _res(),
                ["compress_all_res", {"multiplier": 2}],
                _res(),
            ],
            "decoder_blocks": [
                _res(),
                ["compress_all", {"residual": True, "multiplier": 2}],
                _res(),
                ["compress_all", {"residual": True, "multiplier": 2}],
                _res(),
                ["compress_all", {"residual": True, "multiplier": 2}],
                _res(),
            ],
        }
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


# -- the reference modules and where their keys live in the file ---------------------------------------------------


def _feature_extractor(config: dict) -> torch.nn.Module:
    # The reference configurator hard-codes Gemma 3 12B (3840 x 49); build the same class at our width.
    flat = GEMMA_HIDDEN * GEMMA_STATES
    t = config["transformer"]
    if t.get("caption_proj_before_connector"):
        return feature_ref.FeatureExtractorV2(
            video_aggregate_embed=torch.nn.Linear(flat, t["num_attention_heads"] * t["attention_head_dim"], bias=True),
            embedding_dim=GEMMA_HIDDEN,
            audio_aggregate_embed=torch.nn.Linear(
                flat, t["audio_num_attention_heads"] * t["audio_attention_head_dim"], bias=True
            ),
        )
    return feature_ref.FeatureExtractorV1(aggregate_embed=torch.nn.Linear(flat, GEMMA_HIDDEN, bias=False), is_av=True)


def _vae_key(root: str, half: str) -> Callable[[str], str]:
    def key(k: str) -> str:
        return f"{root}.{k}" if k.startswith("per_channel_statistics.") else f"{root}.{half}.{k}"

    return key


# name -> (configurator or factory, module key -> file key)
REFERENCE_PARTS: dict[str, tuple[Callable[[dict], torch.nn.Module], Callable[[str], str]]] = {
    "transformer": (transformer_cfg.LTXModelConfigurator.from_config, lambda k: "model.diffusion_model." + k),
    "video_connector": (
        connector_cfg.Embeddings1DConnectorConfigurator.from_config,
        lambda k: "model.diffusion_model.video_embeddings_connector." + k,
    ),
    "audio_connector": (
        connector_cfg.AudioEmbeddings1DConnectorConfigurator.from_config,
        lambda k: "model.diffusion_model.audio_embeddings_connector." + k,
    ),
    "feature_extractor": (_feature_extractor, lambda k: "text_embedding_projection." + k),
    "video_encoder": (video_cfg.VideoEncoderConfigurator.from_config, _vae_key("vae", "encoder")),
    "video_decoder": (video_cfg.VideoDecoderConfigurator.from_config, _vae_key("vae", "decoder")),
    "audio_encoder": (audio_cfg.AudioEncoderConfigurator.from_config, _vae_key("audio_vae", "encoder")),
    "audio_decoder": (audio_cfg.AudioDecoderConfigurator.from_config, _vae_key("audio_vae", "decoder")),
    "vocoder": (audio_cfg.VocoderConfigurator.from_config, lambda k: "vocoder." + k),
}

# ltx-core's key filters for loading each part back from a monolith (None: loaded by hand, see load_reference).
_REFERENCE_SD_OPS = {
    "transformer": transformer_cfg.LTXV_MODEL_COMFY_RENAMING_MAP,
    "video_encoder": video_cfg.VAE_ENCODER_COMFY_KEYS_FILTER,
    "video_decoder": video_cfg.VAE_DECODER_COMFY_KEYS_FILTER,
    "audio_encoder": audio_cfg.AUDIO_VAE_ENCODER_COMFY_KEYS_FILTER,
    "audio_decoder": audio_cfg.AUDIO_VAE_DECODER_COMFY_KEYS_FILTER,
    "vocoder": audio_cfg.VOCODER_COMFY_KEYS_FILTER,
}

# Buffers the reference computes at construction; a checkpoint stores the same values.
_COMPUTED_SUFFIXES = (".filter", "mel_basis", "forward_basis", "inverse_basis")


def _fill_deterministically(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict(keep_vars=True).items():
            if not t.is_floating_point():
                continue
            if name.endswith(_COMPUTED_SUFFIXES):
                if not torch.isfinite(t).all():
                    raise RuntimeError(f"computed buffer {name} is not finite")
                continue
            if name.endswith("std-of-means"):
                value = 0.5 + torch.rand(t.shape, generator=g)
            elif name.endswith("mean-of-means"):
                value = 0.1 * torch.randn(t.shape, generator=g)
            elif name.endswith("timestep_scale_multiplier"):
                value = torch.full(t.shape, 1000.0)
            elif t.ndim >= 2 and "scale_shift_table" not in name:
                fan_in = t[0].numel()
                value = torch.randn(t.shape, generator=g) / math.sqrt(fan_in)
            elif t.ndim >= 1 and name.endswith("weight"):  # norm weights
                value = 1.0 + 0.1 * torch.randn(t.shape, generator=g)
            else:  # biases, modulation tables, snake parameters, scalars
                value = 0.1 * torch.randn(t.shape, generator=g)
            t.copy_(value.to(t.dtype))


def build_reference_parts(variant: str) -> dict[str, torch.nn.Module]:
    """Every reference module of a tiny checkpoint, filled deterministically (float32, CPU)."""
    config = tiny_config(variant)
    parts = {}
    for i, (name, (factory, _)) in enumerate(REFERENCE_PARTS.items()):
        module = factory(config)
        if any(t.is_meta for t in module.state_dict().values()):
            module = module.to_empty(device="cpu")  # V1 caption projections are created on meta
        module = module.float()
        _fill_deterministically(module, seed=1000 * (VARIANTS.index(variant) + 1) + i)
        parts[name] = module
    # One statistics copy per VAE lives in the file: encoder and decoder must agree.
    for enc, dec in (("video_encoder", "video_decoder"), ("audio_encoder", "audio_decoder")):
        parts[dec].per_channel_statistics.load_state_dict(parts[enc].per_channel_statistics.state_dict())
    return parts


def file_state_dict(parts: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """The tensors of the monolith, under the official file keys."""
    out: dict[str, torch.Tensor] = {}
    for name, module in parts.items():
        to_file = REFERENCE_PARTS[name][1]
        for k, t in module.state_dict().items():
            key = to_file(k)
            if key in out and not torch.equal(out[key], t):
                raise RuntimeError(f"two parts disagree on {key}")
            out[key] = t.detach().clone().contiguous()
    return out


def write_monolith(path: str, variant: str, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Write the tiny ``variant`` checkpoint to ``path``; returns the tensors written (file keys)."""
    tensors = file_state_dict(build_reference_parts(variant))
    if dtype != torch.float32:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    metadata = {"config": json.dumps(tiny_config(variant)), "model_version": MODEL_VERSIONS[variant]}
    save_file(tensors, path, metadata=metadata)
    return tensors


def load_reference(path: str, part: str) -> torch.nn.Module:
    """A reference module loaded from a monolith by ltx-core's own builder (float32, CPU)."""
    if part in _REFERENCE_SD_OPS:
        builder = SingleGPUModelBuilder(
            model_class_configurator=_Configurator.of(REFERENCE_PARTS[part][0]),
            model_path=path,
            model_sd_ops=_REFERENCE_SD_OPS[part],
        )
        return builder.build(device=torch.device("cpu"), dtype=torch.float32).eval()
    # The feature extractor and connectors are built with sizes the reference configurators cannot express for a
    # tiny Gemma (or, for the connectors, share the embeddings processor's key filter); load them by hand, strictly.
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        config = json.loads(f.metadata()["config"])
        factory, to_file = REFERENCE_PARTS[part]
        module = factory(config)
        if any(t.is_meta for t in module.state_dict().values()):
            module = module.to_empty(device="cpu")
        sd = {k: f.get_tensor(to_file(k)).float() for k in module.state_dict()}
    module = module.float()  # before loading: the connectors' registers are created in bfloat16
    module.load_state_dict(sd, strict=True)
    return module.eval()


class _Configurator:
    """Adapts a plain factory to ltx-core's configurator protocol."""

    @staticmethod
    def of(factory: Callable[[dict], torch.nn.Module]) -> type:
        return type("TinyConfigurator", (), {"from_config": staticmethod(factory)})
