"""Tiny LTX-2-style and LTX-2.3-style checkpoints built with the reference, in the official single-file layout.

Each variant keeps every structural feature of its release (block kinds, text-path version, gating, prompt AdaLN,
vocoder type, padding modes) at a width small enough for a CPU test. Every tensor is filled from a seeded generator
(the reference leaves some tables uninitialised) except buffers the reference computes (sinc filters, STFT bases),
which are kept. The file is then loaded back through ltx-core's own builder, so parity tests compare our loader
and theirs on the very same file.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import torch
from safetensors.torch import save_file

# The configs are the pack's own tiny stand-ins (ltx_core/tiny.py), so what the reference builds here is exactly
# what `python -m ltx_av make-tiny-models` writes with our modules.
from ltx_av.ltx_core.tiny import (  # noqa: E402
    GEMMA_HIDDEN,
    GEMMA_STATES,
    MODEL_VERSIONS,
    VARIANTS,
    fill_deterministically,
    tiny_config,
)

from reference import SingleGPUModelBuilder, audio_cfg, connector_cfg, feature_ref, transformer_cfg, video_cfg

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


def build_reference_parts(variant: str) -> dict[str, torch.nn.Module]:
    """Every reference module of a tiny checkpoint, filled deterministically (float32, CPU)."""
    config = tiny_config(variant)
    parts = {}
    for i, (name, (factory, _)) in enumerate(REFERENCE_PARTS.items()):
        module = factory(config)
        if any(t.is_meta for t in module.state_dict().values()):
            module = module.to_empty(device="cpu")  # V1 caption projections are created on meta
        module = module.float()
        fill_deterministically(module, seed=1000 * (VARIANTS.index(variant) + 1) + i)
        if not all(torch.isfinite(t).all() for t in module.state_dict().values() if t.is_floating_point()):
            raise RuntimeError(f"{name}: a buffer the reference computes is not finite")
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
