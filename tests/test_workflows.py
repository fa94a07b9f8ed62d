"""The example workflows: built from workflows/build.py, made only of our nodes and the ComfyUI core nodes described
there, with inputs that match each node's INPUT_TYPES; UI files and API twins describe the same graphs; the layout,
notes, download metadata and templates (titles, thumbnails) are what a user should meet; and (when a ComfyUI is
configured) every API workflow runs in the real host against tiny model files. tests/test_frontend.py opens them in
the host's real frontend."""

from __future__ import annotations

import glob
import importlib.util
import json
import math
import os
import sys

import pytest
from comfy_host import comfy_server, get, needs_comfy, output_path, run_prompt, write_media

from ltx_av import NODE_CLASS_MAPPINGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = os.path.join(ROOT, "workflows")


def _load_build():
    spec = importlib.util.spec_from_file_location("ltx_av_workflow_build", os.path.join(WORKFLOWS, "build.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build = _load_build()
NAMES = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(WORKFLOWS, "ui", "*.json")))
# Combo inputs that list model files: their values depend on the user's folders.
FILE_COMBOS = {
    ("LTXModelLoader", "model_name"),
    ("LTXTextEncoderLoader", "gemma"),
    ("LTXTextEncoderLoader", "ckpt_name"),
}
FILE_COMBOS |= {("LTXLoadVideoVAE", "vae_name"), ("LTXAudioVAELoader", "ckpt_name"), ("LTXLoadLatent", "file")}
FILE_COMBOS |= {("LTXUpsamplerLoader", "upsampler_name"), ("LTXLoraLoader", "lora_name")}
TWO_STAGE = ("ltx-2.3_text-to-video_two-stage", "ltx-2.3_image-to-video_two-stage")
TEMPORAL = "ltx-2.3_temporal-upsample"
TWO_STAGE_DEV = "ltx-2.3_text-to-video_two-stage_dev"
LORA_STACK = "ltx-2_lora-stack"
IC_LORA = "ltx-2.3_ic-lora_canny-control"
LONG_VIDEO = "ltx-2.3_long-video"
TWO_STAGE_25 = "ltx-2.5_text-to-video_two-stage"


def _json(kind: str, name: str) -> dict:
    with open(os.path.join(WORKFLOWS, kind, f"{name}.json")) as f:
        return json.load(f)


def test_the_expected_workflows_exist():
    assert set(NAMES) >= {
        "ltx-2.3_text-to-video",
        "ltx-2.3_text-to-video_distilled",
        "ltx-2.3_image-to-video",
        "ltx-2.3_first-last-frame",
        "ltx-2.3_audio-to-video",
        "ltx-av_latent-round-trip",
        *TWO_STAGE,
        TEMPORAL,
        TWO_STAGE_DEV,
        LORA_STACK,
        IC_LORA,
        LONG_VIDEO,
        "ltx-2.5_text-to-video",
        "ltx-2.5_image-to-video",
        TWO_STAGE_25,
    }


GRAPHS = {graph.name: graph for graph in (make() for make in build.GRAPHS)}
TEMPLATES = {name: graph.template for name, graph in GRAPHS.items()}


def test_files_are_what_build_py_writes():
    """UI files, API twins and the example_workflows copies (what ComfyUI lists under Templates, by title) are in
    sync; each template has its thumbnail."""
    files = build.build()
    assert len(files) == 3 * len(NAMES) and set(GRAPHS) == set(NAMES)
    for relative, content in files.items():
        with open(os.path.join(ROOT, relative), "rb") as f:
            assert f.read() == content, f"{relative} is stale: run python workflows/build.py"
    # nothing else in the template folder, and no JSON directly in workflows/ (ComfyUI would list it twice)
    expected = sorted(f"{t}{ext}" for t in TEMPLATES.values() for ext in (".json", ".jpg"))
    assert sorted(os.listdir(os.path.join(ROOT, "example_workflows"))) == expected
    assert not glob.glob(os.path.join(WORKFLOWS, "*.json"))


@pytest.mark.parametrize("name", NAMES)
def test_template_title_and_thumbnail(name):
    """The frontends show a custom node pack's template under its file name, with <name>.jpg as its picture (both
    1.27 and 1.49 hard-code .jpg): readable titles that fit a card, a small JPEG, file names safe in a URL path."""
    title = TEMPLATES[name]
    assert 10 <= len(title) <= 36 and title[0].isupper(), title
    assert set(title) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-()"), title
    from PIL import Image

    path = os.path.join(ROOT, "example_workflows", f"{title}.jpg")
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == build.THUMB_SIZE
    assert os.path.getsize(path) < 40_000
    # what build.py draws now has the same size (the pixels may differ with the Pillow version)
    from io import BytesIO

    with Image.open(BytesIO(build.thumbnail(GRAPHS[name]))) as fresh:
        assert fresh.size == build.THUMB_SIZE


@pytest.mark.parametrize("name", NAMES)
def test_layout_reads_well(name):
    """No overlaps, no group over another's nodes or the note, the output chain never loops back, and the view a
    template opens with (ComfyUI 0.33 fits it to the window) is one at which the frontend draws node text; the saved
    view is that one. tests/test_frontend.py checks the same in the real frontends, with their node sizes."""
    graph = GRAPHS[name]
    ui = _json("ui", name)
    assert build.layout_report(graph) == []
    view = build.fit_view(graph)
    assert ui["extra"]["ds"] == view and view["scale"] >= 0.6
    left, top, right, bottom = build.bounds(graph)
    assert right - left <= 2400 and bottom - top <= 1300  # fits a 1080p screen at that zoom


MEDIA = {"LoadImage": "image", "LoadAudio": "audio", "LoadVideo": "file"}


@pytest.mark.parametrize("name", NAMES)
def test_note_says_first_what_to_do(name):
    """The note's first line is the first thing to do: which node to point at your own file (by the title it shows)
    when the graph loads one, else where to write the prompt; then where every model file goes, with Gemma's
    download spelled out (a folder the missing-models dialog cannot fetch)."""
    ui = _json("ui", name)
    (note,) = [n for n in ui["nodes"] if n["type"] == "MarkdownNote"]
    text = note["widgets_values"][0]
    first = text.splitlines()[0]
    for node in ui["nodes"]:
        if node["type"] in MEDIA:
            assert f"*{node.get('title', node['type'])}*" in first, (first, node.get("title"))
            assert "own" in first
    if not any(n["type"] in MEDIA for n in ui["nodes"]):
        assert "prompt" in first.lower()
    for node in ui["nodes"]:
        for model in node["properties"].get("models", []):
            assert f"models/{model['directory']}/{model['name']}" in text
    gemmas = {n["widgets_values"][0] for n in ui["nodes"] if n["type"] == "LTXTextEncoderLoader"}
    if gemmas - {build.LTX25_TEXT_ENCODER}:  # Gemma 3: a folder, which the dialog cannot fetch
        assert "huggingface-cli download google/gemma-3-12b-it-qat-q4_0-unquantized" in text
        assert "model-00005-of-00005.safetensors" in text and "tokenizer.json" in text


OFFICIAL_URL = "https://huggingface.co/Lightricks/"


@pytest.mark.parametrize("name", NAMES)
def test_every_downloadable_file_carries_its_download(name):
    """properties.models on each loader: the official URL and model folder of every file its widgets name (the
    frontends' missing-models dialog offers these, matched by name); the text encoder's Gemma folder has none."""
    ui = _json("ui", name)
    for node in ui["nodes"]:
        values = {v for v in node["widgets_values"] if isinstance(v, str)}
        models = node["properties"].get("models", [])
        named = {m["name"] for m in models}
        assert named <= values
        for model in models:
            assert model["url"] == f"{OFFICIAL_URL}{model['url'][len(OFFICIAL_URL) :]}"
            assert "/resolve/main/" in model["url"] and model["url"].endswith(f"/{model['name']}")
            assert model["directory"] in (
                "checkpoints",
                "loras",
                "latent_upscale_models",
                "diffusion_models",
                "text_encoders",
                "vae",
                "model_patches",
            )
        for value in values:
            if value.endswith(".safetensors"):
                assert value in named, f"{node['type']}: {value} has no download"


def _spec(node_type: str) -> dict[str, tuple]:
    """name -> (kind, options, optional) for one of our nodes or a core node from build.CORE."""
    if node_type in build.CORE:
        return {n: (k.rstrip("?"), {}, k.endswith("?")) for n, k, _ in build.CORE[node_type]["inputs"]}
    types = NODE_CLASS_MAPPINGS[node_type].INPUT_TYPES()
    out = {}
    for section in ("required", "optional"):
        for name, entry in types.get(section, {}).items():
            kind = entry[0]
            out[name] = (
                "COMBO" if isinstance(kind, list | tuple) else kind,
                entry[1] if len(entry) > 1 else {},
                section == "optional",
            )
            if out[name][0] == "COMBO":
                out[name] = ("COMBO", {**out[name][1], "choices": list(kind)}, out[name][2])
    return out


def _check_value(node_type: str, name: str, kind: str, options: dict, value) -> None:
    where = f"{node_type}.{name}"
    if kind == "COMBO":
        if node_type in NODE_CLASS_MAPPINGS and (node_type, name) not in FILE_COMBOS:
            assert value in options["choices"], f"{where}: {value!r} not in {options['choices']}"
        else:
            assert isinstance(value, str) and value, where
    elif kind == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), where
        assert options.get("min", -math.inf) <= value <= options.get("max", math.inf), where
    elif kind == "FLOAT":
        assert isinstance(value, int | float) and not isinstance(value, bool), where
        assert options.get("min", -math.inf) <= value <= options.get("max", math.inf), where
    elif kind == "STRING":
        assert isinstance(value, str), where
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), where


def _output_types(node_type: str) -> list[str]:
    return [kind for _, kind in build.node_outputs(node_type)]


@pytest.mark.parametrize("name", NAMES)
def test_api_workflow_matches_the_nodes(name):
    prompt = _json("api", name)
    for node_id, node in prompt.items():
        node_type = node["class_type"]
        assert node_type in NODE_CLASS_MAPPINGS or node_type in build.CORE, f"unknown node type {node_type}"
        assert node_type not in build.FRONTEND_ONLY
        spec = _spec(node_type)
        assert set(node["inputs"]) <= set(spec), (
            f"{node_id} {node_type}: unknown inputs {set(node['inputs']) - set(spec)}"
        )
        for input_name, (kind, options, optional) in spec.items():
            if kind == "+ui":
                continue
            if input_name not in node["inputs"]:
                assert optional, f"{node_id} {node_type}: required input {input_name} missing"
                continue
            value = node["inputs"][input_name]
            if isinstance(value, list):  # a link: [source id, output slot]
                source = prompt[value[0]]
                types = _output_types(source["class_type"])
                assert value[1] < len(types), f"{node_id}.{input_name}: no output {value[1]} on {source['class_type']}"
                expected = kind if kind not in ("COMBO",) else None
                assert types[value[1]] == expected, f"{node_id}.{input_name}: {types[value[1]]} into {kind}"
            else:
                assert build.is_widget(kind), f"{node_id} {node_type}: socket {input_name} given a value"
                _check_value(node_type, input_name, kind, options, value)


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_is_consistent_and_matches_its_api_twin(name):
    ui, api = _json("ui", name), _json("api", name)
    assert ui["version"] == 0.4
    nodes = {n["id"]: n for n in ui["nodes"]}
    assert ui["last_node_id"] == max(nodes) and ui["last_link_id"] == len(ui["links"])
    for link_id, src, src_slot, dst, dst_slot, kind in ui["links"]:
        assert link_id in nodes[src]["outputs"][src_slot]["links"]
        assert nodes[dst]["inputs"][dst_slot]["link"] == link_id
        assert nodes[src]["outputs"][src_slot]["type"] == kind
    notes = [n for n in nodes.values() if n["type"] == "MarkdownNote"]
    assert len(notes) == 1 and "`models/" in notes[0]["widgets_values"][0]
    for node_id, node in nodes.items():
        if node["type"] in build.FRONTEND_ONLY:
            assert str(node_id) not in api
            continue
        twin = api[str(node_id)]
        assert twin["class_type"] == node["type"]
        # widget values in widget order (the seed carries its control value after it; a widget fed by a link
        # keeps a value in its place, as the frontends save it)
        expected = []
        for input_name, kind, _, _ in build.node_inputs(node["type"]):
            if not build.is_widget(kind):
                continue
            linked = isinstance(twin["inputs"].get(input_name), list)
            expected.append(None if kind == "+ui" or linked else twin["inputs"].get(input_name))
            if build.has_seed_control(node["type"], input_name):
                expected.append("fixed")
        got = [
            None if kind in ("+ui", "linked") else v
            for v, kind in zip(node["widgets_values"], _widget_kinds(node), strict=True)
        ]
        assert got == expected, f"{name} node {node_id} {node['type']}"
        # links
        for socket_input in node["inputs"]:
            if socket_input["link"] is None:
                continue
            link = next(entry for entry in ui["links"] if entry[0] == socket_input["link"])
            assert twin["inputs"][socket_input["name"]] == [str(link[1]), link[2]]


def _widget_kinds(node: dict) -> list[str]:
    kinds = []
    for input_name, kind, _, _ in build.node_inputs(node["type"]):
        linked = any(i["name"] == input_name and i["link"] is not None for i in node["inputs"])
        if build.is_widget(kind):
            kinds.append("linked" if linked else kind)
            if build.has_seed_control(node["type"], input_name):
                kinds.append("control")
    return kinds


def test_defaults_follow_the_reference():
    t2v = _json("api", "ltx-2.3_text-to-video")
    empty = next(n for n in t2v.values() if n["class_type"] == "LTXEmptyLatent")["inputs"]
    assert (empty["frames"], empty["frame_rate"], empty["width"], empty["height"]) == (121, 24.0, 768, 512)
    sampler = next(n for n in t2v.values() if n["class_type"] == "LTXSampler")["inputs"]
    # the widgets show LTX-2.3's official recipe and the sampler runs the checkpoint's (settings = official)
    assert sampler["schedule"] == "ltx2" and sampler["settings"] is True
    assert (sampler["steps"], sampler["cfg_video"], sampler["cfg_audio"], sampler["stg_video"]) == (30, 3.0, 7.0, 1.0)
    distilled = _json("api", "ltx-2.3_text-to-video_distilled")
    sampler = next(n for n in distilled.values() if n["class_type"] == "LTXSampler")["inputs"]
    assert sampler["schedule"] == "distilled" and sampler["steps"] == 8  # what the schedule runs, unguided
    assert (sampler["cfg_video"], sampler["stg_video"], sampler["modality_video"]) == (1.0, 0.0, 1.0)
    loader = next(n for n in distilled.values() if n["class_type"] == "LTXModelLoader")["inputs"]
    assert loader["model_name"] == "ltx-2.3-22b-distilled.safetensors"


def _of(prompt: dict, class_type: str) -> list[tuple[str, dict]]:
    return [(node_id, n["inputs"]) for node_id, n in prompt.items() if n["class_type"] == class_type]


def _one(prompt: dict, class_type: str) -> tuple[str, dict]:
    nodes = _of(prompt, class_type)
    assert len(nodes) == 1, f"{len(nodes)} {class_type} nodes"
    return nodes[0]


def _source(prompt: dict, link: list) -> tuple[str, int]:
    """(class_type, output slot) of what a link comes from."""
    return prompt[link[0]]["class_type"], link[1]


def _stage_chain(prompt: dict) -> tuple[dict, dict, dict, dict]:
    """(empty latent, stage-1 sampler, upsample, stage-2 sampler) inputs, checking the links between them."""
    empty_id, empty = _one(prompt, "LTXEmptyLatent")
    upsample_id, upsample = _one(prompt, "LTXLatentUpsample")
    samplers = dict(_of(prompt, "LTXSampler"))
    assert len(samplers) == 2
    stage1_id = upsample["video_latent"][0]
    (stage2_id,) = set(samplers) - {stage1_id}
    stage1, stage2 = samplers[stage1_id], samplers[stage2_id]
    # stage 1 starts from the empty latent (through image conditions); both latents go through the upsample node
    link = stage1["video_latent"]
    while link[0] != empty_id:
        assert _source(prompt, link) == ("LTXImageCondition", 0)
        link = prompt[link[0]]["inputs"]["video_latent"]
    assert stage1["audio_latent"] == [empty_id, 1] and upsample["audio_latent"] == [stage1_id, 1]
    assert stage2["audio_latent"] == [upsample_id, 1]
    link = stage2["video_latent"]
    while link[0] != upsample_id:
        assert _source(prompt, link) == ("LTXImageCondition", 0)
        link = prompt[link[0]]["inputs"]["video_latent"]
    assert link == [upsample_id, 0]
    # the outputs decode what stage 2 made
    decode, audio_decode = _one(prompt, "LTXVAEDecode")[1], _one(prompt, "LTXAudioDecode")[1]
    assert decode["samples"] == [stage2_id, 0] and audio_decode["samples"] == [stage2_id, 1]
    return empty, stage1, upsample, stage2


@pytest.mark.parametrize("name", [*TWO_STAGE, TEMPORAL])
def test_two_stage_workflows_follow_the_distilled_pipeline(name):
    """ltx-pipelines 1.0.0's DistilledPipeline: the distilled checkpoint in both stages, stage 1 on the 8 distilled
    sigmas, the stage-2 schedule (re-noise at its first sigma) on the upsampled latent, stage-1 audio refined, no
    guidance (no negative prompt wired)."""
    prompt = _json("api", name)
    empty, stage1, upsample, stage2 = _stage_chain(prompt)
    assert stage1["schedule"] == "distilled" and stage2["schedule"] == "stage2"
    assert stage1["audio_mode"] == "auto" and stage2["audio_mode"] == "generate"  # 1.0.0 refines stage-1 audio
    assert "negative" not in stage1 and "negative" not in stage2 and "sigmas" not in stage2
    checkpoint = "ltx-2.3-22b-distilled.safetensors"
    assert {i["model_name"] for _, i in _of(prompt, "LTXModelLoader")} == {checkpoint}
    assert {i["ckpt_name"] for _, i in _of(prompt, "LTXTextEncoderLoader")} == {checkpoint}
    assert {i["ckpt_name"] for _, i in _of(prompt, "LTXAudioVAELoader")} == {checkpoint}
    assert {i["vae_name"] for _, i in _of(prompt, "LTXLoadVideoVAE")} == {checkpoint}
    loader_id, loader = _one(prompt, "LTXUpsamplerLoader")
    assert upsample["upsampler"] == [loader_id, 0]
    video = _one(prompt, "CreateVideo")[1]
    assert (empty["frames"], empty["frame_rate"]) == (121, 24.0)
    if name == TEMPORAL:
        assert loader["upsampler_name"] == "ltx-2.3-temporal-upscaler-x2-1.0.safetensors"
        assert (empty["width"], empty["height"]) == (768, 512) and video["fps"] == 48.0
    else:
        # stage 1 at half the 768x512 output, sides multiples of 32 (the output's of 64)
        assert loader["upsampler_name"] == "ltx-2.3-spatial-upscaler-x2-1.1.safetensors"
        assert (empty["width"], empty["height"]) == (384, 256) and video["fps"] == 24.0
    conditions = _of(prompt, "LTXImageCondition")
    if name == "ltx-2.3_image-to-video_two-stage":
        # applied at half size before stage 1 and again on the upsampled latent (full size), with the same image
        assert len(conditions) == 2
        sources = sorted(_source(prompt, c["video_latent"]) for _, c in conditions)
        assert sources == [("LTXEmptyLatent", 0), ("LTXLatentUpsample", 0)]
        assert len({tuple(c["image"]) for _, c in conditions}) == 1
        assert all(c["frame_index"] == 0 and c["strength"] == 1.0 for _, c in conditions)
    else:
        assert not conditions


def _loras_of(prompt: dict, link: list) -> list[tuple[str, float]]:
    """(file, strength) of every LoRA loader up a model link, nearest the model first; the link must end at a
    model loader."""
    chain = []
    while _source(prompt, link)[0] == "LTXLoraLoader":
        inputs = prompt[link[0]]["inputs"]
        chain.append((inputs["lora_name"], inputs["strength"]))
        link = inputs["model"]
    assert _source(prompt, link) == ("LTXModelLoader", 0)
    return chain[::-1]


def test_dev_two_stage_follows_the_dev_pipeline():
    """ltx-pipelines' TI2VidTwoStagesPipeline: dev with guidance at half size, stage 2 with dev + the distilled LoRA
    at its default strength 1.0 on the stage-2 sigmas, unguided; one checkpoint for everything."""
    prompt = _json("api", TWO_STAGE_DEV)
    empty, stage1, _, stage2 = _stage_chain(prompt)
    assert stage1["schedule"] == "ltx2" and stage1["settings"] is True and "negative" in stage1  # official, guided
    assert stage2["schedule"] == "stage2" and "negative" not in stage2 and stage2["audio_mode"] == "generate"
    assert _loras_of(prompt, stage1["model"]) == []
    assert _loras_of(prompt, stage2["model"]) == [("ltx-2.3-22b-distilled-lora-384.safetensors", 1.0)]
    assert {i["model_name"] for _, i in _of(prompt, "LTXModelLoader")} == {"ltx-2.3-22b-dev.safetensors"}
    assert (empty["width"], empty["height"], empty["frames"]) == (384, 256, 121)


def test_ltx25_two_stage_follows_the_dev_pipeline_of_ltx_pipelines_12():
    """ltx-pipelines 1.2.0's TI2VidTwoStagesPipeline on LTX-2.5's split files: the duration head sets stage 1's
    frames, dev guided at half size (official settings), 2.5's spatial x2, stage 2 with dev + the 2.5 distilled LoRA
    at its default 1.0 on the stage-2 sigmas, unguided, audio refined alongside; the sound decoded is stage 1's."""
    prompt = _json("api", TWO_STAGE_25)
    empty_id, empty = _one(prompt, "LTXEmptyLatent")
    duration_id, duration = _one(prompt, "LTXDurationPredict")
    assert empty["frames"] == [duration_id, 0] and (empty["width"], empty["height"]) == (384, 256)
    assert duration["head_name"] == "ltx-2.5-duration-head-bf16.safetensors"
    upsample_id, upsample = _one(prompt, "LTXLatentUpsample")
    samplers = dict(_of(prompt, "LTXSampler"))
    stage1_id = upsample["video_latent"][0]
    (stage2_id,) = set(samplers) - {stage1_id}
    stage1, stage2 = samplers[stage1_id], samplers[stage2_id]
    assert stage1["video_latent"] == [empty_id, 0] and stage1["audio_latent"] == [empty_id, 1]
    assert upsample["audio_latent"] == [stage1_id, 1]
    assert stage2["video_latent"] == [upsample_id, 0] and stage2["audio_latent"] == [upsample_id, 1]
    assert stage1["schedule"] == "ltx2" and stage1["settings"] is True and "negative" in stage1
    assert stage2["schedule"] == "stage2" and "negative" not in stage2 and stage2["audio_mode"] == "generate"
    assert "sigmas" not in stage2
    assert _loras_of(prompt, stage1["model"]) == []
    assert _loras_of(prompt, stage2["model"]) == [("ltx-2.5-22b-distilled-lora-450-bf16.safetensors", 1.0)]
    assert {i["model_name"] for _, i in _of(prompt, "LTXModelLoader")} == {
        "ltx-2.5-22b-dev-transformer-bf16.safetensors"
    }
    loader_id, loader = _one(prompt, "LTXUpsamplerLoader")
    assert upsample["upsampler"] == [loader_id, 0]
    assert loader["upsampler_name"] == "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors"
    vae_id, vae = _one(prompt, "LTXLoadVideoVAE")
    assert vae["vae_name"] == "ltx-2.5-video-vae-bf16.safetensors" and upsample["vae"] == [vae_id, 0]
    decode, audio_decode = _one(prompt, "LTXVAEDecode")[1], _one(prompt, "LTXAudioDecode")[1]
    assert decode["samples"] == [stage2_id, 0] and audio_decode["samples"] == [stage1_id, 1]
    assert not _of(prompt, "LTXImageCondition")
    note = next(n for n in _json("ui", TWO_STAGE_25)["nodes"] if n["type"] == "MarkdownNote")["widgets_values"][0]
    for where in (
        "models/latent_upscale_models/ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors",
        "models/loras/ltx-2.5-22b-distilled-lora-450-bf16.safetensors",
        "models/diffusion_models/ltx-2.5-22b-dev-transformer-bf16.safetensors",
    ):
        assert where in note, where


def test_lora_stack_chains_two_loras_onto_one_sampler():
    prompt = _json("api", LORA_STACK)
    (_, sampler), (_, loader) = _one(prompt, "LTXSampler"), _one(prompt, "LTXModelLoader")
    assert loader["model_name"] == "ltx-2-19b-dev.safetensors"
    assert _loras_of(prompt, sampler["model"]) == [
        ("ltx-2-19b-lora-camera-control-dolly-in.safetensors", 1.0),
        ("ltx-2-19b-distilled-lora-384.safetensors", 1.0),
    ]
    assert sampler["schedule"] == "distilled" and "negative" not in sampler


def test_ic_lora_workflow_reads_the_scale_from_the_model_it_samples_with():
    """Core nodes make the control (LoadVideo -> GetVideoComponents -> Canny); the reference node gets the same
    LoRA'd model as the sampler, at scale 0 (read from the IC-LoRA's metadata) and strength 1; no crop node."""
    prompt = _json("api", IC_LORA)
    (_, sampler), (ref_id, reference) = _one(prompt, "LTXSampler"), _one(prompt, "LTXReferenceCondition")
    assert reference["model"] == sampler["model"] and sampler["video_latent"] == [ref_id, 0]
    assert _loras_of(prompt, sampler["model"]) == [("ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors", 1.0)]
    assert (reference["scale"], reference["strength"]) == (0, 1.0)
    assert _source(prompt, reference["reference"]) == ("Canny", 0)
    canny = prompt[reference["reference"][0]]["inputs"]
    assert _source(prompt, canny["image"]) == ("GetVideoComponents", 0)
    assert sampler["schedule"] == "distilled"
    assert all(n["class_type"].startswith("LTX") or n["class_type"] in build.CORE for n in prompt.values())


# -- the real host --------------------------------------------------------------------------------------------------


def _small(prompt: dict) -> dict:
    """The same graph at 64x64, 9 frames, 2 ltx2 steps: seconds on a CPU with the tiny models. A two-stage graph's stage 1
    runs at 64x64 (2x2 latent) and its stage 2 at 128x128 (4x4), still half and full size."""
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "LTXEmptyLatent":
            inputs.update(width=64, height=64)
            if not isinstance(inputs.get("frames"), list):  # LTX-2.5's come from its duration head (25 here)
                inputs.update(frames=9)
        elif node["class_type"] == "LTXSampler" and inputs.get("schedule") == "ltx2":  # the others fix their steps
            inputs.update(steps=2, settings=False)  # the widgets as set, 2 steps instead of the official 30
        elif node["class_type"] == "LTXAudioEncode":
            inputs.update(video_frames=9)
        elif node["class_type"] == "LTXExtend":  # adds 2 latent frames (16 frames), keeps 1 (9 frames shared)
            inputs.update(seconds=16 / 24, overlap_seconds=8 / 24)
    if any(n["class_type"] == "LTXExtend" for n in prompt.values()):  # a segment to extend needs 3+ latent frames
        for node in prompt.values():
            if node["class_type"] == "LTXEmptyLatent":
                node["inputs"].update(frames=25)
    return prompt


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    """A real ComfyUI with this pack and tiny models, and the media the workflows name in its input folder (a user
    picks their own; ComfyUI ships example.png)."""
    base = tmp_path_factory.mktemp("comfy")
    written = comfy_host_models(base)
    for name in (build.SPATIAL_UPSAMPLER, build.TEMPORAL_UPSAMPLER, build.LTX25_SPATIAL_UPSAMPLER):
        assert str(base / "models" / "latent_upscale_models" / name) in written, name  # the two-stage workflows'
    assert str(base / "models" / "loras" / build.LTX25_DISTILLED_LORA) in written
    write_media(base / "input", build.EXAMPLE_IMAGE, build.EXAMPLE_AUDIO, build.EXAMPLE_VIDEO)
    with comfy_server(base) as url:
        yield url, base


def comfy_host_models(base) -> list[str]:
    from comfy_host import write_models

    return write_models(base / "models")


@needs_comfy
def test_core_node_specs_match_the_real_host(comfy):
    url, _ = comfy
    info = get(f"{url}/object_info")
    for node_type, spec in build.CORE.items():
        if node_type in build.FRONTEND_ONLY:
            continue
        host = info[node_type]["input"]
        names = list(host.get("required", {})) + list(host.get("optional", {}))
        ours = [n for n, k, _ in spec["inputs"] if k != "+ui"]
        # Newer hosts may add optional inputs (0.33's CreateVideo has bit_depth); ours must all be there, in order.
        assert names[: len(ours)] == ours, node_type
        assert set(names[len(ours) :]) <= set(host.get("optional", {})), node_type
        # Newer hosts append outputs (0.33's GetVideoComponents adds INT and COMBO); links by index still hold.
        outputs = list(info[node_type]["output"])
        assert outputs[: len(spec["outputs"])] == spec["outputs"], node_type
        assert not info[node_type].get("deprecated"), f"{node_type} is deprecated in this host"
    for node_type in NODE_CLASS_MAPPINGS:
        assert node_type in info, f"{node_type} not registered in the host"


@needs_comfy
def test_display_names_stay_apart_from_the_hosts(comfy):
    """Our nodes show short names under the LTX-AV category, none the same as a core node's (core has "Load LTXV
    Audio VAE", "Load LoRA", "Save Latent", ...), none with the pack's name in front."""
    url, _ = comfy
    info = get(f"{url}/object_info")
    ours = {k: v for k, v in info.items() if k in NODE_CLASS_MAPPINGS}
    core = {(v.get("display_name") or k).lower(): k for k, v in info.items() if k not in NODE_CLASS_MAPPINGS}
    for node_type, spec in ours.items():
        name = spec["display_name"]
        assert name.lower() not in core, f"{node_type} shows as {name!r}, like core's {core[name.lower()]}"
        assert not name.startswith("LTX") and len(name) <= 30, name
        assert spec["category"].startswith("LTX-AV/"), spec["category"]


@needs_comfy
@pytest.mark.parametrize("name", NAMES)
def test_workflow_runs_in_comfyui(comfy, name):
    url, base = comfy
    prompt = _small(_json("api", name))
    entry = run_prompt(url, prompt)
    assert "rejected" not in entry, entry
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-3000:]
    written = []
    for output in entry["outputs"].values():
        for item in output.get("images", []) + output.get("audio", []):
            path = output_path(base, item)
            assert path.exists() and path.stat().st_size > 0
            written.append(path)
    videos = [p for p in written if p.suffix == ".mp4"]
    assert videos, f"{name}: no video written ({written})"
    import av

    with av.open(str(videos[0])) as container:
        assert container.streams.video and container.streams.audio
        stream = container.streams.video[0]
        size, rate = (stream.codec_context.width, stream.codec_context.height), stream.average_rate
        frames = sum(1 for _ in container.decode(stream))
    empty = next((n["inputs"] for n in prompt.values() if n["class_type"] == "LTXEmptyLatent"), None)
    if name in TWO_STAGE:  # stage 2 is twice stage 1's size
        assert size == (2 * empty["width"], 2 * empty["height"]) and rate == 24, (size, rate)
        assert frames == empty["frames"]
    elif name == TWO_STAGE_25:  # the same, the length from the duration head
        assert size == (2 * empty["width"], 2 * empty["height"]) and rate == 24, (size, rate)
        assert frames % 8 == 1, frames
    elif name == TEMPORAL:  # twice the frame rate, 2F - 1 latent frames: 2n - 1 pixel frames
        assert size == (empty["width"], empty["height"]) and rate == 48, (size, rate)
        assert frames == 2 * empty["frames"] - 1, frames
    if name == "ltx-2.3_audio-to-video":
        assert any(p.suffix == ".flac" for p in written)  # Preview Audio plays the kept sound
    if name == LONG_VIDEO:  # 25 frames, then 16 more per extension: nothing twice, nothing lost
        assert frames == 25 + 2 * 16 and size == (64, 64) and rate == 24, (frames, size, rate)
