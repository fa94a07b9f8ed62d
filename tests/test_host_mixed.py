"""The pack next to ComfyUI's own models in a real host (the one LTX_AV_COMFY_DIR / LTX_AV_COMFY_PYTHON name; skipped
without one):

* the host's real ``comfy.model_management`` (in its own Python, as a script): placing our transformer unloads a
  core model first, asking for our byte count on our device, and the host unloads ours again when it needs room;
* a real server running one prompt with a core model (core ``UpscaleModelLoader`` + ``ImageUpscaleWithModel``
  making the first frame from a tiny upscaler file) and ours (image-to-video with the tiny LTX-2.3 models); our
  weights register with the host's model management and are unloaded by "Unload models" (``POST /free``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMFY_DIR = os.environ.get("LTX_AV_COMFY_DIR")
COMFY_PYTHON = os.environ.get("LTX_AV_COMFY_PYTHON")
pytestmark = pytest.mark.skipif(
    not (COMFY_DIR and COMFY_PYTHON), reason="set LTX_AV_COMFY_DIR and LTX_AV_COMFY_PYTHON to run a real ComfyUI"
)

# Runs in the host's Python from its folder: the real model management, the pack imported as ComfyUI imports it.
# The compute device is cpu:0 (not torch.device("cpu"), so the host makes room for it as for a GPU); its free
# memory is simulated so that a small core model has to go before ours fits.
PROBE = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    import torch
    import comfy.options
    comfy.options.enable_args_parsing(False)
    from comfy.cli_args import args
    args.cpu = True
    import comfy.model_management as mm
    import comfy.model_patcher as mp

    root, checkpoint = sys.argv[1], sys.argv[2]
    spec = importlib.util.spec_from_file_location(
        "ltx_av_probe", os.path.join(root, "__init__.py"), submodule_search_locations=[root]
    )
    pack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = pack
    spec.loader.exec_module(pack)
    model_nodes = sys.modules["ltx_av_probe.nodes.model"]

    DEVICE, CPU = torch.device("cpu", 0), torch.device("cpu")
    holder = model_nodes.load_transformer(checkpoint, device=DEVICE, offload_device=CPU)
    ours = holder.weights.device_bytes()
    core = mp.ModelPatcher(torch.nn.Linear(256, 1024), load_device=DEVICE, offload_device=CPU)
    required = ours * 1.1 + max(mm.minimum_inference_memory(), mm.extra_reserved_memory())
    total = int(required + core.model_size() / 2)  # room for ours only once the core model is unloaded

    def free(dev=None, torch_free_too=False):
        used = sum(m.model_loaded_memory() for m in mm.current_loaded_models if m.model is not None and m.device == dev)
        value = total - used if dev == DEVICE else 64 * 2**30
        return (value, value) if torch_free_too else value

    mm.get_free_memory = free
    frees, real_free = [], mm.free_memory

    def spy(memory_required, device, *a, **k):
        frees.append([float(memory_required), str(device), holder._on_device, core.loaded_size()])
        return real_free(memory_required, device, *a, **k)

    mm.free_memory = spy
    out = {"ours": ours, "required": required, "module": mm.__file__}
    mm.load_models_gpu([core])
    out["core_before"] = core.loaded_size()
    frees.clear()
    with holder.in_use():
        out["placed_in_use"] = holder._on_device
        out["core_during"] = core.loaded_size()
        out["frees"] = list(frees)
        out["registered"] = [
            m.model_loaded_memory() for m in mm.current_loaded_models if m.model is holder.weights._patcher
        ]
    out["parked_after"] = not holder._on_device
    holder.to_compute_device()
    mm.load_models_gpu([core])  # a core node loads its model again: ours make way
    out["evicted"] = not holder._on_device and holder.model.placement.device == CPU
    out["core_after"] = core.loaded_size()
    print("PROBE " + json.dumps(out))
    """
)


def test_the_real_model_management_makes_room_for_ours_and_unloads_them(tiny_checkpoints, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": COMFY_DIR}
    run = subprocess.run(
        [COMFY_PYTHON, str(script), ROOT, tiny_checkpoints["LTX-2.3"]],
        cwd=COMFY_DIR, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [line for line in run.stdout.splitlines() if line.startswith("PROBE ")]
    assert run.returncode == 0 and lines, run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads(lines[-1][len("PROBE ") :])
    assert os.path.realpath(out["module"]).startswith(os.path.realpath(COMFY_DIR))
    assert out["core_before"] > 0
    # the host asked for our bytes (x 1.1 + its inference reserve) on our device while ours were parked, and unloaded
    # the core model to get them
    (memory_required, device, placed, core_loaded), *_ = out["frees"]
    assert memory_required == pytest.approx(out["required"]) and device == "cpu:0"
    assert not placed and core_loaded == out["core_before"]
    assert out["placed_in_use"] and out["core_during"] == 0
    assert out["registered"] == [out["ours"]]
    assert out["parked_after"]
    assert out["evicted"] and out["core_after"] == out["core_before"]


# -- one prompt with a core model and ours, in a real server ---------------------------------------------------------


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _post(url: str, payload: dict):
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            body = r.read()
            return r.status, json.loads(body) if body else {}
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def write_tiny_upscaler(path: str) -> None:
    """A 2x "RealESRGAN Compact" (spandrel's SRVGGNetCompact: 4 features, one body conv), what core's
    UpscaleModelLoader reads."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    shapes = {
        "body.0.weight": (4, 3, 3, 3), "body.0.bias": (4,), "body.1.weight": (4,),
        "body.2.weight": (4, 4, 3, 3), "body.2.bias": (4,), "body.3.weight": (4,),
        "body.4.weight": (12, 4, 3, 3), "body.4.bias": (12,),
    }  # fmt: skip
    save_file({k: 0.1 * torch.randn(s, generator=g) for k, s in shapes.items()}, path)


def _mixed_prompt() -> dict:
    """The image-to-video example at 64x64, 9 frames, 2 steps, its first frame upscaled by a core model first."""
    with open(os.path.join(ROOT, "workflows", "api", "ltx-2.3_image-to-video.json")) as f:
        prompt = json.load(f)
    for node in prompt.values():
        if node["class_type"] == "LTXEmptyLatent":
            node["inputs"].update(width=64, height=64, frames=9)
        elif node["class_type"] == "LTXSampler":
            node["inputs"].update(steps=2, schedule="ltx2")
            if "settings" in node["inputs"]:  # the widgets as set (2 steps), not the checkpoint's official recipe
                node["inputs"]["settings"] = False
        elif node["class_type"] == "LoadImage":
            node["inputs"]["image"] = "first.png"
    (condition,) = [n for n in prompt.values() if n["class_type"] == "LTXImageCondition"]
    prompt["900"] = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "tiny-compact-x2.safetensors"}}
    prompt["901"] = {
        "class_type": "ImageUpscaleWithModel",
        "inputs": {"upscale_model": ["900", 0], "image": condition["inputs"]["image"]},
    }
    condition["inputs"]["image"] = ["901", 0]
    return prompt


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real ComfyUI with this pack linked in, the tiny LTX models and the tiny core upscaler."""
    import numpy as np
    from PIL import Image

    from ltx_av.ltx_core.tiny import write_tiny_models

    base = tmp_path_factory.mktemp("comfy_mixed")
    (base / "custom_nodes").mkdir()
    os.symlink(ROOT, base / "custom_nodes" / "ltx-av")
    write_tiny_models(str(base / "models"))
    (base / "models" / "upscale_models").mkdir()
    write_tiny_upscaler(str(base / "models" / "upscale_models" / "tiny-compact-x2.safetensors"))
    (base / "extra_model_paths.yaml").write_text(
        "ltx_av_mixed:\n"
        f"  base_path: {base}\n"
        "  custom_nodes: custom_nodes\n"
        "  checkpoints: models/checkpoints\n"
        "  text_encoders: models/text_encoders\n"
        "  latent_upscale_models: models/latent_upscale_models\n"
        "  upscale_models: models/upscale_models\n"
    )
    for sub in ("input", "output", "temp", "user"):
        (base / sub).mkdir()
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([x * 4 % 256, y * 5 % 256, (x + y) * 2 % 256], -1).astype(np.uint8)
    Image.fromarray(rgb).save(base / "input" / "first.png")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(base / "server.log", "w")
    process = subprocess.Popen(
        [
            COMFY_PYTHON, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
            "--extra-model-paths-config", str(base / "extra_model_paths.yaml"),
            "--input-directory", str(base / "input"), "--output-directory", str(base / "output"),
            "--temp-directory", str(base / "temp"), "--user-directory", str(base / "user"),
            "--disable-auto-launch",
        ],
        cwd=COMFY_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                _get(f"{url}/object_info/LTXSampler")
                break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    raise RuntimeError((base / "server.log").read_text()[-4000:]) from None
                time.sleep(1)
        yield url, base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _wait_for_log(path, text: str, timeout: float) -> str:
    deadline = time.time() + timeout
    while True:
        content = path.read_text()
        if text in content or time.time() > deadline:
            return content
        time.sleep(0.5)


def test_a_core_model_and_ours_run_in_one_prompt(server):
    url, base = server
    status, answer = _post(f"{url}/prompt", {"prompt": _mixed_prompt()})
    assert status == 200, answer
    prompt_id = answer["prompt_id"]
    deadline = time.time() + 300
    while time.time() < deadline:
        history = _get(f"{url}/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            break
        time.sleep(1)
    entry = history[prompt_id]
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
    videos = [
        base / "output" / item.get("subfolder", "") / item["filename"]
        for output in entry["outputs"].values()
        for item in output.get("images", [])
        if item["filename"].endswith(".mp4")
    ]
    assert videos and videos[0].stat().st_size > 0

    log_path = base / "server.log"
    log = log_path.read_text()
    # our weights went through the host's model management, next to the core upscaler
    for name in ("LTXAVTextEncoder", "LTXAVVideoVAE", "LTXAVTransformer", "LTXAVAudioVAE"):
        assert f"Requested to load {name}" in log, name
    # "Unload models": the host unloads ours like its own (on the CPU the transformer's placement is its parking)
    assert _post(f"{url}/free", {"unload_models": True})[0] == 200
    log = _wait_for_log(log_path, "ComfyUI unloaded LTXAVTransformer", 30)
    assert "ComfyUI unloaded LTXAVTransformer" in log
    assert "Traceback" not in log, log[-4000:]
