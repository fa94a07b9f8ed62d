"""The LTXModelLoader node and the LTX_MODEL holder, outside ComfyUI (host falls back to plain folders)."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformer_cases import make_case

from ltx_av.ltx_core import CheckpointError, InputError
from ltx_av.ltx_core.checkpoint import build_component
from ltx_av.ltx_core.offload import FLOAT8
from ltx_av.ltx_core.perturbations import Perturbations, isolate_modalities
from ltx_av.ltx_core.transformer import AudioVideoTransformer
from ltx_av.nodes import NODE_CLASS_MAPPINGS, host
from ltx_av.nodes.model import LoadedTransformer, LTXModelLoader


@pytest.fixture
def models_dir(tmp_path, monkeypatch, tiny_checkpoints):
    """checkpoints/ holds both tiny monoliths; diffusion_models/ a transformer-only file of LTX-2.3."""
    for kind in ("checkpoints", "diffusion_models"):
        (tmp_path / kind).mkdir()
    for path in tiny_checkpoints.values():
        os.symlink(path, tmp_path / "checkpoints" / os.path.basename(path))
    with safe_open(tiny_checkpoints["LTX-2.3"], "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys() if k.startswith("model.diffusion_model.")}
    tensors = {k: v for k, v in tensors.items() if "embeddings_connector" not in k}
    config = json.loads(metadata["config"])
    save_file(
        tensors,
        str(tmp_path / "diffusion_models" / "tiny-ltx-2.3-transformer.safetensors"),
        metadata={"config": json.dumps({"transformer": config["transformer"]})},
    )
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(tmp_path))
    return tmp_path


def test_node_is_registered_with_tooltips_and_defaults(models_dir):
    assert NODE_CLASS_MAPPINGS["LTXModelLoader"] is LTXModelLoader
    assert LTXModelLoader.CATEGORY.startswith("LTX-AV/") and LTXModelLoader.DISPLAY_NAME
    required = LTXModelLoader.INPUT_TYPES()["required"]
    assert set(required) == {"model_name", "dtype", "offload", "cross_modal_timesteps"}
    for name, (_, options) in required.items():
        assert options["tooltip"], name
    assert required["model_name"][0] == [
        "tiny-ltx-2.3.safetensors",
        "tiny-ltx-2.safetensors",
        "tiny-ltx-2.3-transformer.safetensors",
    ]
    assert required["dtype"][1]["default"] == "auto" and "float8-storage" in required["dtype"][0]
    assert required["offload"][0] == ["none", "blocks"]


def test_loaded_model_reproduces_the_library_forward(models_dir, tiny_checkpoints, variant):
    updates = []
    host.set_progress_listener(lambda value, total, preview: updates.append((value, total)))
    try:
        (holder,) = LTXModelLoader().load(f"tiny-{variant.lower()}.safetensors", "auto", "none", "cross_sigma")
    finally:
        host.set_progress_listener(None)
    assert isinstance(holder, LoadedTransformer)
    assert holder.variant == variant and holder.config.num_layers == 2
    assert holder.dtype == torch.float32 and holder.device.type == "cpu"
    assert updates and updates[-1][0] == updates[-1][1] == len(holder.model.state_dict())
    direct = build_component(tiny_checkpoints[variant], "transformer", AudioVideoTransformer)
    case = make_case(holder.config, batch=2, sigmas=(0.9, 0.5), condition_first_frame=True)
    perturbations = Perturbations.of([(), isolate_modalities()])
    with torch.no_grad():
        expected = direct(case.video, case.audio, perturbations)
    with holder.in_use():
        got = holder(case.video, case.audio, perturbations)
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(g, e)
    x0 = holder.velocity_to_x0(case.video.latent, got[0], case.video.timesteps)
    assert x0.shape == case.video.latent.shape


def test_transformer_only_file_from_diffusion_models_with_float8_storage(models_dir, tiny_checkpoints):
    (holder,) = LTXModelLoader().load("tiny-ltx-2.3-transformer.safetensors", "float8-storage", "blocks", "per_token")
    assert holder.variant == "LTX-2.3" and holder.float8 and holder.av_timestep_rule == "per_token"
    assert holder.model.transformer_blocks[0].attn1.to_q.weight.dtype == FLOAT8
    reference = LTXModelLoader().load("tiny-ltx-2.3.safetensors", "fp32", "none", "per_token")[0]
    case = make_case(holder.config, keyframe_at=9)
    got, expected = holder(case.video, case.audio), reference(case.video, case.audio)
    for g, e in zip(got, expected, strict=True):
        assert (g - e).pow(2).mean().sqrt() <= 0.04 * e.std()
    assert "float8" in repr(holder)


def test_bad_choices_and_files_give_clear_errors(models_dir, tiny_checkpoints, tmp_path):
    with pytest.raises(InputError, match="model_name 'missing.safetensors' was not found"):
        LTXModelLoader().load("missing.safetensors", "auto", "none", "cross_sigma")
    with pytest.raises(InputError, match="dtype is 'int8'"):
        LTXModelLoader().load("tiny-ltx-2.safetensors", "int8", "none", "cross_sigma")
    with pytest.raises(InputError, match="offload is 'disk'"):
        LTXModelLoader().load("tiny-ltx-2.safetensors", "auto", "disk", "cross_sigma")
    vae_only = models_dir / "checkpoints" / "vae-only.safetensors"
    with safe_open(tiny_checkpoints["LTX-2"], "pt") as f:
        save_file(
            {k: f.get_tensor(k) for k in f.keys() if k.startswith("vae.")},
            str(vae_only),
            metadata=f.metadata(),
        )
    with pytest.raises(CheckpointError, match="has no transformer"):
        LTXModelLoader().load("vae-only.safetensors", "auto", "none", "cross_sigma")
