"""The host adapter: fallbacks outside ComfyUI, and ComfyUI's services when its modules are loaded."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from ltx_av.nodes import host


def test_fallback_devices_without_comfyui():
    assert not host.in_comfyui()
    assert isinstance(host.compute_device(), torch.device)
    assert host.offload_device() == torch.device("cpu")
    assert host.intermediate_device() == torch.device("cpu")


def test_progress_reports_to_the_listener_and_honours_interrupts():
    seen = []
    host.set_progress_listener(lambda v, t, p: seen.append((v, t, p)))
    try:
        bar = host.Progress(3)
        bar.update()
        bar.update(preview="img")
        bar.callback()(3, 3)
        assert seen == [(1, 3, None), (2, 3, "img"), (3, 3, None)]
        host.request_interrupt()
        with pytest.raises(host.Interrupted):
            bar.update()
        host.check_interrupt()  # the request was consumed
    finally:
        host.set_progress_listener(None)


def test_model_folders_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(tmp_path))
    folder = tmp_path / "checkpoints"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.safetensors", "b.ckpt", "sub/c.safetensors"):
        (folder / name).write_bytes(b"")
    assert host.list_models("checkpoints") == ["a.safetensors", "sub/c.safetensors"]
    assert host.model_path("checkpoints", "sub/c.safetensors") == str(folder / "sub" / "c.safetensors")
    with pytest.raises(
        FileNotFoundError, match=r"'missing.safetensors' was not found in the 'checkpoints' folders: .*checkpoints"
    ):
        host.model_path("checkpoints", "missing.safetensors")


def test_comfyui_services_are_used_when_loaded(monkeypatch, tmp_path):
    calls = []
    mm = types.SimpleNamespace(
        get_torch_device=lambda: torch.device("meta"),
        unet_offload_device=lambda: torch.device("cpu"),
        intermediate_device=lambda: torch.device("cpu"),
        throw_exception_if_processing_interrupted=lambda: calls.append("interrupt-check"),
        soft_empty_cache=lambda: calls.append("empty"),
    )

    class Bar:
        def __init__(self, total):
            self.total = total

        def update_absolute(self, value, total, preview):
            calls.append(("bar", value, total, preview))

    folders = {"checkpoints": ([str(tmp_path)], {".safetensors", ".ckpt"})}
    fp = types.SimpleNamespace(
        folder_names_and_paths=folders,
        models_dir=str(tmp_path),
        get_folder_paths=lambda kind: folders[kind][0],
        get_filename_list=lambda kind: ["x.ckpt", "y.safetensors"],
        get_full_path=lambda kind, name: f"{tmp_path}/{name}" if name == "y.safetensors" else None,
        get_output_directory=lambda: "/out",
        get_temp_directory=lambda: "/tmp-comfy",
    )
    monkeypatch.setitem(sys.modules, "comfy.model_management", mm)
    monkeypatch.setitem(sys.modules, "comfy.utils", types.SimpleNamespace(ProgressBar=Bar))
    monkeypatch.setitem(sys.modules, "folder_paths", fp)
    assert host.in_comfyui()
    assert host.compute_device() == torch.device("meta")
    host.register_model_folders()
    assert folders["latent_upscale_models"][1] == {".safetensors"}
    assert host.list_models("checkpoints") == ["y.safetensors"]
    assert host.model_path("checkpoints", "y.safetensors").endswith("y.safetensors")
    assert host.output_directory() == "/out"
    host.Progress(2).update(preview="png")
    assert ("bar", 1, 2, ("JPEG", "png", 512)) in calls and "interrupt-check" in calls
    host.free_memory()
    assert "empty" in calls
