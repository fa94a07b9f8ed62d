"""Every example workflow opened in the host's real web frontend, as a user opens it (a file dropped on the canvas,
and a template from the Templates dialog), in a 1920x1080 headless Chromium; what the page shows is read back
(tests/comfy_frontend.mjs): node text drawn (the zoom), no title under the frontend's panels, nothing overlapping,
the missing-node / missing-media / missing-model state, and the Templates dialog's cards.

Needs a host (LTX_AV_COMFY_DIR / LTX_AV_COMFY_PYTHON, as tests/test_workflows.py), node, Chromium (CHROMIUM, default
/usr/bin/chromium) and playwright-core (PLAYWRIGHT_CORE_DIR, or resolvable by node); skipped otherwise. The host
gets the tiny stand-in models except LTX-2's (so the LTX-2 LoRA stack meets the missing-models dialog) and, in its
input folder, only example.png (what ComfyUI ships). With LTX_AV_SCREENSHOTS=<folder> the screenshots are kept
there, 1280x720 JPEG, in a sub-folder per frontend version (the README's docs/screenshots were made so)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest
from comfy_host import comfy_server, needs_comfy, write_media, write_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "comfy_frontend.mjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT = os.environ.get("PLAYWRIGHT_CORE_DIR", "playwright-core")
NODE = shutil.which("node")


def _browser_ready() -> str | None:
    """Why the browser side cannot run, or None."""
    if not NODE:
        return "node is not installed"
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (set CHROMIUM)"
    probe = subprocess.run([NODE, "-e", f"require({json.dumps(PLAYWRIGHT)})"], capture_output=True, timeout=60)
    if probe.returncode:
        return "playwright-core not found (npm install --prefix DIR playwright-core@1; set PLAYWRIGHT_CORE_DIR)"
    return None


_why = _browser_ready()
pytestmark = [needs_comfy, pytest.mark.skipif(_why is not None, reason=_why or "")]


def _load_build():
    spec = importlib.util.spec_from_file_location("ltx_av_workflow_build", os.path.join(ROOT, "workflows", "build.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _load_build()
GRAPHS = {graph.name: graph for graph in (make() for make in build.GRAPHS)}
NAMES = sorted(GRAPHS)
MODES = ("file", "template")
PACK = "ltx-av"  # the folder name the pack is linked in as (ComfyUI lists its templates under it)
LTX2_FILES = {build.CHECKPOINT_2: "checkpoints", build.CAMERA_LORA_2: "loras", build.DISTILLED_LORA_2: "loras"}
MISSING_MEDIA = {  # what each workflow asks the user to pick (the note's first line says so)
    "ltx-2.3_audio-to-video": {("LoadAudio", build.EXAMPLE_AUDIO)},
    "ltx-av_latent-round-trip": {("LoadVideo", build.EXAMPLE_VIDEO)},
    "ltx-2.3_ic-lora_canny-control": {("LoadVideo", build.EXAMPLE_VIDEO)},
}
TEXT_ZOOM = 8 / 14  # frontend 1.49 draws no node text below (LiteGraph's min_font_size_for_lod / NODE_TEXT_SIZE)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """Every workflow opened in the host's frontend both ways, and the Templates dialog: name -> report."""
    base = tmp_path_factory.mktemp("frontend")
    write_models(base / "models")
    for name, folder in LTX2_FILES.items():
        os.remove(base / "models" / folder / name)
    write_media(base / "input", image=build.EXAMPLE_IMAGE)
    shots = base / "shots"
    shots.mkdir()
    jobs = []
    for name in NAMES:
        jobs.append({"name": f"file:{name}", "workflow": os.path.join(ROOT, "workflows", "ui", f"{name}.json"),
                     "screenshot": str(shots / f"{name}.png")})  # fmt: skip
        jobs.append({"name": f"template:{name}", "template": [PACK, GRAPHS[name].template]})
    jobs.append({"name": "templates", "templates_dialog": PACK, "screenshot": str(shots / "templates-dialog.png")})
    with comfy_server(base) as url:
        served = {}
        for graph in GRAPHS.values():  # the pictures the template cards show (1.27 loads them as they scroll in)
            path = urllib.parse.quote(f"/api/workflow_templates/{PACK}/{graph.template}.jpg")
            with urllib.request.urlopen(url + path, timeout=30) as r:
                served[graph.template] = (r.status, r.headers.get("Content-Type"), len(r.read()))
        config = base / "jobs.json"
        config.write_text(json.dumps({"url": url + "/", "width": 1920, "height": 1080, "jobs": jobs}))
        run = subprocess.run(
            [NODE, DRIVER, str(config)], capture_output=True, text=True, timeout=1200,
            env={**os.environ, "PLAYWRIGHT_CORE_DIR": PLAYWRIGHT, "CHROMIUM": CHROMIUM},
        )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    reports = {r["name"]: r for r in json.loads(run.stdout)}
    reports["thumbnails served"] = served
    frontend = reports[f"file:{NAMES[0]}"]["frontend"]
    keep = os.environ.get("LTX_AV_SCREENSHOTS")
    if keep:
        _keep_screenshots(shots, os.path.join(keep, f"frontend-{frontend}"))
    return reports


def _keep_screenshots(shots, folder: str) -> None:
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    for png in sorted(shots.iterdir()):
        with Image.open(png) as image:
            small = image.convert("RGB").resize((1280, 720), Image.LANCZOS)
            small.save(os.path.join(folder, png.stem + ".jpg"), "JPEG", quality=60, optimize=True)


def _report(page, mode: str, name: str) -> dict:
    report = page[f"{mode}:{name}"]
    assert "error" not in report, report
    return report


def _is_new(report) -> bool:
    """Frontend 1.49 (ComfyUI 0.33) keeps missing media / models in stores; 1.27 (0.3.64) shows dialogs."""
    return report["missing_state_stores"]


def _overlap(a, b) -> bool:
    return (
        a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_opens_with_every_node_known(page, name, mode):
    report = _report(page, mode, name)
    assert report["missing_node_types"] == []
    assert not report["missing_nodes"]
    assert not [
        d for d in report["dialogs"] if "missing-nodes" in (d["key"] or "") or "load-workflow" in (d["key"] or "")
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_opens_at_a_zoom_that_draws_node_text(page, name, mode):
    """A file opens at its saved view, a template (frontend 1.49) fitted to the window: the same zoom, by design."""
    report = _report(page, mode, name)
    assert report["viewport"] == [1920, 1080]
    assert report["scale"] >= TEXT_ZOOM + 0.02 and not report["low_quality"], report["scale"]
    assert report["scale"] == pytest.approx(build.fit_view(GRAPHS[name])["scale"], abs=0.03)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_nothing_hidden_or_overlapping(page, name, mode):
    """Every node's and group's title is on screen and not under the frontend's panels (sidebar, top bar, toasts,
    minimap); with the frontend's own node sizes no two nodes overlap, no group runs over a node that is not
    inside it, and the note covers no group."""
    report = _report(page, mode, name)
    hidden = [n["title"] for n in report["nodes"] if not n["title_visible"]]
    hidden += [g["title"] for g in report["groups"] if not g["title_visible"]]
    assert hidden == []
    nodes = report["nodes"]
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            assert not _overlap(a, b), (a["title"], b["title"])
    for group in report["groups"]:
        for node in nodes:
            inside = (
                group["x"] <= node["x"] and node["x"] + node["w"] <= group["x"] + group["w"]
                and group["y"] <= node["y"] and node["y"] + node["h"] <= group["y"] + group["h"]
            )  # fmt: skip
            assert inside or not _overlap(group, node), (group["title"], node["title"])
            if node["type"] == "MarkdownNote":
                assert not _overlap(group, node), group["title"]


@pytest.mark.parametrize("name", NAMES)
def test_missing_media_is_what_the_note_asks_for(page, name):
    """Frontend 1.49 marks media inputs whose file is not in ComfyUI's input folder. With only ComfyUI's own
    example.png there, only the sound or clip the note's first line asks the user to pick is missing."""
    report = _report(page, "file", name)
    if not _is_new(report):
        pytest.skip(f"frontend {report['frontend']} has no missing-media state")
    missing = {(m["nodeType"], m["name"]) for m in report["missing_media"] or []}
    assert missing == MISSING_MEDIA.get(name, set())


@pytest.mark.parametrize("name", NAMES)
def test_missing_models_offer_the_official_downloads(page, name):
    """Only the LTX-2 files are missing from this host: the LoRA-stack workflow lists each once, with its official
    URL and folder (a download button); every LTX-2.3 workflow opens without a missing model."""
    report = _report(page, "file", name)
    expected = set(LTX2_FILES) if name == "ltx-2_lora-stack" else set()
    if _is_new(report):
        offered = {m["name"]: m for m in report["missing_models"] or [] if m.get("url")}
    else:
        dialogs = [d for d in report["dialogs"] if d["key"] == "global-missing-models-warning"]
        offered = {m["name"]: m for d in dialogs for m in d["props"]["missingModels"]}
    assert set(offered) == expected
    for file, folder in LTX2_FILES.items():
        if file in offered:
            assert offered[file]["directory"] == folder
            assert offered[file]["url"].startswith("https://huggingface.co/Lightricks/")
            assert offered[file]["url"].endswith(f"/resolve/main/{file}")


def test_missing_models_list_each_file_once(page):
    report = _report(page, "file", "ltx-2_lora-stack")
    if not _is_new(report):
        pytest.skip("frontend 1.27 lists only properties.models entries, once each")
    names = {m["name"] for m in report["missing_models"] or []}
    assert names == set(LTX2_FILES)


def test_templates_dialog_lists_every_template_with_its_picture(page):
    report = page["templates"]
    assert report["clicked"], report
    for graph in GRAPHS.values():
        assert graph.template in report["text"], graph.template
    assert len(report["cards"]) >= len(GRAPHS), report["cards"]
    for title, (status, kind, size) in page["thumbnails served"].items():
        assert status == 200 and kind == "image/jpeg" and size > 1000, title


def test_no_page_errors_while_opening_workflows(page):
    """(Frontend 1.27 itself throws once at start-up, setting a setting it does not know: not ours.)"""
    errors = page.get("page errors", {}).get("errors", [])
    assert [e for e in errors if e["job"] != "start-up"] == []
