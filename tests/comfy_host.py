"""A real ComfyUI server with this pack, for the tests that need one (test_workflows, test_frontend,
test_core_interop). The host is the one LTX_AV_COMFY_DIR (its folder) and LTX_AV_COMFY_PYTHON (its Python) name;
without them those tests are skipped.

:func:`comfy_server` starts ``main.py --cpu`` on a free port with private input / output / temp / user folders, the
pack linked into a private ``custom_nodes`` folder and (``models=True``) the tiny stand-in models of
``python -m ltx_av make-tiny-models``, and stops it again (its whole process group)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMFY_DIR = os.environ.get("LTX_AV_COMFY_DIR")
COMFY_PYTHON = os.environ.get("LTX_AV_COMFY_PYTHON")
needs_comfy = pytest.mark.skipif(
    not (COMFY_DIR and COMFY_PYTHON), reason="set LTX_AV_COMFY_DIR and LTX_AV_COMFY_PYTHON to run a real ComfyUI"
)
MODEL_FOLDERS = (
    "checkpoints",
    "diffusion_models",
    "text_encoders",
    "latent_upscale_models",
    "loras",
    "vae",
    "model_patches",
)


def get(url: str, timeout: float = 30.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def post(url: str, payload: dict):
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def run_prompt(url: str, prompt: dict, timeout: float = 300.0) -> dict:
    """POST a prompt and wait for it: the /history entry (status, outputs), or a dict with the 400 reply."""
    status, answer = post(f"{url}/prompt", {"prompt": prompt})
    if status != 200:
        return {"rejected": answer}
    prompt_id = answer["prompt_id"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        history = get(f"{url}/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            return history[prompt_id]
        time.sleep(0.5)
    raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout:g} s")


def execution_error(entry: dict) -> dict | None:
    """The execution_error message of a finished prompt, if it failed."""
    for event, data in entry.get("status", {}).get("messages", []):
        if event == "execution_error":
            return data
    return None


def output_path(base: Path, item: dict) -> Path:
    """Where a file an output node reported lies (``--temp-directory X`` keeps temp files in ``X/temp``)."""
    folder = base / "output" if item.get("type", "output") == "output" else base / "temp" / "temp"
    return folder / item.get("subfolder", "") / item["filename"]


def write_models(folder: Path) -> list[str]:
    from ltx_av.ltx_core.tiny import write_tiny_models

    return write_tiny_models(str(folder))


@contextlib.contextmanager
def comfy_server(base: Path, models: bool = True, ready_node: str = "LTXSampler"):
    """Yield the URL of a private ComfyUI with this pack, in ``base`` (models in ``base/models``: written when
    ``models`` and the folder is missing; a caller may write or remove files there first)."""
    custom = base / "custom_nodes"
    custom.mkdir(parents=True, exist_ok=True)
    if not (custom / "ltx-av").exists():
        os.symlink(ROOT, custom / "ltx-av")
    if models and not (base / "models").exists():
        write_models(base / "models")
    lines = ["ltx_av_test:", f"  base_path: {base}", "  custom_nodes: custom_nodes"]
    lines += [f"  {kind}: models/{kind}" for kind in MODEL_FOLDERS]
    (base / "extra_model_paths.yaml").write_text("\n".join(lines) + "\n")
    for sub in ("input", "output", "temp", "user"):
        (base / sub).mkdir(exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(base / "server.log", "w")
    server = subprocess.Popen(
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
        deadline = time.time() + 240
        while True:
            try:
                get(f"{url}/object_info/{ready_node}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError((base / "server.log").read_text()[-4000:]) from None
                time.sleep(1)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
        log.close()


def write_media(folder: Path, image: str | None = None, audio: str | None = None, video: str | None = None) -> None:
    """The files workflows load: a picture, a 1 s stereo tone and a 9-frame clip with sound, under the names given."""
    import wave

    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if image:
        y, x = np.mgrid[0:96, 0:128]
        rgb = np.stack([x % 256, y * 2 % 256, (x + y) % 256], -1).astype(np.uint8)
        Image.fromarray(rgb).save(folder / image)
    if audio:
        t = np.arange(44100) / 44100
        tone = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
        with wave.open(str(folder / audio), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(44100)
            w.writeframes(np.repeat(tone[:, None], 2, 1).tobytes())
    if video:
        import torch

        from ltx_av.ltx_core.media import write_mp4

        frames = torch.rand(9, 64, 64, 3, generator=torch.Generator().manual_seed(0))
        write_mp4(str(folder / video), frames, 24.0, torch.zeros(2, 24000) + 0.1, 48000)
