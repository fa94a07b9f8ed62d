"""Hostile inputs through all 16 nodes, as a careless script, a linked widget or the API sends them.

Every case must end in the pack's own error (an ``LTXError``) whose message names the input, within a bounded
time, with the inputs unchanged and no file left behind: validation happens before any model runs, anything is
allocated or anything is written. The table is the contract; each row is one thing a user really sent.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import tiny_gemma
import tiny_loras
import tiny_upsamplers
import torch

from ltx_av.ltx_core import tiny
from ltx_av.ltx_core.errors import LTXError, TooLargeError
from ltx_av.nodes import NODE_CLASS_MAPPINGS
from ltx_av.nodes import text as text_nodes
from ltx_av.nodes.audio import LTXAudioDecode, LTXAudioEncode, LTXAudioVAELoader
from ltx_av.nodes.duration import LTXDurationPredict
from ltx_av.nodes.latent_files import LTXLoadLatent, LTXSaveLatent
from ltx_av.nodes.long_video import LTXExtend, LTXJoin, LTXKeyframeAtTime
from ltx_av.nodes.lora import LTXLoraLoader
from ltx_av.nodes.model import LTXModelLoader
from ltx_av.nodes.sampling import (
    LTXEmptyLatent,
    LTXImageCondition,
    LTXReferenceCondition,
    LTXSampler,
    LTXTimeWindowMask,
)
from ltx_av.nodes.text import LTXTextEncode, LTXTextEncoderLoader
from ltx_av.nodes.upsample import LTXLatentUpsample, LTXUpsamplerLoader
from ltx_av.nodes.video import LTXLoadVideoVAE, LTXVAEDecode, LTXVAEEncode

# Each refusal must be quick: nothing heavy may run before the checks (CI machines are slow; this is generous).
TIME_LIMIT = 2.0
NAN, INF = float("nan"), float("inf")
CKPT = "tiny-ltx-2.3.safetensors"
UPSAMPLER = "tiny-spatial-upscaler-x2.safetensors"
LORA = "tiny-lora.safetensors"


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_checkpoints):
    """A models folder (checkpoint + tiny Gemma), an output folder, and every node's loaded models."""
    root = tmp_path_factory.mktemp("hostile")
    models, output = root / "models", root / "output"
    for folder in ("checkpoints", "text_encoders", "vae", "diffusion_models", "latent_upscale_models", "loras"):
        (models / folder).mkdir(parents=True)
    os.symlink(tiny_checkpoints["LTX-2.3"], models / "checkpoints" / CKPT)
    os.symlink(tiny_checkpoints["LTX-2.3"], models / "latent_upscale_models" / CKPT)  # not an upsampler
    tiny_upsamplers.write_upsampler(str(models / "latent_upscale_models" / UPSAMPLER), "spatial-x2")
    tiny_loras.write_lora(str(models / "loras" / LORA), "LTX-2.3")
    tiny_loras.write_lora(str(models / "loras" / "for-ltx-2.safetensors"), "LTX-2", "outside")
    os.symlink(tiny_checkpoints["LTX-2.3"], models / "loras" / CKPT)  # a model, not a LoRA
    torch.save({"lora_A": torch.zeros(2)}, models / "loras" / "pickled.safetensors")
    tiny_gemma.write_gemma_folder(str(models / "text_encoders" / "tiny-gemma-3"))
    ltx25 = tiny.write_tiny_ltx25(str(models), seed=1, stand_in=True)
    os.symlink(tiny_checkpoints["LTX-2.3"], models / "model_patches" / CKPT)  # a model, not a duration head
    output.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTX_AV_MODELS_DIR", str(models))
        mp.setenv("LTX_AV_OUTPUT_DIR", str(output))
        loaded = {
            "root": root,
            "model": LTXModelLoader().load(CKPT, "fp32", "none")[0],
            "vae": LTXLoadVideoVAE().load(CKPT, "fp32")[0],
            "audio_vae": LTXAudioVAELoader().load(CKPT, "fp32")[0],
            "text_encoder": LTXTextEncoderLoader().load("tiny-gemma-3/", CKPT, dtype="float32")[0],
            "upsampler": LTXUpsamplerLoader().load(UPSAMPLER, "fp32")[0],
        }
        video, audio = LTXEmptyLatent().make(64, 64, 9, 24.0)
        loaded.update(video=video, audio=audio, conditioning=_conditioning(loaded["model"]))
        loaded["head"] = os.path.basename(ltx25["duration_head"])
        loaded["conditioning25"] = _conditioning(
            LTXModelLoader().load(os.path.basename(ltx25["transformer"]), "fp32", "none")[0]
        )
        yield loaded


def _conditioning(model, video_scale: float = 1.0) -> list:
    c = model.config
    dv, da = (c.caption_channels, c.caption_channels) if c.text_path_version == 1 else (c.video_dim, c.audio_dim)
    signature = {"variant": model.variant, "video_dim": dv, "audio_dim": da, "checkpoint": model.checkpoint}
    extras = {"ltx_audio_context": torch.randn(1, 5, da), "ltx_text_path": signature}
    return [[torch.randn(1, 5, dv) * video_scale, extras]]


# -- the table -------------------------------------------------------------------------------------------------------


def _duration(e: dict, **changes) -> dict:
    inputs = dict(head_name=e["head"], positive=e["conditioning25"], frame_rate=24.0, min_seconds=1.0, max_seconds=20.0)
    return {**inputs, **changes}


@dataclass(frozen=True)
class Case:
    node: type
    inputs: Callable[[dict], dict[str, Any]]  # env -> keyword inputs of the node's FUNCTION
    names: str  # regex the message must match: the input it names (and what was wrong)
    error: type = LTXError


def _sampler(**changes) -> Callable[[dict], dict]:
    def make(e: dict) -> dict:
        inputs = dict(
            model=e["model"],
            positive=e["conditioning"],
            video_latent=e["video"],
            seed=0,
            schedule="ltx2",
            steps=2,
            stg_blocks="1",
            negative=e["conditioning"],
            audio_latent=e["audio"],
        )
        inputs.update({k: (v(e) if callable(v) else v) for k, v in changes.items()})
        return inputs

    return make


def _with(base: str, **changes) -> Callable[[dict], dict]:
    """A copy of env[base] (a LATENT) with keys changed."""

    def make(e: dict) -> dict:
        return {**e[base], **changes}

    return make


def _nan(shape) -> torch.Tensor:
    t = torch.zeros(shape)
    t.view(-1)[t.numel() // 2] = NAN
    return t


def _huge(shape) -> torch.Tensor:
    """A latent of a ridiculous size that costs no memory (every element is the same one)."""
    return torch.zeros([1] * len(shape)).expand(*shape)


def _encode(**changes):
    def make(e):
        inputs = dict(vae=e["vae"], images=torch.rand(9, 64, 64, 3), fit="pad", frame_rate=24.0)
        inputs.update({k: (v(e) if callable(v) else v) for k, v in changes.items()})
        return inputs

    return make


def _decode(**changes):
    def make(e):
        inputs = dict(vae=e["vae"], samples=e["video"])
        inputs.update({k: (v(e) if callable(v) else v) for k, v in changes.items()})
        return inputs

    return make


def _audio_encode(waveform=None, sample_rate=16000, **changes):
    def make(e):
        wave = torch.zeros(1, 2, 8000) if waveform is None else waveform
        inputs = dict(audio_vae=e["audio_vae"], audio={"waveform": wave, "sample_rate": sample_rate})
        inputs.update(changes)
        return inputs

    return make


def _condition(**changes):
    def make(e):
        inputs = dict(
            vae=e["vae"], image=torch.rand(1, 64, 64, 3), video_latent=e["video"], frame_index=0, strength=1.0, crf=0
        )
        inputs.update({k: (v(e) if callable(v) else v) for k, v in changes.items()})
        return inputs

    return make


def _reference(**changes):
    def make(e):
        inputs = dict(vae=e["vae"], reference=torch.rand(9, 64, 64, 3), video_latent=e["video"], strength=1.0, scale=1)
        inputs.update({k: (v(e) if callable(v) else v) for k, v in changes.items()})
        return inputs

    return make


def _empty(**changes):
    def make(e):
        return {**dict(width=64, height=64, frames=9, frame_rate=24.0, batch_size=1), **changes}

    return make


def _mask(**changes):
    def make(e):
        inputs = dict(latent=e["video"], start_seconds=0.1, end_seconds=0.2)
        inputs.update({k: (v(e) if callable(v) else v) for k, v in changes.items()})
        return inputs

    return make


def _extend(**changes):
    def make(e):
        inputs = dict(
            video_latent=_segment(), seconds=1.0, overlap_seconds=0.3, direction="after", overlap_strength=1.0
        )
        inputs.update({k: (v(e) if callable(v) else v) for k, v in changes.items()})
        return inputs

    return make


def _at_time(**changes):
    def make(e):
        inputs = dict(vae=e["vae"], image=torch.rand(1, 64, 64, 3), video_latent=e["video"], seconds=0.1, strength=1.0)
        inputs.update({k: (v(e) if callable(v) else v) for k, v in changes.items()})
        return inputs

    return make


def _join(**changes):
    def make(e):
        inputs = dict(vae=e["vae"], video_latent=e["video"])
        inputs.update({k: (v(e) if callable(v) else v) for k, v in changes.items()})
        return inputs

    return make


CASES: dict[str, Case] = {
    # -- LTXModelLoader
    "model: name None": Case(
        LTXModelLoader, lambda e: dict(model_name=None, dtype="auto", offload="none"), "model_name"
    ),
    "model: path escape": Case(
        LTXModelLoader, lambda e: dict(model_name="../../../../etc/passwd", dtype="auto", offload="none"), "model_name"
    ),
    "model: missing file": Case(
        LTXModelLoader, lambda e: dict(model_name="nope.safetensors", dtype="auto", offload="none"), "model_name"
    ),
    "model: folder as file": Case(
        LTXModelLoader, lambda e: dict(model_name="checkpoints", dtype="auto", offload="none"), "model_name"
    ),
    "model: dtype": Case(LTXModelLoader, lambda e: dict(model_name=CKPT, dtype="fp64", offload="none"), "dtype"),
    "model: offload": Case(LTXModelLoader, lambda e: dict(model_name=CKPT, dtype="auto", offload="gpu"), "offload"),
    "model: timesteps rule": Case(
        LTXModelLoader,
        lambda e: dict(model_name=CKPT, dtype="auto", offload="none", cross_modal_timesteps=3),
        "cross_modal_timesteps",
    ),
    # -- LTXLoraLoader
    "lora: model None": Case(LTXLoraLoader, lambda e: dict(model=None, lora_name=LORA, strength=1.0), "model"),
    "lora: model is a LATENT": Case(
        LTXLoraLoader, lambda e: dict(model=e["video"], lora_name=LORA, strength=1.0), "model.*Load Model"
    ),
    "lora: name None": Case(LTXLoraLoader, lambda e: dict(model=e["model"], lora_name=None, strength=1.0), "lora_name"),
    "lora: path escape": Case(
        LTXLoraLoader,
        lambda e: dict(model=e["model"], lora_name="../checkpoints/" + CKPT, strength=1.0),
        "lora_name",
    ),
    "lora: missing file": Case(
        LTXLoraLoader, lambda e: dict(model=e["model"], lora_name="nope.safetensors", strength=1.0), "lora_name"
    ),
    "lora: strength nan": Case(
        LTXLoraLoader, lambda e: dict(model=e["model"], lora_name=LORA, strength=NAN), "strength.*finite"
    ),
    "lora: strength too large": Case(
        LTXLoraLoader, lambda e: dict(model=e["model"], lora_name=LORA, strength=1e6), "strength.*between -10 and 10"
    ),
    "lora: strength text": Case(
        LTXLoraLoader, lambda e: dict(model=e["model"], lora_name=LORA, strength="1"), "strength.*number"
    ),
    "lora: checkpoint given as a LoRA": Case(
        LTXLoraLoader, lambda e: dict(model=e["model"], lora_name=CKPT, strength=1.0), "not a LoRA.*Load Model"
    ),
    "lora: pickle renamed": Case(
        LTXLoraLoader, lambda e: dict(model=e["model"], lora_name="pickled.safetensors", strength=1.0), "pickle"
    ),
    "lora: made for LTX-2": Case(
        LTXLoraLoader,
        lambda e: dict(model=e["model"], lora_name="for-ltx-2.safetensors", strength=1.0),
        "for-ltx-2.safetensors.*made for LTX-2",
    ),
    # -- LTXTextEncoderLoader
    "text loader: gemma None": Case(LTXTextEncoderLoader, lambda e: dict(gemma=None, ckpt_name=CKPT), "gemma"),
    "text loader: gemma escape": Case(
        LTXTextEncoderLoader, lambda e: dict(gemma="../../../etc", ckpt_name=CKPT), "gemma"
    ),
    "text loader: checkpoint number": Case(
        LTXTextEncoderLoader, lambda e: dict(gemma="tiny-gemma-3/", ckpt_name=123), "ckpt_name"
    ),
    "text loader: dtype": Case(
        LTXTextEncoderLoader, lambda e: dict(gemma="tiny-gemma-3/", ckpt_name=CKPT, dtype="float16"), "dtype"
    ),
    "text loader: device": Case(
        LTXTextEncoderLoader,
        lambda e: dict(gemma="tiny-gemma-3/", ckpt_name=CKPT, gemma_device="cuda:7"),
        "gemma_device",
    ),
    # -- LTXTextEncode
    "text: encoder None": Case(LTXTextEncode, lambda e: dict(text_encoder=None, text="a cat"), "text_encoder"),
    "text: encoder is a model": Case(
        LTXTextEncode, lambda e: dict(text_encoder=e["model"], text="a cat"), "text_encoder"
    ),
    "text: lone surrogate": Case(
        LTXTextEncode, lambda e: dict(text_encoder=e["text_encoder"], text="a cat \ud83d walks"), "text.*surrogate"
    ),
    "text: None": Case(LTXTextEncode, lambda e: dict(text_encoder=e["text_encoder"], text=None), "text"),
    "text: after_encoding": Case(
        LTXTextEncode,
        lambda e: dict(text_encoder=e["text_encoder"], text="a cat", after_encoding="later"),
        "after_encoding",
    ),
    # -- LTXLoadVideoVAE
    "video vae: missing": Case(LTXLoadVideoVAE, lambda e: dict(vae_name="missing.safetensors"), "vae_name.*not found"),
    "video vae: audio vae file": Case(
        LTXLoadVideoVAE, lambda e: dict(vae_name="ltx-2.5-audio-vae-bf16.safetensors"), "video VAE"
    ),
    "video vae: escape": Case(LTXLoadVideoVAE, lambda e: dict(vae_name="checkpoints/../../../etc/passwd"), "vae_name"),
    "video vae: dtype": Case(LTXLoadVideoVAE, lambda e: dict(vae_name=f"checkpoints/{CKPT}", dtype="int8"), "dtype"),
    # -- LTXVAEEncode
    "encode: vae None": Case(LTXVAEEncode, _encode(vae=None), "vae"),
    "encode: NaN pixel": Case(LTXVAEEncode, _encode(images=_nan((9, 64, 64, 3))), "images.*NaN"),
    "encode: inf pixel": Case(LTXVAEEncode, _encode(images=torch.full((9, 64, 64, 3), INF)), "images.*infinite"),
    "encode: 5-D images": Case(LTXVAEEncode, _encode(images=torch.rand(1, 9, 64, 64, 3)), "images"),
    "encode: uint8 images": Case(
        LTXVAEEncode, _encode(images=torch.zeros(9, 64, 64, 3, dtype=torch.uint8)), "images.*uint8"
    ),
    "encode: RGBA": Case(LTXVAEEncode, _encode(images=torch.rand(9, 64, 64, 4)), "images.*alpha"),
    "encode: frame rate 0": Case(LTXVAEEncode, _encode(frame_rate=0.0), "frame_rate"),
    "encode: frame rate inf": Case(LTXVAEEncode, _encode(frame_rate=INF), "frame_rate"),
    "encode: frame rate nan": Case(LTXVAEEncode, _encode(frame_rate=NAN), "frame_rate"),
    "encode: fit": Case(LTXVAEEncode, _encode(fit="stretch"), "fit"),
    "encode: tile size": Case(LTXVAEEncode, _encode(tiling="manual", spatial_tile=48), "spatial_tile"),
    "encode: negative chunk": Case(LTXVAEEncode, _encode(tiling="manual", temporal_chunk=-8), "temporal_chunk"),
    # -- LTXVAEDecode
    "decode: vae None": Case(LTXVAEDecode, _decode(vae=None), "vae"),
    "decode: samples None": Case(LTXVAEDecode, _decode(samples=None), "samples"),
    "decode: NaN latent": Case(LTXVAEDecode, _decode(samples={"samples": _nan((1, 128, 2, 2, 2))}), "samples.*NaN"),
    "decode: 400 GB of frames": Case(
        LTXVAEDecode, _decode(samples={"samples": _huge((1, 128, 1000, 64, 64))}), "samples|decoding", TooLargeError
    ),
    "decode: zero frames": Case(LTXVAEDecode, _decode(samples={"samples": torch.zeros(1, 128, 0, 2, 2)}), "samples"),
    "decode: int latent": Case(
        LTXVAEDecode, _decode(samples={"samples": torch.zeros(1, 128, 2, 2, 2, dtype=torch.int64)}), "samples"
    ),
    "decode: timestep nan": Case(LTXVAEDecode, _decode(decode_timestep=NAN), "decode_timestep"),
    "decode: noise scale 5": Case(LTXVAEDecode, _decode(decode_noise_scale=5.0), "decode_noise_scale"),
    "decode: seed -1": Case(LTXVAEDecode, _decode(seed=-1), "seed"),
    "decode: tile 48": Case(LTXVAEDecode, _decode(tiling="manual", spatial_tile=48), "spatial_tile"),
    "decode: tiling name": Case(LTXVAEDecode, _decode(tiling="fast"), "tiling"),
    # -- LTXAudioVAELoader
    "audio vae: None": Case(LTXAudioVAELoader, lambda e: dict(ckpt_name=None), "ckpt_name"),
    "audio vae: escape": Case(LTXAudioVAELoader, lambda e: dict(ckpt_name="../../../../etc/passwd"), "ckpt_name"),
    "audio vae: dtype": Case(LTXAudioVAELoader, lambda e: dict(ckpt_name=CKPT, dtype="fp8"), "dtype"),
    # -- LTXAudioDecode
    "audio decode: vae None": Case(LTXAudioDecode, lambda e: dict(audio_vae=None, samples=e["audio"]), "audio_vae"),
    "audio decode: video latent": Case(
        LTXAudioDecode, lambda e: dict(audio_vae=e["audio_vae"], samples=e["video"]), "samples"
    ),
    "audio decode: NaN": Case(
        LTXAudioDecode, lambda e: dict(audio_vae=e["audio_vae"], samples={"samples": _nan((1, 8, 4, 16))}), "NaN"
    ),
    "audio decode: ten days": Case(
        LTXAudioDecode,
        lambda e: dict(audio_vae=e["audio_vae"], samples={"samples": _huge((1, 8, 25 * 86400 * 10, 16))}),
        "audio",
        TooLargeError,
    ),
    "audio decode: ints": Case(
        LTXAudioDecode,
        lambda e: dict(audio_vae=e["audio_vae"], samples={"samples": torch.zeros(1, 8, 4, 16, dtype=torch.int32)}),
        "samples",
    ),
    # -- LTXAudioEncode
    "audio encode: 1 Hz": Case(LTXAudioEncode, _audio_encode(sample_rate=1), "sample_rate"),
    "audio encode: 0 Hz": Case(LTXAudioEncode, _audio_encode(sample_rate=0), "sample_rate"),
    "audio encode: nan Hz": Case(LTXAudioEncode, _audio_encode(sample_rate=NAN), "sample_rate"),
    "audio encode: rate as text": Case(LTXAudioEncode, _audio_encode(sample_rate="44100"), "sample_rate"),
    "audio encode: NaN sample": Case(LTXAudioEncode, _audio_encode(waveform=_nan((1, 2, 8000))), "audio.*NaN"),
    "audio encode: int16": Case(
        LTXAudioEncode, _audio_encode(waveform=torch.zeros(1, 2, 8000, dtype=torch.int16)), "audio.*int16"
    ),
    "audio encode: 2-D": Case(LTXAudioEncode, _audio_encode(waveform=torch.zeros(2, 8000)), "audio"),
    "audio encode: video frames -1": Case(LTXAudioEncode, _audio_encode(video_frames=-1), "video_frames"),
    "audio encode: frame rate 0": Case(LTXAudioEncode, _audio_encode(video_frames=9, frame_rate=0.0), "frame_rate"),
    "audio encode: None": Case(LTXAudioEncode, lambda e: dict(audio_vae=e["audio_vae"], audio=None), "audio"),
    "audio encode: a week at 768 kHz": Case(
        LTXAudioEncode,
        _audio_encode(waveform=_huge((1, 2, 768000 * 3600 * 24 * 7)), sample_rate=768000),
        "audio",
        TooLargeError,
    ),
    # -- LTXEmptyLatent
    "empty: width nan": Case(LTXEmptyLatent, _empty(width=NAN), "width"),
    "empty: width 0": Case(LTXEmptyLatent, _empty(width=0), "width"),
    "empty: width 16384": Case(LTXEmptyLatent, _empty(width=16384, height=16384, frames=1001), "width"),
    "empty: width 33.5": Case(LTXEmptyLatent, _empty(width=33.5), "width"),
    "empty: width True": Case(LTXEmptyLatent, _empty(width=True), "width"),
    "empty: 2.7 TB at the widget limits": Case(
        LTXEmptyLatent, _empty(width=8192, height=8192, frames=10001, batch_size=64), "LTXEmptyLatent", TooLargeError
    ),
    "empty: frame rate nan": Case(LTXEmptyLatent, _empty(frame_rate=NAN), "frame_rate"),
    "empty: frame rate inf": Case(LTXEmptyLatent, _empty(frame_rate=INF), "frame_rate"),
    "empty: batch 0": Case(LTXEmptyLatent, _empty(batch_size=0), "batch_size"),
    "empty: fit": Case(LTXEmptyLatent, _empty(fit="zoom"), "fit"),
    # -- LTXImageCondition
    "condition: NaN image": Case(LTXImageCondition, _condition(image=_nan((1, 64, 64, 3))), "image.*NaN"),
    "condition: image None": Case(LTXImageCondition, _condition(image=None), "image"),
    "condition: frame outside": Case(LTXImageCondition, _condition(frame_index=9), "frame_index"),
    "condition: frame far outside": Case(LTXImageCondition, _condition(frame_index=-100), "frame_index"),
    "condition: strength nan": Case(LTXImageCondition, _condition(strength=NAN), "strength"),
    "condition: strength 2": Case(LTXImageCondition, _condition(strength=2.0), "strength"),
    "condition: crf 52": Case(LTXImageCondition, _condition(crf=52), "crf"),
    "condition: vae None": Case(LTXImageCondition, _condition(vae=None), "vae"),
    "condition: conditions not a list": Case(
        LTXImageCondition, _condition(video_latent=_with("video", ltx_conditions=5)), "ltx_conditions"
    ),
    "condition: NaN latent": Case(
        LTXImageCondition, _condition(video_latent=lambda e: {**e["video"], "samples": _nan((1, 128, 2, 2, 2))}), "NaN"
    ),
    # -- LTXReferenceCondition
    "reference: None": Case(LTXReferenceCondition, _reference(reference=None), "reference"),
    "reference: NaN frame": Case(LTXReferenceCondition, _reference(reference=_nan((9, 64, 64, 3))), "reference.*NaN"),
    "reference: scale 3 on 2 cells": Case(LTXReferenceCondition, _reference(scale=3), "scale 3 does not divide"),
    "reference: scale 9": Case(LTXReferenceCondition, _reference(scale=9), "scale"),
    "reference: strength nan": Case(LTXReferenceCondition, _reference(strength=NAN), "strength"),
    "reference: model is a VAE": Case(LTXReferenceCondition, _reference(model=lambda e: e["vae"]), "model"),
    "reference: 4 channels": Case(LTXReferenceCondition, _reference(reference=torch.rand(9, 64, 64, 4)), "reference"),
    # -- LTXSampler
    "sampler: model None": Case(LTXSampler, _sampler(model=None), "model"),
    "sampler: model is a VAE": Case(LTXSampler, _sampler(model=lambda e: e["vae"]), "model"),
    "sampler: positive None": Case(LTXSampler, _sampler(positive=None), "positive"),
    "sampler: positive NaN": Case(
        LTXSampler, _sampler(positive=lambda e: _conditioning(e["model"], NAN)), "positive.*NaN"
    ),
    "sampler: cfg nan": Case(LTXSampler, _sampler(cfg_video=NAN), "cfg_video"),
    "sampler: cfg inf": Case(LTXSampler, _sampler(cfg_audio=INF), "cfg_audio"),
    "sampler: stg -2": Case(LTXSampler, _sampler(stg_video=-2.0), "stg_video"),
    "sampler: modality nan": Case(LTXSampler, _sampler(modality_audio=NAN), "modality_audio"),
    "sampler: rescale nan": Case(LTXSampler, _sampler(rescale_video=NAN), "rescale_video"),
    "sampler: 10000 steps": Case(LTXSampler, _sampler(steps=10000), "steps"),
    "sampler: steps -1": Case(LTXSampler, _sampler(steps=-1), "steps"),
    "sampler: seed -1": Case(LTXSampler, _sampler(seed=-1), "seed"),
    "sampler: seed 2**70": Case(LTXSampler, _sampler(seed=2**70), "seed"),
    "sampler: max_shift 1000": Case(LTXSampler, _sampler(max_shift=1000.0), "max_shift"),
    "sampler: base_shift nan": Case(LTXSampler, _sampler(base_shift=NAN), "base_shift"),
    "sampler: terminal 0": Case(LTXSampler, _sampler(terminal=0.0), "terminal"),
    "sampler: sigmas NaN": Case(LTXSampler, _sampler(sigmas=torch.tensor([1.0, NAN, 0.0])), "sigmas"),
    "sampler: 5000 sigmas": Case(LTXSampler, _sampler(sigmas=torch.linspace(1, 0, 5000)), "sigmas"),
    "sampler: video NaN": Case(
        LTXSampler, _sampler(video_latent=lambda e: {**e["video"], "samples": _nan((1, 128, 2, 2, 2))}), "video_latent"
    ),
    "sampler: audio NaN": Case(
        LTXSampler, _sampler(audio_latent=lambda e: {**e["audio"], "samples": _nan((1, 8, 9, 16))}), "audio_latent"
    ),
    "sampler: noise mask NaN": Case(
        LTXSampler, _sampler(video_latent=lambda e: {**e["video"], "noise_mask": _nan((1, 1, 2, 2, 2))}), "noise_mask"
    ),
    "sampler: conditions a string": Case(
        LTXSampler, _sampler(video_latent=_with("video", ltx_conditions="first frame")), "ltx_conditions"
    ),
    "sampler: schedule": Case(LTXSampler, _sampler(schedule="karras"), "schedule"),
    "sampler: audio mode": Case(LTXSampler, _sampler(audio_mode="mute"), "audio_mode"),
    "sampler: stg blocks": Case(LTXSampler, _sampler(stg_blocks="a, b"), "stg_blocks"),
    "sampler: frame rate nan in latent": Case(
        LTXSampler, _sampler(video_latent=_with("video", frame_rate=NAN)), "frame_rate"
    ),
    "sampler: 33M tokens": Case(
        LTXSampler,
        _sampler(video_latent={"samples": _huge((1, 128, 126, 512, 512))}, audio_latent=None),
        "video tokens",
        TooLargeError,
    ),
    # -- LTXTimeWindowMask
    "mask: latent None": Case(LTXTimeWindowMask, _mask(latent=None), "latent"),
    "mask: start nan": Case(LTXTimeWindowMask, _mask(start_seconds=NAN), "start_seconds"),
    "mask: end inf": Case(LTXTimeWindowMask, _mask(end_seconds=INF), "end_seconds"),
    "mask: end before start": Case(LTXTimeWindowMask, _mask(start_seconds=2.0, end_seconds=1.0), "end"),
    "mask: regenerate": Case(LTXTimeWindowMask, _mask(regenerate="both"), "regenerate"),
    "mask: frame rate -1": Case(LTXTimeWindowMask, _mask(frame_rate=-1.0), "frame_rate"),
    "mask: NaN latent": Case(
        LTXTimeWindowMask, _mask(latent=lambda e: {**e["video"], "samples": _nan((1, 128, 2, 2, 2))}), "latent"
    ),
    # -- LTXUpsamplerLoader / LTXLatentUpsample
    "upsampler: None": Case(LTXUpsamplerLoader, lambda e: dict(upsampler_name=None), "upsampler_name"),
    "upsampler: escape": Case(
        LTXUpsamplerLoader, lambda e: dict(upsampler_name="../checkpoints/" + CKPT), "upsampler_name"
    ),
    "upsampler: missing": Case(LTXUpsamplerLoader, lambda e: dict(upsampler_name="x2.safetensors"), "upsampler_name"),
    "upsampler: a model checkpoint": Case(
        LTXUpsamplerLoader, lambda e: dict(upsampler_name=CKPT), "upsampler|latent upsampler"
    ),
    "upsampler: dtype": Case(LTXUpsamplerLoader, lambda e: dict(upsampler_name=UPSAMPLER, dtype="fp64"), "dtype"),
    "upsample: latent None": Case(
        LTXLatentUpsample, lambda e: dict(video_latent=None, upsampler=e["upsampler"], vae=e["vae"]), "video_latent"
    ),
    "upsample: upsampler is a VAE": Case(
        LTXLatentUpsample, lambda e: dict(video_latent=e["video"], upsampler=e["vae"], vae=e["vae"]), "upsampler"
    ),
    "upsample: vae None": Case(
        LTXLatentUpsample, lambda e: dict(video_latent=e["video"], upsampler=e["upsampler"], vae=None), "vae"
    ),
    "upsample: NaN latent": Case(
        LTXLatentUpsample,
        lambda e: dict(
            video_latent={**e["video"], "samples": _nan((1, 128, 2, 2, 2))}, upsampler=e["upsampler"], vae=e["vae"]
        ),
        "video_latent.*NaN",
    ),
    "upsample: 64 channels": Case(
        LTXLatentUpsample,
        lambda e: dict(video_latent={"samples": torch.zeros(1, 64, 2, 2, 2)}, upsampler=e["upsampler"], vae=e["vae"]),
        "video_latent",
    ),
    "upsample: audio is a tensor": Case(
        LTXLatentUpsample,
        lambda e: dict(
            video_latent=e["video"], upsampler=e["upsampler"], vae=e["vae"], audio_latent=torch.zeros(1, 8, 9, 16)
        ),
        "audio_latent",
    ),
    "upsample: 1080p x 20 s x 64": Case(
        LTXLatentUpsample,
        lambda e: dict(video_latent={"samples": _huge((64, 128, 61, 34, 60))}, upsampler=e["upsampler"], vae=e["vae"]),
        "upsampling",
        TooLargeError,
    ),
    # -- LTXSaveLatent / LTXLoadLatent
    "save: latent None": Case(LTXSaveLatent, lambda e: dict(video_latent=None), "video_latent"),
    "save: prefix escape": Case(
        LTXSaveLatent, lambda e: dict(video_latent=e["video"], filename_prefix="../../escape"), "filename_prefix"
    ),
    "save: prefix absolute": Case(
        LTXSaveLatent, lambda e: dict(video_latent=e["video"], filename_prefix="/tmp/ltx_av_escape"), "filename_prefix"
    ),
    "save: audio is an image": Case(
        LTXSaveLatent, lambda e: dict(video_latent=e["video"], audio_latent=torch.zeros(1, 8, 8, 3)), "audio_latent"
    ),
    "load: path escape": Case(LTXLoadLatent, lambda e: dict(file="../../../../etc/passwd"), "file"),
    "load: absolute path": Case(LTXLoadLatent, lambda e: dict(file="/etc/passwd"), "file"),
    "load: None": Case(LTXLoadLatent, lambda e: dict(file=None), "file"),
    "load: missing": Case(LTXLoadLatent, lambda e: dict(file="nothing_here.ltx.safetensors"), "file"),
    "duration: missing head": Case(
        LTXDurationPredict, lambda e: _duration(e, head_name="missing.safetensors"), "head_name.*not found"
    ),
    "duration: escape": Case(
        LTXDurationPredict, lambda e: _duration(e, head_name="../checkpoints/" + CKPT), "head_name"
    ),
    "duration: a model, not a head": Case(LTXDurationPredict, lambda e: _duration(e, head_name=CKPT), "head_name"),
    "duration: LTX-2.3 prompt": Case(
        LTXDurationPredict, lambda e: _duration(e, positive=e["conditioning"]), "positive.*LTX-2.3"
    ),
    "duration: text, not conditioning": Case(LTXDurationPredict, lambda e: _duration(e, positive="a cat"), "positive"),
    "duration: nan frame rate": Case(LTXDurationPredict, lambda e: _duration(e, frame_rate=NAN), "frame_rate"),
    "duration: zero frame rate": Case(LTXDurationPredict, lambda e: _duration(e, frame_rate=0.0), "frame_rate"),
    "duration: max below min": Case(
        LTXDurationPredict, lambda e: _duration(e, min_seconds=5.0, max_seconds=2.0), "max_seconds"
    ),
    # -- LTXExtend / LTXKeyframeAtTime / LTXJoin (long video)
    "extend: latent None": Case(LTXExtend, _extend(video_latent=None), "video_latent"),
    "extend: seconds nan": Case(LTXExtend, _extend(seconds=NAN), "seconds"),
    "extend: overlap inf": Case(LTXExtend, _extend(overlap_seconds=INF), "overlap_seconds"),
    "extend: direction": Case(LTXExtend, _extend(direction="sideways"), "direction"),
    "extend: strength 2": Case(LTXExtend, _extend(overlap_strength=2.0), "overlap_strength"),
    "extend: audio is a video latent": Case(LTXExtend, _extend(audio_latent=lambda e: e["video"]), "audio_latent"),
    "extend: audio of another length": Case(
        LTXExtend, _extend(audio_latent={"samples": torch.zeros(1, 8, 50, 16)}), "audio_latent has 50 latent frames"
    ),
    "extend: 9 frames leave no overlap": Case(
        LTXExtend, _extend(video_latent=lambda e: e["video"]), "no room for an overlap"
    ),
    "extend: chain is text": Case(
        LTXExtend, _extend(video_latent=lambda e: {**_segment(), "ltx_chain": "x"}), "ltx_chain"
    ),
    "extend: segment record edited": Case(
        LTXExtend,
        _extend(video_latent=lambda e: {**_segment(), "ltx_segment": {"start": 0.5, "frames": 25, "frame_rate": 24.0}}),
        "ltx_segment",
    ),
    "extend: NaN latent": Case(
        LTXExtend, _extend(video_latent=lambda e: {**_segment(), "samples": _nan((1, 128, 4, 2, 2))}), "NaN"
    ),
    "keyframe at time: outside": Case(LTXKeyframeAtTime, _at_time(seconds=100.0), "outside this segment"),
    "keyframe at time: seconds nan": Case(LTXKeyframeAtTime, _at_time(seconds=NAN), "seconds"),
    "keyframe at time: image None": Case(LTXKeyframeAtTime, _at_time(image=None), "image"),
    "keyframe at time: vae is a model": Case(LTXKeyframeAtTime, _at_time(vae=lambda e: e["model"]), "vae"),
    "join: vae None": Case(LTXJoin, _join(vae=None), "vae"),
    "join: latent is audio": Case(LTXJoin, _join(video_latent=lambda e: e["audio"]), "video_latent"),
    "join: audio without its vae": Case(LTXJoin, _join(audio_latent=lambda e: e["audio"]), "audio_vae"),
    "join: batch 2": Case(
        LTXJoin, _join(video_latent=lambda e: {**e["video"], "samples": torch.zeros(2, 128, 2, 2, 2)}), "batch"
    ),
    "join: NaN latent": Case(
        LTXJoin, _join(video_latent=lambda e: {**e["video"], "samples": _nan((1, 128, 2, 2, 2))}), "NaN"
    ),
    "join: an hour of 4K": Case(
        LTXJoin,
        _join(video_latent=lambda e: {**e["video"], "samples": _huge((1, 128, 10800, 68, 120))}),
        "joining",
        TooLargeError,
    ),
}


def _segment() -> dict:
    """A sampled-looking segment of 25 frames (4 latent frames): room for an overlap."""
    return {"samples": torch.zeros(1, 128, 4, 2, 2), "type": "video", "frame_rate": 24.0}


# -- the checks --------------------------------------------------------------------------------------------------------


def _snapshot(value: Any) -> Any:
    """What must not change: tensors by content (small ones) and by their in-place version counter."""
    if isinstance(value, torch.Tensor):
        content = value.clone() if value.numel() <= 1_000_000 else None
        return ("tensor", value, value._version, tuple(value.shape), content)
    if isinstance(value, dict):
        return ("dict", value, {k: _snapshot(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return ("seq", value, [_snapshot(v) for v in value])
    return ("value", value)


def _unchanged(snap: Any) -> bool:
    kind, value = snap[0], snap[1]
    if kind == "tensor":
        _, _, version, shape, content = snap
        if value._version != version or tuple(value.shape) != shape:
            return False
        return content is None or torch.equal(torch.nan_to_num(value), torch.nan_to_num(content))
    if kind == "dict":
        return set(value) == set(snap[2]) and all(_unchanged(s) for k, s in snap[2].items())
    if kind == "seq":
        return len(value) == len(snap[2]) and all(_unchanged(s) for s in snap[2])
    return True


def _files(root) -> set[str]:
    found = set()
    for folder, dirs, files in os.walk(root):
        found.update(os.path.join(folder, name) for name in dirs + files)
    return found


def test_every_node_is_covered():
    covered = {case.node.__name__ for case in CASES.values()}
    assert covered == set(NODE_CLASS_MAPPINGS), set(NODE_CLASS_MAPPINGS) - covered
    assert len(CASES) >= 80


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_refused_clearly(env, name, monkeypatch):
    case = CASES[name]
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(env["root"] / "models"))
    monkeypatch.setenv("LTX_AV_OUTPUT_DIR", str(env["root"] / "output"))
    inputs = case.inputs(env)
    snapshot = _snapshot(inputs)
    before = _files(env["root"])
    node = case.node()
    started = time.perf_counter()
    with pytest.raises(case.error) as caught:
        getattr(node, case.node.FUNCTION)(**inputs)
    elapsed = time.perf_counter() - started
    message = str(caught.value)
    assert type(caught.value).__module__ == "ltx_av"  # what ComfyUI shows: ltx_av.InputError
    assert message.startswith(case.node.__name__) or case.node.__name__ in message, message
    assert _re_search(case.names, message), message
    assert "Traceback" not in message and "<class" not in message
    assert _unchanged(snapshot), "the node changed its inputs"
    assert _files(env["root"]) == before, "a refused request left files behind"
    assert elapsed < TIME_LIMIT, f"{elapsed:.2f} s"


def _re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text, flags=re.IGNORECASE | re.DOTALL) is not None


def test_text_encode_outputs_never_alias_its_cache(env):
    """Editing the conditioning one encode returned (a node downstream working in place) must not change what the
    next encode of the same prompt gives."""
    text_nodes._CONTEXT_CACHE.clear()
    encode = LTXTextEncode()
    first = encode.encode(env["text_encoder"], "a red ball", "keep loaded")[0]
    expected = first[0][0].clone()
    first[0][0].mul_(0.0).add_(math.pi)
    first[0][1]["ltx_audio_context"].zero_()
    again = encode.encode(env["text_encoder"], "a red ball", "keep loaded")[0]
    assert torch.equal(again[0][0], expected)
    assert again[0][1]["ltx_audio_context"].abs().sum() > 0


def test_error_labels_are_short_and_stable():
    """ComfyUI prints ``<module>.<class>``: ours must not show the install path."""
    from ltx_av.ltx_core import errors

    for cls in (errors.LTXError, errors.InputError, errors.CheckpointError, errors.ConfigError, TooLargeError):
        assert f"{cls.__module__}.{cls.__qualname__}" == f"ltx_av.{cls.__name__}"
