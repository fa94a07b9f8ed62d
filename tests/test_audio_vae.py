"""Audio VAE: strict loading from the official layout and float32 parity with ltx-core 1.0.0 (both variants)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import save_file

from ltx_av.ltx_core.audio_vae import AudioVAE, Upsample, load_audio_vae
from ltx_av.ltx_core.checkpoint import open_checkpoint
from ltx_av.ltx_core.errors import CheckpointError

import tiny_models

TOL = 1e-4


@pytest.fixture(scope="module")
def references(tiny_checkpoints):
    return {
        v: (tiny_models.load_reference(p, "audio_encoder"), tiny_models.load_reference(p, "audio_decoder"))
        for v, p in tiny_checkpoints.items()
    }


def test_module_keys_are_the_checkpoint_keys(tiny_checkpoint):
    ckpt = open_checkpoint(tiny_checkpoint)
    with torch.device("meta"):
        vae = AudioVAE(ckpt.component_config("audio_vae"))
    ours = {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    assert ours == {k: tuple(v) for k, v in ckpt.shapes("audio_vae").items()}
    assert "per_channel_statistics.mean-of-means" in ours and "decoder.up.1.upsample.conv.conv.weight" in ours


def test_decoder_matches_reference(tiny_checkpoint, variant, references):
    vae = load_audio_vae(tiny_checkpoint, encoder=False)
    assert not hasattr(vae, "encoder")
    ref = references[variant][1]
    g = torch.Generator().manual_seed(0)
    for frames in (1, 2, 9):
        z = torch.randn(2, 8, frames, 16, generator=g)
        with torch.no_grad():
            ours, theirs = vae.decode(z), ref(z)
        assert ours.shape == theirs.shape == (2, 2, max(4 * frames - 3, 1), 64)
        assert (ours - theirs).abs().max() <= TOL


def test_encoder_matches_reference_on_the_same_mel(tiny_checkpoint, variant, references):
    vae = load_audio_vae(tiny_checkpoint, decoder=False)
    ref = references[variant][0]
    g = torch.Generator().manual_seed(1)
    for mel_frames in (1, 4, 5, 37):
        mel = torch.randn(2, 2, mel_frames, 64, generator=g) * 2 - 5  # log-mel range
        with torch.no_grad():
            ours, theirs = vae.encode(mel), ref(mel)
        assert ours.shape == theirs.shape == (2, 8, (mel_frames - 1) // 4 + 1, 16)
        assert (ours - theirs).abs().max() <= TOL


def test_upsample_equals_nearest_then_causal_conv():
    """The phase-split upsampler is the literal 'nearest x2, causal 3x3 conv, drop first frame'."""
    torch.manual_seed(0)
    up = Upsample(6)
    x = torch.randn(2, 6, 5, 4)
    with torch.no_grad():
        literal = up.conv(torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))[:, :, 1:]
        assert torch.allclose(up(x), literal, atol=1e-6)


def test_attention_configs_match_reference(tmp_path):
    """Configs with mid-block and per-level attention (not used by released files) load and match too."""
    config = tiny_models.tiny_config("LTX-2")
    dd = config["audio_vae"]["model"]["params"]["ddconfig"]
    dd.update(mid_block_add_attention=True, attn_resolutions=[128])
    parts = {name: tiny_models.REFERENCE_PARTS[name][0](config).float() for name in ("audio_encoder", "audio_decoder")}
    for i, module in enumerate(parts.values()):
        tiny_models.fill_deterministically(module, seed=7 + i)
    parts["audio_decoder"].per_channel_statistics.load_state_dict(
        parts["audio_encoder"].per_channel_statistics.state_dict()
    )
    path = str(tmp_path / "attn.safetensors")
    save_file(tiny_models.file_state_dict(parts), path, metadata={"config": json.dumps(config)})
    vae = load_audio_vae(path)
    assert hasattr(vae.decoder.mid.attn_1, "proj_out") and len(vae.encoder.down[1].attn) == 1
    mel = torch.randn(1, 2, 9, 64)
    z = torch.randn(1, 8, 3, 16)
    with torch.no_grad():
        assert (vae.encode(mel) - tiny_models.load_reference(path, "audio_encoder")(mel)).abs().max() <= TOL
        assert (vae.decode(z) - tiny_models.load_reference(path, "audio_decoder")(z)).abs().max() <= TOL


def test_wrong_config_is_refused_naming_the_tensors(tiny_checkpoint, tmp_path):
    ckpt = open_checkpoint(tiny_checkpoint)
    config = copy.deepcopy(ckpt.raw_config)
    config["audio_vae"]["model"]["params"]["ddconfig"]["num_res_blocks"] = 2
    tensors = {k: ckpt.file.tensor(k) for k in ckpt.file.tensors if k.startswith("audio_vae.")}
    path = str(tmp_path / "wrong.safetensors")
    save_file(tensors, path, metadata={"config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="missing"):
        load_audio_vae(path)
