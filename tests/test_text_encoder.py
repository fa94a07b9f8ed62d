"""The LTX text path (feature extractor V1/V2 + embeddings connectors) against ltx-core 1.0.0, both variants.

The reference only handles one prompt at a time, so it runs item by item (batch 1, full 1024-token padding) and
our path runs the whole batch, with full padding and with the padding trimmed to the longest prompt.
"""

from __future__ import annotations

import json

import pytest
import torch
from ltx_core.text_encoders.gemma.embeddings_processor import EmbeddingsProcessor
from safetensors import safe_open

from ltx_av.ltx_core import CheckpointError, InputError, TextEncoderConfig
from ltx_av.ltx_core.checkpoint import open_checkpoint
from ltx_av.ltx_core.text_encoder import (
    GemmaHiddenStates,
    TextPath,
    check_gemma_fits,
    load_text_path,
    pack_with_registers,
)

import tiny_models

T = 1024
LENGTHS = (7, 300, 1)  # a short prompt, a long one, the empty prompt (BOS only)


def _hidden_states(lengths=LENGTHS, seed=0, width=tiny_models.GEMMA_HIDDEN, states=tiny_models.GEMMA_STATES):
    """Gemma-like hidden states [B, T, D, L] (large outliers, as Gemma's have) with left padding."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), T, width, states, generator=g) * torch.linspace(1, 40, states)
    x[:, :, 3] *= 25  # one large channel
    mask = torch.arange(T)[None, :] >= T - torch.tensor(lengths)[:, None]
    return x, mask


def _reference(path):
    return EmbeddingsProcessor(
        feature_extractor=tiny_models.load_reference(path, "feature_extractor"),
        video_connector=tiny_models.load_reference(path, "video_connector"),
        audio_connector=tiny_models.load_reference(path, "audio_connector"),
    )


def test_module_keys_equal_the_checkpoint_keys(tiny_checkpoint, variant):
    ckpt = open_checkpoint(tiny_checkpoint)
    config = ckpt.component_config("text_encoder")
    with torch.device("meta"):
        module = TextPath(config)
    ours = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert ours == ckpt.shapes("text_encoder")
    projection = {k for k in ours if k.startswith("text_embedding_projection.")}
    if variant == "LTX-2":
        assert projection == {"text_embedding_projection.aggregate_embed.weight"}
    else:
        assert projection == {
            f"text_embedding_projection.{s}_aggregate_embed.{p}" for s in ("video", "audio") for p in ("weight", "bias")
        }
    assert config.gemma_hidden_size == tiny_models.GEMMA_HIDDEN
    assert config.gemma_num_hidden_states == tiny_models.GEMMA_STATES


def test_batched_prompts_match_the_reference_item_by_item(tiny_checkpoint, variant):
    ours = load_text_path(tiny_checkpoint, dtype=torch.float32)
    reference = _reference(tiny_checkpoint)
    states, mask = _hidden_states()
    full = ours(GemmaHiddenStates(states, mask, T))
    kept = max(LENGTHS)
    trimmed = ours(GemmaHiddenStates(states[:, -kept:], mask[:, -kept:], T))
    assert full.video.shape == (3, T, ours.config.video_dim) and full.audio.shape == (3, T, ours.config.audio_dim)
    errors = []
    with torch.no_grad():
        for i in range(len(LENGTHS)):
            ref = reference.process_hidden_states(states[i : i + 1], mask[i : i + 1].long(), "left")
            assert bool(ref.attention_mask.all())
            for ours_out in (full, trimmed):
                errors.append((ours_out.video[i : i + 1] - ref.video_encoding).abs().max().item())
                errors.append((ours_out.audio[i : i + 1] - ref.audio_encoding).abs().max().item())
    assert max(errors) <= 1e-4


def test_trimmed_padding_and_batching_change_nothing(tiny_checkpoint):
    ours = load_text_path(tiny_checkpoint, dtype=torch.float32)
    states, mask = _hidden_states(seed=1)
    batch = ours(GemmaHiddenStates(states, mask, T))
    for i, n in enumerate(LENGTHS):
        alone = ours(GemmaHiddenStates(states[i : i + 1, -n:], mask[i : i + 1, -n:], T))
        torch.testing.assert_close(alone.video, batch.video[i : i + 1], atol=2e-5, rtol=0)
        torch.testing.assert_close(alone.audio, batch.audio[i : i + 1], atol=2e-5, rtol=0)


def test_registers_fill_everything_after_the_prompt_tokens():
    registers = torch.arange(128.0)[:, None].expand(128, 2) + 1000
    features = torch.arange(2 * 5 * 2, dtype=torch.float32).view(2, 5, 2)
    mask = torch.tensor([[False, False, True, True, True], [False, False, False, False, True]])
    out = pack_with_registers(features, mask, registers, 256)
    assert out.shape == (2, 256, 2)
    torch.testing.assert_close(out[0, :3], features[0, 2:])
    torch.testing.assert_close(out[1, :1], features[1, 4:])
    assert out[0, 3:, 0].tolist() == [1000.0 + (i % 128) for i in range(3, 256)]
    assert out[1, 1:, 0].tolist() == [1000.0 + (i % 128) for i in range(1, 256)]
    with pytest.raises(InputError, match="multiple of the 128"):
        pack_with_registers(features, mask, registers, 1000)


def test_projection_input_scaling_and_normalisation_follow_the_variant(tiny_checkpoint, variant):
    """V1 ignores a global scale of the hidden states (mean/range) and so does V2 (per-token RMS)."""
    ours = load_text_path(tiny_checkpoint, dtype=torch.float32)
    states, mask = _hidden_states(lengths=(9,), seed=2)
    a = ours(GemmaHiddenStates(states, mask, T))
    b = ours(GemmaHiddenStates(states * 7.0, mask, T))
    torch.testing.assert_close(a.video, b.video, atol=1e-4, rtol=0)
    if variant == "LTX-2":  # one shared projection feeds both connectors
        assert ours.config.video_dim == ours.config.audio_dim == tiny_models.GEMMA_HIDDEN


def test_a_gemma_of_another_size_is_refused_naming_both(tiny_checkpoint):
    ours = load_text_path(tiny_checkpoint, dtype=torch.float32)
    states, mask = _hidden_states(lengths=(4,), width=16, states=5)
    with pytest.raises(InputError, match=r"hidden size 16 and 5 hidden states.*expects hidden size 32 and 5"):
        ours(GemmaHiddenStates(states, mask, T))
    with pytest.raises(InputError, match=r"Gemma 'x' has hidden size 32 and 49 hidden states \(48 layers\)"):
        check_gemma_fits(ours.config, 32, 49, "Gemma 'x'")


def test_checkpoint_without_text_projection_cannot_build_a_text_path(tiny_checkpoint, tmp_path):
    with safe_open(tiny_checkpoint, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys() if "embeddings_connector" in k}
    from safetensors.torch import save_file

    path = str(tmp_path / "connectors-only.safetensors")
    save_file(tensors, path, metadata=metadata)
    config = TextEncoderConfig.from_dict(json.loads(metadata["config"])["transformer"])
    assert config.gemma_hidden_size is None
    with pytest.raises(CheckpointError):
        load_text_path(path, dtype=torch.float32)
