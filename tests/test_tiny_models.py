"""The pack's own tiny stand-in files (make-tiny-models, the CLI default) are in the official layout."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from ltx_av.ltx_core import open_checkpoint, tiny

import tiny_models


@pytest.fixture(scope="module")
def our_tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ours")
    return {v: tiny.write_tiny_checkpoint(str(folder / f"{v}.safetensors"), v, seed=3) for v in tiny.VARIANTS}


def _header(path):
    with safe_open(path, "pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, f.metadata()


def test_our_tiny_file_has_the_reference_key_layout(our_tiny_files, tiny_checkpoints, variant):
    ours, meta = _header(our_tiny_files[variant])
    theirs, their_meta = _header(tiny_checkpoints[variant])
    assert ours == theirs
    assert json.loads(meta["config"]) == json.loads(their_meta["config"])
    assert meta["model_version"] == tiny.MODEL_VERSIONS[variant]


def test_the_reference_builds_every_part_from_our_tiny_file(our_tiny_files, variant):
    for part in ("transformer", "video_decoder", "audio_decoder", "vocoder"):
        module = tiny_models.load_reference(our_tiny_files[variant], part)
        assert all(torch.isfinite(t).all() for t in module.state_dict().values() if t.is_floating_point())
    assert open_checkpoint(our_tiny_files[variant]).variant == variant


def test_tiny_gemma_folder_loads_and_tokenizes_bytes(tmp_path):
    from ltx_av.ltx_core.gemma import load_gemma

    folder = tiny.write_tiny_gemma(str(tmp_path / "gemma"))
    gemma = load_gemma(folder, dtype=torch.float32)
    assert (gemma.hidden_size, gemma.num_hidden_states) == (tiny.GEMMA_HIDDEN, tiny.GEMMA_STATES)
    ids = gemma.token_ids("a cat")
    assert ids[0] == 2 and len(ids) == 1 + len(b"a cat")
