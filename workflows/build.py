"""Writes the example workflows from one description per graph, so the UI files and their API twins never drift.

    python workflows/build.py          # rewrites workflows/ui, workflows/api and example_workflows

Each graph is a list of :class:`Node` (type, widget values by input name, links by input name) stacked in columns
(:class:`Column`). Widget order and defaults come from our nodes' ``INPUT_TYPES`` and, for ComfyUI core nodes, from
:data:`CORE` (checked by tests/test_workflows.py against the files and, when configured, against a real ComfyUI).
The UI files (LiteGraph format 0.4) carry a Markdown note (its first line says what to do first: which node to point
at your own file, or what the graph makes) and ``properties.models`` (official download URL and folder) on every
loader of a downloadable file, so the frontend's missing-models dialog offers the download. The saved view is the
one ComfyUI 0.33's frontend picks when it opens a template (the graph fitted into 75 % of a 1920x1080 window), so a
file opened either way looks the same; :func:`layout_report` checks what the tests check in the real frontends
(nothing overlaps, the note covers no group, the zoom at which node text is drawn).

Templates: ``example_workflows/<title>.json`` (the frontends show the file name as the template's title) and
``<title>.jpg`` (its thumbnail, drawn here with Pillow); ``workflows/ui`` and ``workflows/api`` keep short names.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHECKPOINT_23 = "ltx-2.3-22b-dev.safetensors"
CHECKPOINT_23_DISTILLED = "ltx-2.3-22b-distilled.safetensors"
CHECKPOINT_2 = "ltx-2-19b-dev.safetensors"
DISTILLED_LORA_23 = "ltx-2.3-22b-distilled-lora-384.safetensors"
DISTILLED_LORA_2 = "ltx-2-19b-distilled-lora-384.safetensors"
CAMERA_LORA_2 = "ltx-2-19b-lora-camera-control-dolly-in.safetensors"
IC_LORA_23 = "ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors"
GEMMA = "gemma-3-12b-it-qat-q4_0-unquantized/"
SPATIAL_UPSAMPLER = "ltx-2.3-spatial-upscaler-x2-1.1.safetensors"
TEMPORAL_UPSAMPLER = "ltx-2.3-temporal-upscaler-x2-1.0.safetensors"
GEMMA_REPO = "google/gemma-3-12b-it-qat-q4_0-unquantized"
# LTX-2.5 ships one file per part, each in its ComfyUI models folder (Hugging Face Lightricks/LTX-2.5, same paths).
LTX25_TRANSFORMER = "ltx-2.5-22b-dev-transformer-bf16.safetensors"
LTX25_TEXT_ENCODER = "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors"
LTX25_VIDEO_VAE = "ltx-2.5-video-vae-bf16.safetensors"
LTX25_VIDEO_VAE_CONV = "ltx-2.5-video-vae-conv-bf16.safetensors"
LTX25_AUDIO_VAE = "ltx-2.5-audio-vae-bf16.safetensors"
LTX25_DURATION_HEAD = "ltx-2.5-duration-head-bf16.safetensors"
LTX25_SPATIAL_UPSAMPLER = "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors"
LTX25_DISTILLED_LORA = "ltx-2.5-22b-distilled-lora-450-bf16.safetensors"
LTX25_FOLDERS = {
    LTX25_TRANSFORMER: "diffusion_models",
    LTX25_TEXT_ENCODER: "text_encoders",
    LTX25_VIDEO_VAE: "vae",
    LTX25_VIDEO_VAE_CONV: "vae",
    LTX25_AUDIO_VAE: "vae",
    LTX25_DURATION_HEAD: "model_patches",
    LTX25_SPATIAL_UPSAMPLER: "latent_upscale_models",
    LTX25_DISTILLED_LORA: "loras",
}
# Media the workflows load. ComfyUI ships input/example.png, so the image workflows open and run as they are (the
# note's first line says which node to point at your own picture). Nothing provides a sound or a clip: the audio
# and video workflows name a file you must pick, and their note's first line says so. The pack writes nothing into
# ComfyUI's input folder (a shared, user-owned folder; Load Image / Audio / Video list only that folder).
EXAMPLE_IMAGE = "example.png"
EXAMPLE_AUDIO = "your_sound.wav"
EXAMPLE_VIDEO = "your_clip.mp4"

# Official downloads (Hugging Face) of every file the workflows name, and the model folder each goes into.
HF = "https://huggingface.co"
DOWNLOADS: dict[str, tuple[str, str]] = {
    CHECKPOINT_23: (f"{HF}/Lightricks/LTX-2.3/resolve/main/{CHECKPOINT_23}", "checkpoints"),
    CHECKPOINT_23_DISTILLED: (f"{HF}/Lightricks/LTX-2.3/resolve/main/{CHECKPOINT_23_DISTILLED}", "checkpoints"),
    DISTILLED_LORA_23: (f"{HF}/Lightricks/LTX-2.3/resolve/main/{DISTILLED_LORA_23}", "loras"),
    SPATIAL_UPSAMPLER: (f"{HF}/Lightricks/LTX-2.3/resolve/main/{SPATIAL_UPSAMPLER}", "latent_upscale_models"),
    TEMPORAL_UPSAMPLER: (f"{HF}/Lightricks/LTX-2.3/resolve/main/{TEMPORAL_UPSAMPLER}", "latent_upscale_models"),
    CHECKPOINT_2: (f"{HF}/Lightricks/LTX-2/resolve/main/{CHECKPOINT_2}", "checkpoints"),
    DISTILLED_LORA_2: (f"{HF}/Lightricks/LTX-2/resolve/main/{DISTILLED_LORA_2}", "loras"),
    CAMERA_LORA_2: (f"{HF}/Lightricks/LTX-2-19b-LoRA-Camera-Control-Dolly-In/resolve/main/{CAMERA_LORA_2}", "loras"),
    IC_LORA_23: (f"{HF}/Lightricks/LTX-2.3-22b-IC-LoRA-Union-Control/resolve/main/{IC_LORA_23}", "loras"),
    **{
        name: (f"{HF}/Lightricks/LTX-2.5/resolve/main/{folder}/{name}", folder)
        for name, folder in LTX25_FOLDERS.items()
    },
}

# ComfyUI core nodes the workflows use: (input name, socket type or widget kind, default) in widget order, and
# outputs. Widget kinds: "COMBO", "INT", "FLOAT", "STRING", "BOOLEAN"; "+ui" marks the extra upload widget.
CORE: dict[str, dict[str, Any]] = {
    "LoadImage": {
        "inputs": [("image", "COMBO", EXAMPLE_IMAGE), ("upload", "+ui", "image")],
        "outputs": ["IMAGE", "MASK"],
    },
    "LoadAudio": {
        "inputs": [("audio", "COMBO", EXAMPLE_AUDIO), ("upload", "+ui", None), ("player", "+ui", None)],
        "outputs": ["AUDIO"],
    },
    "LoadVideo": {"inputs": [("file", "COMBO", EXAMPLE_VIDEO), ("upload", "+ui", "image")], "outputs": ["VIDEO"]},
    "GetVideoComponents": {"inputs": [("video", "VIDEO", None)], "outputs": ["IMAGE", "AUDIO", "FLOAT"]},
    "CreateVideo": {
        "inputs": [("images", "IMAGE", None), ("fps", "FLOAT", 24.0), ("audio", "AUDIO?", None)],
        "outputs": ["VIDEO"],
    },
    "SaveVideo": {
        "inputs": [
            ("video", "VIDEO", None),
            ("filename_prefix", "STRING", "video/ltx_av"),
            ("format", "COMBO", "auto"),
            ("codec", "COMBO", "auto"),
        ],
        "outputs": [],
    },
    "PreviewAudio": {"inputs": [("audio", "AUDIO", None)], "outputs": []},
    "LatentUpscaleBy": {
        "inputs": [("samples", "LATENT", None), ("upscale_method", "COMBO", "bilinear"), ("scale_by", "FLOAT", 1.5)],
        "outputs": ["LATENT"],
    },
    "Canny": {
        "inputs": [("image", "IMAGE", None), ("low_threshold", "FLOAT", 0.4), ("high_threshold", "FLOAT", 0.8)],
        "outputs": ["IMAGE"],
    },
    "MarkdownNote": {"inputs": [("text", "STRING", "")], "outputs": []},
}
CORE_OUTPUT_NAMES = {"GetVideoComponents": ["images", "audio", "fps"]}
FRONTEND_ONLY = {"MarkdownNote"}  # not sent to /prompt

WIDGET_KINDS = ("INT", "FLOAT", "STRING", "BOOLEAN")


def _our_nodes() -> dict[str, type]:
    from ltx_av import NODE_CLASS_MAPPINGS  # the pack installed with pip install -e .

    return NODE_CLASS_MAPPINGS


def node_inputs(node_type: str) -> list[tuple[str, str, Any, bool]]:
    """(name, kind, default, optional) in widget order; kind is a socket type, "COMBO" or a widget kind."""
    if node_type in CORE:
        return [(n, k.rstrip("?"), d, k.endswith("?")) for n, k, d in CORE[node_type]["inputs"]]
    spec = _our_nodes()[node_type].INPUT_TYPES()
    out = []
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            kind, options = entry[0], (entry[1] if len(entry) > 1 else {})
            if isinstance(kind, list | tuple):
                out.append((name, "COMBO", options.get("default", kind[0] if kind else None), section == "optional"))
            else:
                out.append((name, kind, options.get("default"), section == "optional"))
    return out


def node_outputs(node_type: str) -> list[tuple[str, str]]:
    if node_type in CORE:
        types = CORE[node_type]["outputs"]
        names = CORE_OUTPUT_NAMES.get(node_type, types)
        return list(zip(names, types, strict=True))
    cls = _our_nodes()[node_type]
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    return list(zip(names, cls.RETURN_TYPES, strict=True))


def is_widget(kind: str) -> bool:
    return kind in WIDGET_KINDS or kind in ("COMBO", "+ui")


def has_seed_control(node_type: str, name: str) -> bool:
    """Whether the frontend adds a "control after generate" widget (and value) after this input: asked for by
    the node, or added by the frontend itself for an INT named seed / noise_seed."""
    if node_type in CORE:
        return False
    spec = _our_nodes()[node_type].INPUT_TYPES()
    for section in ("required", "optional"):
        entry = spec.get(section, {}).get(name)
        if entry and entry[0] == "INT" and (name in ("seed", "noise_seed") or entry[1].get("control_after_generate")):
            return True
    return False


@dataclass(eq=False)
class Node:
    type: str
    widgets: dict[str, Any] = field(default_factory=dict)
    links: dict[str, tuple[Node, int]] = field(default_factory=dict)
    title: str | None = None
    size: tuple[int, int] | None = None  # (width or 0 for the column's, body height); None: column width, HEIGHT
    id: int = 0
    pos: tuple[int, int] = (0, 0)  # top-left of the body (the title bar is the TITLE pixels above); set by layout
    width: int = 0  # set by layout


@dataclass(eq=False)
class Column:
    """Nodes stacked top to bottom (40 px apart, 90 where a new group starts) at the same x."""

    width: int
    nodes: list[Node]
    top: int | Node = 0  # y of the first title bar's top edge, or a node (of a column to the left) to align with


@dataclass(eq=False)
class Graph:
    name: str  # workflows/ui/<name>.json, workflows/api/<name>.json
    template: str  # example_workflows/<template>.json: the title the frontends show on the template's card
    title: str
    note: Node
    columns: list[Column]
    groups: list[tuple[str, list[Node]]] = field(default_factory=list)
    note_over: tuple[int, int] = (0, 2)  # the note sits above columns [first, last): they start below it
    picture: str = "t2v"  # what the thumbnail shows (see thumbnail())

    @property
    def nodes(self) -> list[Node]:
        return [self.note] + [n for column in self.columns for n in column.nodes]


# -- layout ---------------------------------------------------------------------------------------------------------

TITLE = 30  # LiteGraph's title bar height
GAP_X = 30  # between columns
GAP_Y = 40  # between nodes of a group (room for the node source badge drawn above a title bar)
GAP_GROUP = 90  # between groups: a group's title strip is GROUP_HEADER pixels above its first title bar
GROUP_HEADER = 45
GROUP_PAD = 10
# Body heights the frontends give each node (the larger of ComfyUI 0.3.64's frontend 1.27 and 0.33's 1.49, measured
# with LiteGraph's computeSize); nodes that show media get room for the preview.
HEIGHT = {
    "LTXModelLoader": 130,
    "LTXTextEncoderLoader": 154,
    "LTXLoadVideoVAE": 82,
    "LTXAudioVAELoader": 82,
    "LTXUpsamplerLoader": 82,
    "LTXLoraLoader": 82,
    "LTXTextEncode": 170,
    "LTXEmptyLatent": 198,
    "LTXSampler": 614,
    "LTXVAEDecode": 270,
    "LTXAudioDecode": 46,
    "LTXDurationPredict": 150,
    "LTXAudioEncode": 102,
    "LTXImageCondition": 146,
    "LTXReferenceCondition": 142,
    "LTXLatentUpsample": 86,
    "LTXExtend": 170,
    "LTXJoin": 86,
    "LTXVAEEncode": 198,
    "LoadImage": 320,  # with a 4:3 picture shown 300 wide (the node grows to show what is loaded)
    "LoadAudio": 136,
    "LoadVideo": 240,  # before a clip is picked; it grows to show one, so it ends its column
    "GetVideoComponents": 106,
    "CreateVideo": 102,
    "SaveVideo": 106,
    "PreviewAudio": 88,
    "LatentUpscaleBy": 82,
    "Canny": 82,
}
# The frontends widen a node to what its title and widgets need (LiteGraph's computeSize, frontend 1.49).
MIN_WIDTH = {
    "LTXModelLoader": 237,
    "LTXTextEncoderLoader": 242,
    "LTXAudioVAELoader": 219,
    "LTXEmptyLatent": 232,
    "LTXVAEDecode": 219,
    "LTXImageCondition": 225,
    "LTXDurationPredict": 240,
    "LTXReferenceCondition": 220,
    "LTXLatentUpsample": 234,
    "LoadImage": 223,
    "LoadAudio": 223,
    "LoadVideo": 223,
    "SaveVideo": 210,
}
# What ComfyUI 0.33's frontend does when it opens a template: fit the nodes into 75 % of the window (LiteGraph
# DragAndScale.fitToBounds); below 8 px / 14 px = 0.571 it draws nodes without text. The saved view is that fit for
# a 1920x1080 window, so a file dropped onto the canvas opens the same way.
SCREEN = (1920, 1080)
FIT = 0.75
TEXT_ZOOM = 8 / 14


def _height(node: Node) -> int:
    return node.size[1] if node.size else HEIGHT[node.type]


def layout(graph: Graph) -> None:
    """Give every node its position and width: the note at the top of its columns, the columns left to right."""
    group_of = {id(n): title for title, members in graph.groups for n in members}
    first, last = graph.note_over
    x = 0
    xs = []
    for column in graph.columns:
        xs.append(x)
        x += column.width + GAP_X
    note = graph.note
    note.pos = (xs[first], TITLE)  # (layout is idempotent: every position is set again from the columns)
    note.width = (note.size and note.size[0]) or xs[last - 1] + graph.columns[last - 1].width - xs[first]
    below_note = note.pos[1] + _height(note) + GAP_GROUP
    for i, column in enumerate(graph.columns):
        top = column.top if isinstance(column.top, int) else column.top.pos[1] - TITLE
        y = max(top, below_note if first <= i < last else 0)
        previous = None
        for node in column.nodes:
            if previous is not None:
                y += GAP_Y if group_of.get(id(node)) == group_of.get(id(previous)) else GAP_GROUP
            node.pos = (xs[i], y + TITLE)
            node.width = (node.size and node.size[0]) or column.width
            y += TITLE + _height(node)
            previous = node


def _rect(node: Node) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) with the title bar, at least the frontend's minimum width."""
    x, y = node.pos
    return x, y - TITLE, x + max(node.width, MIN_WIDTH.get(node.type, 0)), y + _height(node)


def _group_rect(members: list[Node]) -> tuple[int, int, int, int]:
    rects = [_rect(n) for n in members]
    return (
        min(r[0] for r in rects) - GROUP_PAD,
        min(r[1] for r in rects) - GROUP_HEADER,
        max(r[2] for r in rects) + GROUP_PAD,
        max(r[3] for r in rects) + GROUP_PAD,
    )


def _overlap(a, b, margin: int = 0) -> bool:
    return a[0] < b[2] + margin and b[0] < a[2] + margin and a[1] < b[3] + margin and b[1] < a[3] + margin


def bounds(graph: Graph) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of every node with its title bar: what the frontend fits a template to."""
    layout(graph)
    rects = [_rect(n) for n in graph.nodes]
    return min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects)


def fit_view(graph: Graph, screen: tuple[int, int] = SCREEN) -> dict:
    """The view ComfyUI 0.33's frontend gives a template on a screen this size: {"scale", "offset"}."""
    left, top, right, bottom = bounds(graph)
    width, height = right - left, bottom - top
    scale = min(FIT * screen[0] / max(width, 300), FIT * screen[1] / max(height, 300), 1.0)
    offset = [-left - width / 2 + screen[0] / scale / 2, -top - height / 2 + screen[1] / scale / 2]
    return {"scale": round(scale, 4), "offset": [round(offset[0], 1), round(offset[1], 1)]}


def backward_links(graph: Graph) -> list[tuple[Node, Node]]:
    """Links that enter their target left of where they leave their source (drawn as a loop back)."""
    out = []
    for node in graph.nodes:
        for source, _ in node.links.values():
            if node.pos[0] < _rect(source)[2]:
                out.append((source, node))
    return out


def layout_report(graph: Graph) -> list[str]:
    """What is wrong with the layout (empty when nothing is): overlapping nodes, groups covering nodes that are not
    theirs or the note, a view at which the frontend would draw no node text."""
    layout(graph)
    problems = []
    nodes = graph.nodes
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            if _overlap(_rect(a), _rect(b), margin=10):
                problems.append(f"{a.title or a.type} overlaps {b.title or b.type}")
    for title, members in graph.groups:
        box = _group_rect(members)
        for node in nodes:
            if node not in members and _overlap(box, _rect(node)):
                problems.append(f"group {title!r} covers {node.title or node.type}")
    boxes = [(title, _group_rect(members)) for title, members in graph.groups]
    for i, (title, box) in enumerate(boxes):
        for other, box2 in boxes[i + 1 :]:
            if _overlap(box, box2):
                problems.append(f"groups {title!r} and {other!r} overlap")
    scale = fit_view(graph)["scale"]
    if scale < TEXT_ZOOM + 0.025:
        problems.append(f"fitted at {scale:.3f}: too close to {TEXT_ZOOM:.3f}, below which no node text is drawn")
    chain = {"LTXVAEDecode", "LTXAudioDecode", "CreateVideo", "SaveVideo"}
    for source, target in backward_links(graph):
        if target.type in chain:
            problems.append(f"the link {source.title or source.type} -> {target.title or target.type} loops back")
    return problems


# -- UI (LiteGraph) format ------------------------------------------------------------------------------------------


def _widget_values(node: Node) -> list:
    # A widget fed by a link keeps its value here too: the frontends give widgets_values to the widgets by position.
    values = []
    for name, kind, default, _ in node_inputs(node.type):
        if not is_widget(kind):
            continue
        value = node.widgets.get(name, default)
        values.append(value)
        if has_seed_control(node.type, name):
            values.append("fixed")
    return values


def _models(node: Node) -> list[dict]:
    """properties.models: the official download of each file the node's widgets name (the frontends offer these in
    their missing-models dialog, matched by name against the widget values)."""
    out = []
    for value in _widget_values(node):
        if isinstance(value, str) and value in DOWNLOADS:
            url, directory = DOWNLOADS[value]
            out.append({"name": value, "url": url, "directory": directory})
    return out


def to_ui(graph: Graph) -> dict:
    layout(graph)
    nodes_in_order = graph.nodes
    for i, node in enumerate(nodes_in_order, start=1):
        node.id = i
    links = []
    inputs_of: dict[int, list] = {}
    outputs_of: dict[int, list] = {}
    for node in nodes_in_order:
        outputs_of[node.id] = [
            {"name": name, "type": kind, "links": [], "slot_index": slot}
            for slot, (name, kind) in enumerate(node_outputs(node.type))
        ]
    for node in nodes_in_order:
        sockets = []
        for name, kind, _, _ in node_inputs(node.type):
            if is_widget(kind) and name not in node.links:
                continue
            entry: dict[str, Any] = {"name": name, "type": kind, "link": None}
            if name in node.links:
                source, slot = node.links[name]
                link_id = len(links) + 1
                link_type = node_outputs(source.type)[slot][1]
                links.append([link_id, source.id, slot, node.id, len(sockets), link_type])
                outputs_of[source.id][slot]["links"].append(link_id)
                entry["link"] = link_id
                if is_widget(kind):
                    entry["widget"] = {"name": name}
            sockets.append(entry)
        inputs_of[node.id] = sockets
    nodes = []
    for order, node in enumerate(nodes_in_order):
        properties: dict[str, Any] = {"Node name for S&R": node.type}
        if models := _models(node):
            properties["models"] = models
        entry = {
            "id": node.id,
            "type": node.type,
            "pos": list(node.pos),
            "size": [node.width, _height(node)],
            "flags": {},
            "order": order,
            "mode": 0,
            "inputs": inputs_of[node.id],
            "outputs": outputs_of[node.id],
            "properties": properties,
            "widgets_values": _widget_values(node),
        }
        if node.title:
            entry["title"] = node.title
        if node.type == "MarkdownNote":
            entry["color"], entry["bgcolor"] = "#432", "#653"
        nodes.append(entry)
    groups = []
    for title, members in graph.groups:
        left, top, right, bottom = _group_rect(members)
        groups.append(
            {"title": title, "bounding": [left, top, right - left, bottom - top], "color": "#3f789e", "font_size": 24}
        )
    return {
        "last_node_id": len(nodes),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": groups,
        "config": {},
        "extra": {"ds": fit_view(graph), "ltx_av": {"title": graph.title}},
        "version": 0.4,
    }


# -- API format -----------------------------------------------------------------------------------------------------


def to_api(graph: Graph) -> dict:
    for i, node in enumerate(graph.nodes, start=1):
        node.id = i
    prompt = {}
    for node in graph.nodes:
        if node.type in FRONTEND_ONLY:
            continue
        inputs: dict[str, Any] = {}
        for name, kind, default, _ in node_inputs(node.type):
            if name in node.links:
                source, slot = node.links[name]
                inputs[name] = [str(source.id), slot]
            elif is_widget(kind) and kind != "+ui":
                inputs[name] = node.widgets.get(name, default)
        prompt[str(node.id)] = {"class_type": node.type, "inputs": inputs, "_meta": {"title": node.title or node.type}}
    return prompt


# -- the graphs -----------------------------------------------------------------------------------------------------

PROMPT = (
    "A golden retriever runs along a wide sandy beach at sunset, kicking up wet sand as waves roll in and crash "
    "behind it. The camera tracks beside the dog at low height. Warm orange light, long shadows. The dog barks "
    "twice, waves rumble and seagulls call in the distance."
)
IMAGE_PROMPT = (
    "The scene comes to life: the subject moves naturally, the camera slowly pushes in, soft ambient sound of the "
    "place, gentle wind."
)
FIRST_LAST_PROMPT = (
    "A smooth continuous shot that moves from the first image to the last one, with natural motion and ambient sound."
)
AUDIO_PROMPT = (
    "A person speaks to the camera in a bright room, lips moving in sync with the voice, small natural head "
    "movements, static camera."
)
DOLLY_PROMPT = (
    "The camera slowly dollies in toward an old lighthouse on a rocky coast at dusk, its beam sweeping over the sea. "
    "Waves crash against the rocks below, wind whistles, a distant foghorn sounds."
)
CONTROL_PROMPT = (
    "A watercolour painting come to life: a figure walks through a misty forest clearing, soft brush textures, "
    "muted greens and golds. Birds sing, leaves rustle underfoot."
)


def _negative() -> str:
    from ltx_av.ltx_core.pipeline import DEFAULT_NEGATIVE_PROMPT

    return DEFAULT_NEGATIVE_PROMPT


# Column widths: loaders (wide enough to show the longest file name with its label), prompts, the nodes between,
# samplers, and the output chain (video decode -> create video -> save video, one column each so that no link loops back).
W_LOAD, W_PROMPT, W_MID, W_SAMPLER, W_DECODE, W_CREATE, W_SAVE = 440, 300, 280, 330, 260, 215, 280
W_LORA = 450  # the longest LoRA name with its label
NOTE_HEIGHT = 470


def _note(text: str, height: int = NOTE_HEIGHT) -> Node:
    return Node("MarkdownNote", {"text": text}, title="Read me", size=(0, height))


def _gemma_line() -> str:
    return (
        f"- `models/text_encoders/{GEMMA}` — Gemma 3 12B, a **folder** the dialog cannot fetch (its download "
        f"button takes single files into a model folder): accept the licence on huggingface.co/{GEMMA_REPO}, then "
        f"download the whole repository into that folder (`config.json`, `tokenizer.json`, `tokenizer.model`, "
        f"`model.safetensors.index.json`, `model-00001-of-00005.safetensors` … `model-00005-of-00005.safetensors`), "
        f"e.g. `huggingface-cli download {GEMMA_REPO} --local-dir models/text_encoders/{GEMMA.rstrip('/')}`"
    )


def models_note(checkpoint: str, *others: tuple[str, str], video_vae_only: bool = False) -> str:
    """The note's model section: where each file goes; the missing-models dialog offers the downloads."""
    lines = [
        "**Model files.** ComfyUI's missing-models dialog offers each missing file's official download (in a "
        "browser it lands in your downloads folder: move it into the folder named here)."
    ]
    if video_vae_only:
        lines.append(f"- `models/checkpoints/{checkpoint}` — only its video VAE is read")
    else:
        lines.append(
            f"- `models/checkpoints/{checkpoint}` — one file for the model, text-encoder, video-VAE and audio-VAE "
            "loaders (each reads only its part)"
        )
    lines += [f"- `models/{DOWNLOADS[name][1]}/{name}` — {what}" for name, what in others]
    if not video_vae_only:
        lines.append(_gemma_line())
        lines.append(
            "\nShort on GPU memory? **offload = blocks** and/or **dtype = float8-storage** on *Load Model*, "
            "**gemma_device = cpu** on *Load Text Encoder*."
        )
    return "\n".join(lines)


def _loaders(checkpoint: str) -> dict[str, Node]:
    return {
        "model": Node("LTXModelLoader", {"model_name": checkpoint}),
        "text": Node("LTXTextEncoderLoader", {"gemma": GEMMA, "ckpt_name": checkpoint}),
        "vae": Node("LTXLoadVideoVAE", {"vae_name": checkpoint}),
        "audio": Node("LTXAudioVAELoader", {"ckpt_name": checkpoint}),
    }


def _prompts(text_loader: Node, prompt: str) -> tuple[Node, Node]:
    positive = Node("LTXTextEncode", {"text": prompt}, {"text_encoder": (text_loader, 0)}, title="Positive prompt")
    negative = Node("LTXTextEncode", {"text": _negative()}, {"text_encoder": (text_loader, 0)}, title="Negative prompt")
    negative.size = (0, 140)
    return positive, negative


def _prompt(text_loader: Node, prompt: str) -> Node:
    """The positive prompt alone: distilled and stage-2 schedules run without guidance, so no negative prompt."""
    return Node("LTXTextEncode", {"text": prompt}, {"text_encoder": (text_loader, 0)}, title="Prompt")


def _empty(width: int = 768, height: int = 512, title: str | None = None) -> Node:
    return Node("LTXEmptyLatent", {"width": width, "height": height, "frames": 121, "frame_rate": 24.0}, title=title)


def _outputs(
    loaders: dict[str, Node], sampler: Node, prefix: str, audio_source: tuple[Node, int] | None = None, fps=24.0
) -> list[Node]:
    decode = Node("LTXVAEDecode", links={"vae": (loaders["vae"], 0), "samples": (sampler, 0)})
    audio = Node("LTXAudioDecode", links={"audio_vae": (loaders["audio"], 0), "samples": audio_source or (sampler, 1)})
    video = Node("CreateVideo", {"fps": fps}, {"images": (decode, 0), "audio": (audio, 0)})
    save = Node("SaveVideo", {"filename_prefix": f"video/{prefix}"}, {"video": (video, 0)})
    return [decode, audio, video, save]


def _output_columns(outs: list[Node], *extra_create: Node, narrow: bool = False) -> list[Column]:
    """Video + audio decode | Create Video (and what else reads the decoded audio) | Save Video."""
    decode, audio, video, save = outs
    widths = (240, 210, 260) if narrow else (W_DECODE, W_CREATE, W_SAVE)
    return [
        Column(widths[0], [decode, audio]),
        Column(widths[1], [video, *extra_create]),
        Column(widths[2], [save]),
    ]


def _sampler(
    model: Node, positive: Node, negative: Node | None, video: tuple[Node, int], audio: tuple[Node, int], **widgets
) -> Node:
    links = {"model": (model, 0), "positive": (positive, 0), "video_latent": video, "audio_latent": audio}
    if negative is not None:
        links["negative"] = (negative, 0)
    title = widgets.pop("title", None)
    if widgets.get("schedule") in FIXED_STEPS:
        widgets = {"steps": FIXED_STEPS[widgets["schedule"]], **UNGUIDED, **widgets}
    return Node("LTXSampler", {"seed": 42, **widgets}, links, title=title)


# What an unguided schedule (distilled, stage2) runs, shown on its sampler so that the widgets say what is used.
UNGUIDED = {
    **{f"cfg_{s}": 1.0 for s in ("video", "audio")},
    **{f"stg_{s}": 0.0 for s in ("video", "audio")},
    **{f"modality_{s}": 1.0 for s in ("video", "audio")},
    **{f"rescale_{s}": 0.0 for s in ("video", "audio")},
}
FIXED_STEPS = {"distilled": 8, "stage2": 3}

SIZE_NOTE = (
    "121 frames at 24 fps, 768x512. Frames must be 8k+1 and sides multiples of 32; other values are padded "
    "(logged) and cropped off after decoding."
)
DEV_SETTINGS_NOTE = (
    "The sampler runs the checkpoint's official steps and guidance (*settings = official*; the widgets show "
    "LTX-2.3's); switch *settings* to *as set above* to change them."
)


def text_to_video(distilled: bool) -> Graph:
    checkpoint = CHECKPOINT_23_DISTILLED if distilled else CHECKPOINT_23
    loaders = _loaders(checkpoint)
    positive, negative = _prompts(loaders["text"], PROMPT)
    empty = _empty()
    if distilled:
        sampler = _sampler(loaders["model"], positive, negative, (empty, 0), (empty, 1), schedule="distilled")
        how = (
            "**distilled** LTX-2.3: 8 fixed steps without guidance (CFG 1), several times faster than the dev "
            "model. The sampler's widgets show what this schedule runs."
        )
    else:
        sampler = _sampler(loaders["model"], positive, negative, (empty, 0), (empty, 1))
        how = "LTX-2.3 dev with the LTX-2 scheduler. " + DEV_SETTINGS_NOTE
    outs = _outputs(loaders, sampler, "ltx_av_t2v_distilled" if distilled else "ltx_av_t2v")
    note = _note(
        "**Write your prompt in *Positive prompt*, then Run.**\n"
        f"## {'Distilled text' if distilled else 'Text'} to video + audio\n"
        f"One model makes the picture and its sound together: {how} {SIZE_NOTE}\n\n" + models_note(checkpoint)
    )
    models = list(loaders.values())
    return Graph(
        "ltx-2.3_text-to-video_distilled" if distilled else "ltx-2.3_text-to-video",
        "LTX-2.3 Text to Video (distilled)" if distilled else "LTX-2.3 Text to Video",
        "LTX-2.3 distilled: text to video + audio" if distilled else "LTX-2.3: text to video + audio",
        note,
        [
            Column(W_LOAD, models),
            Column(W_PROMPT, [positive, negative, empty]),
            Column(W_SAMPLER, [sampler]),
            *_output_columns(outs),
        ],
        [("Models", models), ("Prompts", [positive, negative]), ("Size and length", [empty]), ("Output", outs)],
        note_over=(3, 6),
        picture="t2v_distilled" if distilled else "t2v",
    )


def image_to_video() -> Graph:
    loaders = _loaders(CHECKPOINT_23)
    positive, negative = _prompts(loaders["text"], IMAGE_PROMPT)
    empty = _empty()
    image = Node("LoadImage", {"image": EXAMPLE_IMAGE}, title="First frame")
    condition = Node(
        "LTXImageCondition",
        {"frame_index": 0, "strength": 1.0},
        {"vae": (loaders["vae"], 0), "image": (image, 0), "video_latent": (empty, 0)},
    )
    sampler = _sampler(loaders["model"], positive, negative, (condition, 0), (empty, 1))
    outs = _outputs(loaders, sampler, "ltx_av_i2v")
    note = _note(
        "**Pick your own picture in *First frame* (Load Image; it starts with ComfyUI's example.png), describe the "
        "motion and the sound in *Positive prompt*, then Run.**\n"
        "## Image to video + audio\nThe picture becomes the first frame: it is scaled to cover 768x512 and "
        "centre-cropped, then lightly re-compressed like the official pipelines (crf 33). Lower *strength* on "
        "*Image Condition* lets the model depart from it. " + DEV_SETTINGS_NOTE + "\n\n" + models_note(CHECKPOINT_23)
    )
    models = list(loaders.values())
    return Graph(
        "ltx-2.3_image-to-video",
        "LTX-2.3 Image to Video",
        "LTX-2.3: image to video + audio",
        note,
        [
            Column(W_LOAD, [*models, empty]),
            Column(W_PROMPT, [positive, negative, image]),
            Column(W_MID, [condition], top=image),
            Column(W_SAMPLER, [sampler]),
            *_output_columns(outs),
        ],
        [
            ("Models", models),
            ("Size and length", [empty]),
            ("Prompts", [positive, negative]),
            ("First frame", [image, condition]),
            ("Output", outs),
        ],
        note_over=(4, 7),
        picture="i2v",
    )


def first_last_frame() -> Graph:
    loaders = _loaders(CHECKPOINT_23)
    positive, negative = _prompts(loaders["text"], FIRST_LAST_PROMPT)
    empty = _empty()
    first = Node("LoadImage", {"image": EXAMPLE_IMAGE}, title="First frame")
    last = Node("LoadImage", {"image": EXAMPLE_IMAGE}, title="Last frame")
    cond_first = Node(
        "LTXImageCondition",
        {"frame_index": 0},
        {"vae": (loaders["vae"], 0), "image": (first, 0), "video_latent": (empty, 0)},
        title="Condition: first frame",
    )
    cond_last = Node(
        "LTXImageCondition",
        {"frame_index": -1},
        {"vae": (loaders["vae"], 0), "image": (last, 0), "video_latent": (cond_first, 0)},
        title="Condition: last frame",
    )
    sampler = _sampler(loaders["model"], positive, negative, (cond_last, 0), (empty, 1))
    outs = _outputs(loaders, sampler, "ltx_av_first_last")
    note = _note(
        "**Pick your own pictures in *First frame* and *Last frame* (Load Image; both start with ComfyUI's "
        "example.png), describe what happens in between in *Positive prompt*, then Run.**\n"
        "## First + last frame\nTwo chained *Image Condition* nodes: frame_index 0 pins the first frame, -1 the "
        "last one (negative indices count from the end). Chain more for keyframes in between (e.g. frame_index "
        "60). " + DEV_SETTINGS_NOTE + "\n\n" + models_note(CHECKPOINT_23)
    )
    models = list(loaders.values())
    return Graph(
        "ltx-2.3_first-last-frame",
        "LTX-2.3 First and Last Frame",
        "LTX-2.3: first + last frame to video + audio",
        note,
        [
            Column(W_LOAD, [*models, empty]),
            Column(W_PROMPT, [positive, negative, first, last]),
            Column(W_MID, [cond_first, cond_last], top=first),
            Column(W_SAMPLER, [sampler]),
            *_output_columns(outs),
        ],
        [
            ("Models", models),
            ("Size and length", [empty]),
            ("Prompts", [positive, negative]),
            ("Keyframes", [first, last, cond_first, cond_last]),
            ("Output", outs),
        ],
        note_over=(4, 7),
        picture="flf",
    )


def audio_to_video() -> Graph:
    loaders = _loaders(CHECKPOINT_23)
    positive, negative = _prompts(loaders["text"], AUDIO_PROMPT)
    empty = _empty()
    sound = Node("LoadAudio", {"audio": EXAMPLE_AUDIO}, title="Your sound")
    encode = Node(
        "LTXAudioEncode",
        {"video_frames": 121, "frame_rate": 24.0},
        {"audio_vae": (loaders["audio"], 0), "audio": (sound, 0)},
    )
    sampler = _sampler(loaders["model"], positive, negative, (empty, 0), (encode, 0), audio_mode="keep")
    outs = _outputs(loaders, sampler, "ltx_av_a2v")
    listen = Node("PreviewAudio", links={"audio": (outs[1], 0)}, title="The kept sound")
    note = _note(
        "**Pick your own sound in *Your sound* (Load Audio: upload a file or pick one from ComfyUI's input "
        "folder), describe the picture in *Positive prompt*, then Run.**\n"
        "## Audio to video\nThe sound is encoded (any sample rate; mono is duplicated) and cut or padded to the "
        "video's length (*video_frames* / *frame_rate* on *Audio Encode*: keep them equal to the empty latent's). "
        "The sampler keeps it (*audio_mode = keep*) and makes a video that follows it; the saved video carries it, "
        "decoded again (*Audio Encode* -> *Audio Decode*), and *The kept sound* plays it. "
        + DEV_SETTINGS_NOTE
        + "\n\n"
        + models_note(CHECKPOINT_23)
    )
    models = list(loaders.values())
    return Graph(
        "ltx-2.3_audio-to-video",
        "LTX-2.3 Audio to Video",
        "LTX-2.3: audio to video",
        note,
        [
            Column(W_LOAD, [*models, empty]),
            Column(W_PROMPT, [positive, negative, sound]),
            Column(W_MID, [encode], top=sound),
            Column(W_SAMPLER, [sampler]),
            *_output_columns(outs, listen),
        ],
        [
            ("Models", models),
            ("Size and length", [empty]),
            ("Prompts", [positive, negative]),
            ("Sound", [sound, encode]),
            ("Output", [*outs, listen]),
        ],
        note_over=(4, 7),
        picture="a2v",
    )


def latent_round_trip() -> Graph:
    vae = Node("LTXLoadVideoVAE", {"vae_name": CHECKPOINT_23})
    load = Node("LoadVideo", {"file": EXAMPLE_VIDEO}, title="Your clip")
    parts = Node("GetVideoComponents", links={"video": (load, 0)})
    encode = Node("LTXVAEEncode", {"fit": "pad", "frame_rate": 24.0}, {"vae": (vae, 0), "images": (parts, 0)})
    upscale = Node("LatentUpscaleBy", {"upscale_method": "bilinear", "scale_by": 1.5}, {"samples": (encode, 0)})
    decode = Node("LTXVAEDecode", links={"vae": (vae, 0), "samples": (upscale, 0)})
    video = Node("CreateVideo", {"fps": 24.0}, {"images": (decode, 0), "audio": (parts, 1)})
    save = Node("SaveVideo", {"filename_prefix": "video/ltx_av_roundtrip"}, {"video": (video, 0)})
    note = _note(
        "**Pick your own clip in *Your clip* (Load Video: upload a file or pick one from ComfyUI's input folder), "
        "then Run.**\n"
        "## Latent round trip\nA video goes through the LTX video VAE: *Video Encode* gives an ordinary LATENT "
        "(`[1, 128, frames', H/32, W/32]`), any core latent node can work on it (here *Upscale Latent By* 1.5x, "
        "so the decoded video is 1.5x larger and softer; set 1.0 for a plain round trip), and *Video Decode* "
        "turns it back into frames, tiled to fit the free memory. The clip's own sound is passed through.\n\n"
        + models_note(CHECKPOINT_23, video_vae_only=True),
        height=300,
    )
    return Graph(
        "ltx-av_latent-round-trip",
        "LTX-AV Latent Round Trip",
        "LTX-AV: video -> latent -> video",
        note,
        [
            Column(W_LOAD, [vae, load]),
            Column(220, [parts]),
            Column(W_MID, [encode]),
            Column(W_MID, [upscale]),
            Column(W_DECODE, [decode]),
            Column(W_CREATE, [video]),
            Column(W_SAVE, [save]),
        ],
        [("Your clip", [load]), ("Output", [video, save])],
        note_over=(2, 7),
        picture="roundtrip",
    )


STAGE2_AUDIO_NOTE = (
    "Stage 2 refines the stage-1 audio together with the video (*audio_mode = generate*, as ltx-pipelines 1.0.0 "
    "does). To keep the stage-1 sound instead, set *audio_mode = keep* on the stage-2 sampler (the video then "
    "follows that sound), or connect *Audio Decode* to the stage-1 sampler's *audio_latent* (ltx-pipelines 1.2)."
)


def _stage_sampler(
    title: str, model: Node, positive: Node, video: tuple[Node, int], audio: tuple[Node, int], **widgets
) -> Node:
    return _sampler(model, positive, None, video, audio, title=title, **widgets)


def _upsample(stage1: Node, loaders: dict[str, Node], title: str) -> Node:
    return Node(
        "LTXLatentUpsample",
        links={
            "video_latent": (stage1, 0),
            "upsampler": (loaders["upsampler"], 0),
            "vae": (loaders["vae"], 0),
            "audio_latent": (stage1, 1),
        },
        title=title,
    )


def two_stage(image: bool) -> Graph:
    """DistilledPipeline: half size with the 8 distilled sigmas -> spatial x2 -> full size with the 3 stage-2 sigmas
    (image conditions applied again at full size), no guidance in either stage."""
    loaders = _loaders(CHECKPOINT_23_DISTILLED)
    loaders["upsampler"] = Node("LTXUpsamplerLoader", {"upsampler_name": SPATIAL_UPSAMPLER})
    positive = _prompt(loaders["text"], IMAGE_PROMPT if image else PROMPT)
    empty = _empty(384, 256, "Stage 1 size: half the output's")
    video1: tuple[Node, int] = (empty, 0)
    picture = cond1 = cond2 = None
    if image:
        picture = Node("LoadImage", {"image": EXAMPLE_IMAGE}, title="First frame")
        cond1 = Node(
            "LTXImageCondition",
            {"frame_index": 0, "strength": 1.0},
            {"vae": (loaders["vae"], 0), "image": (picture, 0), "video_latent": (empty, 0)},
            title="First frame (half size)",
        )
        video1 = (cond1, 0)
    stage1 = _stage_sampler(
        "Stage 1: 8 distilled steps", loaders["model"], positive, video1, (empty, 1), schedule="distilled"
    )
    upsample = _upsample(stage1, loaders, "Latent upsample x2")
    video2: tuple[Node, int] = (upsample, 0)
    if image:
        cond2 = Node(
            "LTXImageCondition",
            {"frame_index": 0, "strength": 1.0},
            {"vae": (loaders["vae"], 0), "image": (picture, 0), "video_latent": (upsample, 0)},
            title="First frame again (full size)",
        )
        video2 = (cond2, 0)
    stage2 = _stage_sampler(
        "Stage 2: 3 refinement steps",
        loaders["model"],
        positive,
        video2,
        (upsample, 1),
        schedule="stage2",
        audio_mode="generate",
    )
    outs = _outputs(loaders, stage2, "ltx_av_i2v_two_stage" if image else "ltx_av_t2v_two_stage")
    first_line = (
        "**Pick your own picture in *First frame* (Load Image; it starts with ComfyUI's example.png), describe the "
        "motion and the sound in *Prompt*, then Run.**\n"
        if image
        else "**Write your prompt in *Prompt*, then Run.**\n"
    )
    first_frame = (
        "The picture is the first frame in both stages: the upsample drops the half-size condition, so *Image "
        "Condition* is applied again on the upsampled latent, at full size, as the official pipelines do. "
        if image
        else ""
    )
    note = _note(
        first_line + f"## {'Image' if image else 'Text'} to video + audio in two stages (distilled)\n"
        "The official *DistilledPipeline*: **stage 1** at half size (384x256) with the 8 distilled steps; "
        "**latent upsample x2**; **stage 2** at full size (768x512, 121 frames, 24 fps): *schedule = stage2* "
        "re-noises the upsampled latent and refines it in 3 steps. No guidance, so no negative prompt. For other "
        "sizes keep stage 1 at half the output's (output sides multiples of 64). "
        + first_frame
        + STAGE2_AUDIO_NOTE
        + "\n\n"
        + models_note(CHECKPOINT_23_DISTILLED, (SPATIAL_UPSAMPLER, "the spatial x2 latent upsampler (its own file)")),
        height=560,
    )
    models = [loaders["text"], loaders["model"], loaders["vae"], loaders["upsampler"]]
    second = [positive] + ([picture] if image else [])  # the picture ends its column: it grows with what is loaded
    stage2_column = [upsample] + ([cond2] if image else []) + [stage2]
    groups = [
        ("Models", models),
        ("Stage 1 size", [empty]),
        ("Prompt", [positive]),
        *([("First frame", [picture])] if image else []),
        ("Stage 1: half size", ([cond1] if image else []) + [stage1]),
        ("Audio VAE", [loaders["audio"]]),
        ("Stage 2: upsample x2, refine", stage2_column),
        ("Output", outs),
    ]
    return Graph(
        "ltx-2.3_image-to-video_two-stage" if image else "ltx-2.3_text-to-video_two-stage",
        f"LTX-2.3 Two Stages - {'Image' if image else 'Text'} to Video",
        f"LTX-2.3 distilled, two stages: {'image' if image else 'text'} to video + audio",
        note,
        [
            Column(W_LOAD, [*models, empty]),
            Column(W_PROMPT, second),
            Column(W_SAMPLER, ([cond1] if image else []) + [stage1, loaders["audio"]]),
            Column(W_SAMPLER, stage2_column),
            *_output_columns(outs),
        ],
        groups,
        note_over=(4, 7),
        picture="i2v2" if image else "t2v2",
    )


def temporal_upsample() -> Graph:
    """Stage 1 at 24 fps -> temporal x2 (2F - 1 latent frames, 48 fps) -> stage-2 refinement -> 48 fps video."""
    loaders = _loaders(CHECKPOINT_23_DISTILLED)
    loaders["upsampler"] = Node("LTXUpsamplerLoader", {"upsampler_name": TEMPORAL_UPSAMPLER})
    positive = _prompt(loaders["text"], PROMPT)
    empty = _empty()
    stage1 = _stage_sampler(
        "Stage 1: 8 distilled steps at 24 fps", loaders["model"], positive, (empty, 0), (empty, 1),
        schedule="distilled",
    )  # fmt: skip
    upsample = _upsample(stage1, loaders, "Temporal upsample x2 (48 fps)")
    stage2 = _stage_sampler(
        "Stage 2: 3 refinement steps at 48 fps",
        loaders["model"],
        positive,
        (upsample, 0),
        (upsample, 1),
        schedule="stage2",
        audio_mode="generate",
    )
    outs = _outputs(loaders, stage2, "ltx_av_temporal_x2", fps=48.0)
    outs[2].title = "Create Video (48 fps)"
    note = _note(
        "**Write your prompt in *Prompt*, then Run.**\n"
        "## Temporal upsample: 24 -> 48 fps\n**Stage 1** makes 121 frames at 24 fps (768x512, the 8 distilled "
        "steps); the **temporal x2 upsampler** turns its 16 latent frames into 31 (241 frames) and records 48 fps "
        "on both latents; **stage 2** (*schedule = stage2*) re-noises that and refines it in 3 steps; the result "
        "is saved at **48 fps** (*fps* on Create Video: keep it twice stage 1's frame rate). Same length in "
        "seconds, twice the frames. "
        + STAGE2_AUDIO_NOTE
        + "\n\n"
        + models_note(CHECKPOINT_23_DISTILLED, (TEMPORAL_UPSAMPLER, "the temporal x2 latent upsampler (its own file)")),
        height=560,
    )
    models = [loaders["text"], loaders["model"], loaders["vae"], loaders["upsampler"]]
    return Graph(
        "ltx-2.3_temporal-upsample",
        "LTX-2.3 Temporal Upsample to 48 fps",
        "LTX-2.3 distilled: text to video + audio, temporal x2 to 48 fps",
        note,
        [
            Column(W_LOAD, [*models, empty]),
            Column(W_PROMPT, [positive]),
            Column(W_SAMPLER, [stage1, loaders["audio"]]),
            Column(W_SAMPLER, [upsample, stage2]),
            *_output_columns(outs),
        ],
        [
            ("Models", models),
            ("Size and length", [empty]),
            ("Prompt", [positive]),
            ("Stage 1: 24 fps", [stage1]),
            ("Audio VAE", [loaders["audio"]]),
            ("Stage 2: temporal x2, 48 fps", [upsample, stage2]),
            ("Output", outs),
        ],
        note_over=(4, 7),
        picture="temporal",
    )


# -- LoRAs ----------------------------------------------------------------------------------------------------------

LORA_NOTE = (
    "*Load LoRA* adds a LoRA from `models/loras` to the model wired into it and returns a new model; the one it "
    "was given is unchanged, so one base can feed several chains. Each adapted weight becomes W + strength x B.A "
    "(1.0 is the LoRA as trained); chained LoRAs add up, in any order. A LoRA made for another model is refused "
    "with the model it seems made for."
)


def _lora(model: tuple[Node, int], name: str, strength: float, title: str) -> Node:
    return Node("LTXLoraLoader", {"lora_name": name, "strength": strength}, {"model": model}, title=title)


def two_stage_dev() -> Graph:
    """TI2VidTwoStagesPipeline: dev with guidance at half size -> spatial x2 -> dev + distilled LoRA (1.0) on the
    3 stage-2 sigmas without guidance."""
    loaders = _loaders(CHECKPOINT_23)
    loaders["upsampler"] = Node("LTXUpsamplerLoader", {"upsampler_name": SPATIAL_UPSAMPLER})
    distilled = _lora((loaders["model"], 0), DISTILLED_LORA_23, 1.0, "Distilled LoRA (stage 2)")
    positive, negative = _prompts(loaders["text"], PROMPT)
    empty = _empty(384, 256, "Stage 1 size: half the output's")
    stage1 = _sampler(loaders["model"], positive, negative, (empty, 0), (empty, 1), title="Stage 1: dev, guided")
    upsample = _upsample(stage1, loaders, "Latent upsample x2")
    stage2 = _stage_sampler(
        "Stage 2: dev + distilled LoRA, 3 steps",
        distilled,
        positive,
        (upsample, 0),
        (upsample, 1),
        schedule="stage2",
        audio_mode="generate",
    )
    outs = _outputs(loaders, stage2, "ltx_av_t2v_two_stage_dev")
    note = _note(
        "**Write your prompt in *Positive prompt*, then Run.**\n"
        "## Text to video + audio in two stages (dev)\nThe official *TI2VidTwoStagesPipeline*: **stage 1** at half "
        "size (384x256) with the dev model, guided (" + DEV_SETTINGS_NOTE + ") **Latent upsample x2**; **stage 2** "
        "at 768x512 with the dev model **plus the distilled LoRA at 1.0** (the pipeline's default; the official "
        "ComfyUI examples use 0.5), 3 unguided steps (*schedule = stage2*). The LoRA applies to stage 2 only. "
        + STAGE2_AUDIO_NOTE
        + "\n\n"
        + models_note(
            CHECKPOINT_23,
            (SPATIAL_UPSAMPLER, "the spatial x2 latent upsampler"),
            (DISTILLED_LORA_23, "the distilled LoRA"),
        ),
        height=600,
    )
    models = [loaders["text"], loaders["model"], loaders["vae"], loaders["upsampler"]]
    return Graph(
        "ltx-2.3_text-to-video_two-stage_dev",
        "LTX-2.3 Two Stages - Dev with LoRA",
        "LTX-2.3 dev, two stages with the distilled LoRA: text to video + audio",
        note,
        [
            Column(W_LOAD, [*models, empty]),
            Column(W_PROMPT, [positive, negative]),
            Column(W_LORA - 30, [stage1, distilled, loaders["audio"]]),
            Column(W_SAMPLER, [upsample, stage2]),
            *_output_columns(outs, narrow=True),
        ],
        [
            ("Models", models),
            ("Stage 1 size", [empty]),
            ("Prompts", [positive, negative]),
            ("Stage 1: half size, guided", [stage1]),
            ("Stage 2 LoRA, audio VAE", [distilled, loaders["audio"]]),
            ("Stage 2: upsample x2, refine", [upsample, stage2]),
            ("Output", outs),
        ],
        note_over=(4, 7),
        picture="dev2",
    )


def lora_stack() -> Graph:
    """LTX-2 dev + camera dolly-in LoRA + distilled LoRA: the 8 distilled steps without guidance."""
    loaders = _loaders(CHECKPOINT_2)
    camera = _lora((loaders["model"], 0), CAMERA_LORA_2, 1.0, "LoRA 1: camera dolly-in")
    distilled = _lora((camera, 0), DISTILLED_LORA_2, 1.0, "LoRA 2: distilled (8 steps)")
    positive = _prompt(loaders["text"], DOLLY_PROMPT)
    empty = _empty()
    sampler = _stage_sampler(
        "Sampler: 8 distilled steps", distilled, positive, (empty, 0), (empty, 1), schedule="distilled"
    )
    outs = _outputs(loaders, sampler, "ltx_av_lora_stack")
    note = _note(
        "**Write your prompt in *Prompt* (describe the camera move), then Run.**\n"
        "## A LoRA stack: LTX-2 dev + camera motion + distilled\nTwo LoRAs chained on the LTX-2 19B dev model: the "
        "official **camera dolly-in** LoRA moves the camera, the **distilled LoRA** lets the dev model run the 8 "
        "distilled steps without guidance (so no negative prompt). Swap in your own LoRAs, chain more, or set a "
        "strength to 0 to switch one off. "
        + LORA_NOTE
        + "\n\n"
        + models_note(CHECKPOINT_2, (CAMERA_LORA_2, "the camera LoRA"), (DISTILLED_LORA_2, "the LTX-2 distilled LoRA")),
        height=600,
    )
    models = [loaders["model"], loaders["text"], loaders["vae"], loaders["audio"]]
    loras = [camera, distilled]
    return Graph(
        "ltx-2_lora-stack",
        "LTX-2 LoRA Stack - Camera Dolly-in",
        "LTX-2 dev with a LoRA stack (camera dolly-in + distilled): text to video + audio",
        note,
        [
            Column(W_LOAD, [*models, empty]),
            Column(W_LORA, [positive, *loras]),
            Column(W_SAMPLER, [sampler]),
            *_output_columns(outs),
        ],
        [
            ("Models", models),
            ("Size and length", [empty]),
            ("Prompt", [positive]),
            ("LoRAs", loras),
            ("Output", outs),
        ],
        note_over=(3, 6),
        picture="lora",
    )


def ic_lora_control() -> Graph:
    """ICLoraPipeline, stage 1: distilled checkpoint + union-control IC-LoRA, canny edges of a video as the
    reference (at half size, as the LoRA's metadata says), 8 distilled steps."""
    loaders = _loaders(CHECKPOINT_23_DISTILLED)
    ic = _lora((loaders["model"], 0), IC_LORA_23, 1.0, "IC-LoRA: union control")
    positive = _prompt(loaders["text"], CONTROL_PROMPT)
    video = Node("LoadVideo", {"file": EXAMPLE_VIDEO}, title="Control video: your clip")
    components = Node("GetVideoComponents", links={"video": (video, 0)})
    edges = Node("Canny", {"low_threshold": 0.4, "high_threshold": 0.8}, {"image": (components, 0)})
    empty = _empty()
    reference = Node(
        "LTXReferenceCondition",
        {"strength": 1.0, "scale": 0},
        {"vae": (loaders["vae"], 0), "reference": (edges, 0), "video_latent": (empty, 0), "model": (ic, 0)},
        title="Reference: the edges",
    )
    sampler = _stage_sampler(
        "Sampler: 8 distilled steps", ic, positive, (reference, 0), (empty, 1), schedule="distilled"
    )
    outs = _outputs(loaders, sampler, "ltx_av_ic_lora_canny")
    note = _note(
        "**Pick your own clip in *Control video: your clip* (Load Video), describe the new video in *Prompt*, then "
        "Run.**\n"
        "## IC-LoRA control: a new video that follows another's edges\nThe clip's frames become Canny edge maps "
        "(core nodes), and *Reference Video* attaches them to the latent for the **union-control IC-LoRA** "
        "(canny, depth or pose maps work the same way). The reference is encoded at the size the IC-LoRA declares "
        "in its metadata (here half: `ref0.5`; connect the LoRA'd model to *model* so it is read), kept clean, and "
        "cut from the sampler's output by itself: no crop node. Up to the video's 121 frames are used; 8 distilled "
        "steps without guidance, as the official IC-LoRA pipeline's first stage. "
        + LORA_NOTE
        + "\n\n"
        + models_note(CHECKPOINT_23_DISTILLED, (IC_LORA_23, "the IC-LoRA")),
        height=620,
    )
    models = list(loaders.values())
    control = [components, edges, video]  # the clip ends its column: it grows to show the clip
    return Graph(
        "ltx-2.3_ic-lora_canny-control",
        "LTX-2.3 IC-LoRA Canny Control",
        "LTX-2.3 distilled + IC-LoRA: video + audio following a video's edges",
        note,
        [
            Column(W_LOAD, [*models, empty]),
            Column(W_LORA, [positive, ic, *control]),
            Column(W_SAMPLER, [reference, sampler]),
            *_output_columns(outs),
        ],
        [
            ("Models", models),
            ("Size and length", [empty]),
            ("Prompt", [positive]),
            ("IC-LoRA", [ic]),
            ("Control video: its edges", control),
            ("Output", outs),
        ],
        note_over=(3, 6),
        picture="ic",
    )


# -- thumbnails -----------------------------------------------------------------------------------------------------


def ltx25_models_note(*others: tuple[str, str]) -> str:
    """The note's model section for LTX-2.5's split files (each has its download in the missing-models dialog),
    with ``others`` (file, what it is) after them."""
    lines = [
        "**Model files.** LTX-2.5 comes as one file per part; ComfyUI's missing-models dialog offers each missing "
        "file's official download (in a browser it lands in your downloads folder: move it into the folder named "
        "here)."
    ]
    what = {
        LTX25_TRANSFORMER: "the transformer (*Load Model*; *Load Text Encoder* reads its text connectors)",
        LTX25_TEXT_ENCODER: "Gemma 4 fine-tuned for LTX with its text projection and tokenizer (Gemma 3 does not "
        "fit 2.5)",
        LTX25_VIDEO_VAE: "the video VAE with the diffusion decoder (best pictures; for a lighter, faster decode pick "
        f"`{LTX25_VIDEO_VAE_CONV}` in *Load Video VAE*)",
        LTX25_AUDIO_VAE: "the audio VAE and vocoder (48 kHz)",
        LTX25_DURATION_HEAD: "the duration head: how long the prompt's clip is",
    }
    lines += [f"- `models/{LTX25_FOLDERS[name]}/{name}` — {text}" for name, text in (*what.items(), *others)]
    lines.append(
        "\nShort on GPU memory? **offload = blocks** and/or **dtype = float8-storage** on *Load Model*, "
        "**gemma_device = cpu** on *Load Text Encoder*."
    )
    return "\n".join(lines)


def _ltx25_loaders() -> dict[str, Node]:
    return {
        "model": Node("LTXModelLoader", {"model_name": LTX25_TRANSFORMER}),
        "text": Node("LTXTextEncoderLoader", {"gemma": LTX25_TEXT_ENCODER, "ckpt_name": LTX25_TRANSFORMER}),
        "vae": Node("LTXLoadVideoVAE", {"vae_name": LTX25_VIDEO_VAE}),
        "audio": Node("LTXAudioVAELoader", {"ckpt_name": LTX25_AUDIO_VAE}),
    }


LTX25_LENGTH_NOTE = (
    "*Predict Duration* reads the prompt and sets the clip's length (8k+1 frames within its min..max seconds; "
    "the log says what it chose): disconnect it and type *frames* on *Empty Latent* for a length of your own."
)


def ltx25(image: bool) -> Graph:
    """LTX-2.5 from its split files; the duration head picks the clip's length from the prompt."""
    loaders = _ltx25_loaders()
    positive, negative = _prompts(loaders["text"], IMAGE_PROMPT if image else PROMPT)
    duration = Node("LTXDurationPredict", {"head_name": LTX25_DURATION_HEAD}, {"positive": (positive, 0)})
    empty = Node("LTXEmptyLatent", {"width": 768, "height": 512, "frame_rate": 24.0}, {"frames": (duration, 0)})
    latent: tuple[Node, int] = (empty, 0)
    extra: list[Node] = []
    if image:
        picture = Node("LoadImage", {"image": EXAMPLE_IMAGE}, title="First frame")
        condition = Node(
            "LTXImageCondition",
            {"frame_index": 0, "strength": 1.0},
            {"vae": (loaders["vae"], 0), "image": (picture, 0), "video_latent": (empty, 0)},
        )
        latent, extra = (condition, 0), [picture, condition]
    sampler = _sampler(loaders["model"], positive, negative, latent, (empty, 1))
    outs = _outputs(loaders, sampler, "ltx_av_25_i2v" if image else "ltx_av_25_t2v")
    length = LTX25_LENGTH_NOTE
    if image:
        first = (
            "**Pick your own picture in *First frame* (Load Image; it starts with ComfyUI's example.png), describe "
            "the motion and the sound in *Positive prompt*, then Run.**\n## LTX-2.5: image to video + audio\nThe "
            "picture becomes the first frame, scaled to cover 768x512, centre-cropped and re-compressed the way "
            "2.5 was trained (*crf* -1: 18 for LTX-2.5). "
        )
    else:
        first = (
            "**Write your prompt in *Positive prompt*, then Run.**\n## LTX-2.5: text to video + audio\nThe picture "
            "and its sound are made together. "
        )
    note = _note(first + length + " " + DEV_SETTINGS_NOTE.replace("LTX-2.3's", "LTX-2.3's, which 2.5 shares")
                 + "\n\n" + ltx25_models_note())  # fmt: skip
    models = list(loaders.values())
    # text: prompts | length and size; image: prompts over length and size | the first frame
    middle = [Column(W_PROMPT, [positive, negative, duration, empty]), Column(W_MID, extra)] if image else [
        Column(W_PROMPT, [positive, negative]), Column(W_MID, [duration, empty])
    ]  # fmt: skip
    columns = [Column(W_LOAD, models), *middle, Column(W_SAMPLER, [sampler]), *_output_columns(outs)]
    groups = [("Models", models), ("Prompts", [positive, negative]), ("Length and size", [duration, empty])]
    if image:
        groups.append(("First frame", extra))
    name = "ltx-2.5_image-to-video" if image else "ltx-2.5_text-to-video"
    title = "LTX-2.5 Image to Video" if image else "LTX-2.5 Text to Video"
    return Graph(
        name,
        title,
        f"LTX-2.5: {'image' if image else 'text'} to video + audio",
        note,
        columns,
        groups + [("Output", outs)],
        note_over=(4, 7),
        picture="i2v25" if image else "t2v25",
    )


def ltx25_two_stage() -> Graph:
    """ltx-pipelines 1.2.0's TI2VidTwoStagesPipeline on LTX-2.5: the dev transformer guided at half size (2.5's
    official settings) -> the 2.5 spatial x2 -> dev + the 2.5 distilled LoRA (1.0) on the 3 stage-2 sigmas, unguided;
    the sound is stage 1's (1.2.0 decodes stage-1 audio; stage 2 runs audio only for the video's cross-attention)."""
    loaders = _ltx25_loaders()
    loaders["upsampler"] = Node("LTXUpsamplerLoader", {"upsampler_name": LTX25_SPATIAL_UPSAMPLER})
    distilled = _lora((loaders["model"], 0), LTX25_DISTILLED_LORA, 1.0, "Distilled LoRA (stage 2)")
    positive, negative = _prompts(loaders["text"], PROMPT)
    duration = Node("LTXDurationPredict", {"head_name": LTX25_DURATION_HEAD}, {"positive": (positive, 0)})
    empty = Node(
        "LTXEmptyLatent",
        {"width": 384, "height": 256, "frame_rate": 24.0},
        {"frames": (duration, 0)},
        title="Stage 1 size: half the output's",
    )
    stage1 = _sampler(loaders["model"], positive, negative, (empty, 0), (empty, 1), title="Stage 1: dev, guided")
    upsample = _upsample(stage1, loaders, "Latent upsample x2")
    stage2 = _stage_sampler(
        "Stage 2: dev + distilled LoRA, 3 steps",
        distilled,
        positive,
        (upsample, 0),
        (upsample, 1),
        schedule="stage2",
        audio_mode="generate",
    )
    outs = _outputs(loaders, stage2, "ltx_av_25_t2v_two_stage", audio_source=(stage1, 1))
    note = _note(
        "**Write your prompt in *Positive prompt*, then Run.**\n"
        "## LTX-2.5: text to video + audio in two stages\nThe official *TI2VidTwoStagesPipeline* (ltx-pipelines "
        "1.2): **stage 1** at half size (384x256) with the dev transformer, guided ("
        + DEV_SETTINGS_NOTE.replace("LTX-2.3's", "LTX-2.3's, which 2.5 shares")
        + ") **Latent upsample x2** with 2.5's spatial upsampler; **stage 2** at 768x512 with the dev transformer "
        "**plus the 2.5 distilled LoRA at 1.0** (the pipeline's default), 3 unguided steps (*schedule = stage2*). "
        "The LoRA applies to stage 2 only. For other sizes keep stage 1 at half the output's (output sides "
        "multiples of 64). " + LTX25_LENGTH_NOTE + " The sound is stage 1's, as ltx-pipelines 1.2 keeps it: stage "
        "2 refines the audio along with the video (*audio_mode = generate*, which the video needs), and *Audio "
        "Decode* reads the stage-1 sampler's audio; connect it to the stage-2 sampler's instead for the refined "
        "one.\n\n"
        + ltx25_models_note(
            (LTX25_SPATIAL_UPSAMPLER, "LTX-2.5's spatial x2 latent upsampler"),
            (LTX25_DISTILLED_LORA, "LTX-2.5's distilled LoRA (stage 2)"),
        ),
        height=640,
    )
    models = [loaders["text"], loaders["model"], loaders["vae"], loaders["upsampler"]]
    return Graph(
        "ltx-2.5_text-to-video_two-stage",
        "LTX-2.5 Two Stages - Text to Video",
        "LTX-2.5 dev, two stages with the distilled LoRA: text to video + audio",
        note,
        [
            Column(W_LOAD, models),
            Column(W_PROMPT, [positive, negative, duration, empty]),
            Column(W_LORA - 30, [stage1, distilled, loaders["audio"]]),
            Column(W_SAMPLER, [upsample, stage2]),
            *_output_columns(outs, narrow=True),
        ],
        [
            ("Models", models),
            ("Prompts", [positive, negative]),
            ("Length and stage 1 size", [duration, empty]),
            ("Stage 1: half size, guided", [stage1]),
            ("Stage 2 LoRA, audio VAE", [distilled, loaders["audio"]]),
            ("Stage 2: upsample x2, refine", [upsample, stage2]),
            ("Output", outs),
        ],
        note_over=(4, 7),
        picture="t2v25_2",
    )


# -- long video -----------------------------------------------------------------------------------------------------

LONG_PROMPTS = (
    "A red vintage car drives along a winding coastal road at golden hour, the camera following from behind. The "
    "engine hums, tyres hiss on the asphalt, waves break on the rocks below.",
    "The red car rounds a bend and the sea opens up below the cliffs; the camera rises slowly beside it. The "
    "engine hums on, gulls cry over the water.",
    "The red car pulls into a small harbour village and slows down between white houses; fishing boats rock at "
    "the quay. The engine winds down, church bells ring in the distance.",
)


def long_video() -> Graph:
    """Three ~5 s segments with a prompt each: the first from an empty latent, the next two extended after the
    previous one (1 s kept), joined into one 15 s video with one soundtrack."""
    loaders = _loaders(CHECKPOINT_23_DISTILLED)
    empty = _empty(title="Segment 1 size and length")
    prompts = [_prompt(loaders["text"], text) for text in LONG_PROMPTS]
    for i, prompt in enumerate(prompts, start=1):
        prompt.title = f"Prompt {i}"
    video, audio = (empty, 0), (empty, 1)
    segments: list[list[Node]] = []
    for i, prompt in enumerate(prompts, start=1):
        nodes = [prompt]
        if i > 1:
            extend = Node(
                "LTXExtend",
                {"seconds": 5.0, "overlap_seconds": 1.0, "direction": "after", "overlap_strength": 1.0},
                {"video_latent": video, "audio_latent": audio},
                title=f"Extend: +5 s after segment {i - 1}",
            )
            video, audio = (extend, 0), (extend, 1)
            nodes.append(extend)
        sampler = _sampler(loaders["model"], prompt, None, video, audio, schedule="distilled", title=f"Segment {i}")
        sampler.widgets["seed"] = 41 + i
        video, audio = (sampler, 0), (sampler, 1)
        nodes.append(sampler)
        segments.append(nodes)
    join = Node(
        "LTXJoin",
        links={
            "vae": (loaders["vae"], 0),
            "video_latent": video,
            "audio_vae": (loaders["audio"], 0),
            "audio_latent": audio,
        },
    )
    create = Node("CreateVideo", {"fps": 24.0}, {"images": (join, 0), "audio": (join, 1), "fps": (join, 2)})
    save = Node("SaveVideo", {"filename_prefix": "video/ltx_av_long"}, {"video": (create, 0)})
    note = _note(
        "**Write one prompt per segment in *Prompt 1*, *Prompt 2* and *Prompt 3*, then Run.**\n"
        "## Long video with sound\nThree segments of about 5 s, each sampled with its own prompt (distilled "
        "LTX-2.3, 8 steps): *Segment 1* from *Empty Latent* (121 frames, 768x512), then each *Extend* makes the "
        "next segment's latents: it keeps the last second of the previous segment, picture **and sound**, as "
        "tokens the sampler does not change, and adds 5 s (whole latent frames of 8; its *info* output says what "
        "was kept). *Join* decodes the segments one after another and cross-fades each 1 s overlap, frames and "
        "samples, into one 15 s video (361 frames) with one soundtrack. Chain more *Extend* + *Sampler* pairs "
        "for longer videos (connect the last sampler to *Join*); *direction = before* grows the video at its "
        "start.\n\n" + models_note(CHECKPOINT_23_DISTILLED),
        height=560,
    )
    models = list(loaders.values())
    return Graph(
        "ltx-2.3_long-video",
        "LTX-2.3 Long Video",
        "LTX-2.3 distilled: a long video with sound in three segments",
        note,
        [
            Column(W_LOAD, [*models, empty]),
            *[Column(W_SAMPLER, nodes) for nodes in segments],
            Column(W_DECODE, [join]),
            Column(W_CREATE, [create]),
            Column(W_SAVE, [save]),
        ],
        [
            ("Models", models),
            ("Size and length", [empty]),
            *[(f"Segment {i}", nodes) for i, nodes in enumerate(segments, start=1)],
            ("Output", [join, create, save]),
        ],
        note_over=(4, 7),
        picture="long",
    )


THUMB_SIZE = (400, 300)
# (headline, subtitle, input icon) per picture kind
THUMB_TEXT = {
    "t2v": ("Text to Video", "LTX-2.3 dev, with sound", "text"),
    "t2v_distilled": ("Text to Video", "LTX-2.3 distilled, 8 steps", "text"),
    "i2v": ("Image to Video", "LTX-2.3, with sound", "image"),
    "flf": ("First + Last Frame", "LTX-2.3, with sound", "two images"),
    "a2v": ("Audio to Video", "LTX-2.3: the video follows a sound", "sound"),
    "roundtrip": ("Latent Round Trip", "video -> LTX latent -> video", "video"),
    "t2v2": ("Two Stages", "LTX-2.3 distilled: half size, then x2", "text"),
    "i2v2": ("Two Stages from an Image", "LTX-2.3 distilled: half size, then x2", "image"),
    "temporal": ("Temporal Upsample", "LTX-2.3: 24 -> 48 fps", "text"),
    "dev2": ("Two Stages, Dev + LoRA", "LTX-2.3 dev, distilled LoRA in stage 2", "text"),
    "lora": ("LoRA Stack", "LTX-2: camera dolly-in + distilled", "loras"),
    "ic": ("IC-LoRA Control", "LTX-2.3: follow a clip's edges", "edges"),
    "long": ("Long Video", "LTX-2.3: 3 segments, one soundtrack", "text"),
    "t2v25": ("Text to Video", "LTX-2.5, length from the prompt", "text"),
    "i2v25": ("Image to Video", "LTX-2.5, with sound", "image"),
    "t2v25_2": ("Two Stages, Dev + LoRA", "LTX-2.5 dev, distilled LoRA in stage 2", "text"),
}


def thumbnail(graph: Graph) -> bytes:
    """A small JPEG for the template card: what goes in, a film strip with its soundtrack, the title."""
    import io
    import math

    from PIL import Image, ImageDraw, ImageFont

    w, h = THUMB_SIZE
    image = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(image)
    for y in range(h):  # dusk gradient
        t = y / (h - 1)
        draw.line([(0, y), (w, y)], fill=(int(24 + 30 * t), int(26 + 8 * t), int(44 + 20 * t)))
    headline, subtitle, source = THUMB_TEXT[graph.picture]
    big, small = ImageFont.load_default(size=30), ImageFont.load_default(size=17)
    draw.text((20, 18), headline, font=big, fill=(245, 240, 230))
    draw.text((21, 56), subtitle, font=small, fill=(200, 190, 215))
    # the input, on the left
    box = (20, 110, 110, 190)
    draw.rounded_rectangle(box, 10, fill=(52, 56, 84), outline=(120, 128, 180), width=2)
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    if source == "text":
        for i, length in enumerate((62, 54, 62, 40)):
            draw.line(
                [(cx - 31, cy - 24 + 16 * i), (cx - 31 + length, cy - 24 + 16 * i)], fill=(220, 220, 235), width=4
            )
    elif source in ("image", "two images"):
        shift = (-12, 12) if source == "two images" else (0,)
        for dx in shift:
            draw.rectangle(
                (cx - 30 + dx, cy - 24 + dx, cx + 30 + dx, cy + 24 + dx), fill=(235, 150, 70), outline=(30, 30, 40)
            )
            draw.polygon(
                [(cx - 30 + dx, cy + 24 + dx), (cx - 5 + dx, cy - 4 + dx), (cx + 30 + dx, cy + 24 + dx)],
                fill=(70, 40, 60),
            )
    elif source == "sound":
        points = [(cx - 36 + x, cy + 24 * math.sin(x / 4.0) * math.exp(-(((x - 36) / 26) ** 2))) for x in range(73)]
        draw.line(points, fill=(120, 220, 200), width=3)
    elif source == "video":
        for i in range(3):
            draw.rectangle(
                (cx - 34 + 24 * i, cy - 14, cx - 14 + 24 * i, cy + 14), fill=(235, 150, 70), outline=(30, 30, 40)
            )
    elif source == "loras":
        for i in range(3):
            draw.rounded_rectangle(
                (cx - 30 + 6 * i, cy - 26 + 12 * i, cx + 18 + 6 * i, cy + 2 + 12 * i),
                5,
                fill=(90 + 40 * i, 120, 200),
                outline=(20, 20, 30),
            )
    elif source == "edges":
        draw.line(
            [(cx - 34, cy + 20), (cx - 10, cy - 22), (cx + 8, cy + 6), (cx + 34, cy - 18)],
            fill=(240, 240, 240),
            width=3,
        )
        draw.ellipse((cx - 12, cy - 8, cx + 4, cy + 8), outline=(240, 240, 240), width=2)
    draw.polygon([(122, 142), (146, 150), (122, 158)], fill=(230, 200, 120))  # arrow
    # the output: a film strip (frames doubled for the temporal graph, a small then a large one for two stages)
    frames = 6 if graph.picture == "temporal" else 3
    left, top, right, bottom = 158, 104, 380, 196
    draw.rectangle((left, top, right, bottom), fill=(20, 20, 26))
    for x in range(left + 6, right - 4, 14):
        draw.rectangle((x, top + 4, x + 7, top + 10), fill=(90, 90, 100))
        draw.rectangle((x, bottom - 10, x + 7, bottom - 4), fill=(90, 90, 100))
    frame_w = (right - left - 12 - 6 * (frames - 1)) / frames
    for i in range(frames):
        x0 = left + 6 + i * (frame_w + 6)
        sun = (235, 150 + 12 * i % 60, 70)
        draw.rectangle((x0, top + 16, x0 + frame_w, bottom - 16), fill=(60, 90, 140))
        draw.rectangle((x0, (top + bottom) / 2 + 8, x0 + frame_w, bottom - 16), fill=(210, 180, 120))
        r = 7 if frames == 6 else 11
        sx = x0 + frame_w * (0.3 + 0.15 * i / frames)
        draw.ellipse((sx - r, (top + bottom) / 2 - r - 2, sx + r, (top + bottom) / 2 + r - 2), fill=sun)
    if graph.picture in ("t2v2", "i2v2", "dev2", "t2v25_2"):
        draw.text((left, bottom + 2), "x2", font=small, fill=(230, 200, 120))
    # the soundtrack
    points = [(158 + x, 236 + 18 * math.sin(x / 5.0) * math.sin(x / 37.0)) for x in range(223)]
    draw.line(points, fill=(120, 220, 200), width=2)
    draw.text((20, 262), "LTX-AV", font=small, fill=(150, 150, 175))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


GRAPHS = (
    lambda: text_to_video(False),
    lambda: text_to_video(True),
    image_to_video,
    first_last_frame,
    audio_to_video,
    latent_round_trip,
    lambda: two_stage(False),
    lambda: two_stage(True),
    temporal_upsample,
    two_stage_dev,
    lora_stack,
    ic_lora_control,
    lambda: ltx25(image=False),
    lambda: ltx25(image=True),
    ltx25_two_stage,
    long_video,
)


def build() -> dict[str, bytes]:
    """Relative path -> content of every workflow file (the thumbnails are :func:`thumbnails`)."""
    files = {}
    for make in GRAPHS:
        graph = make()
        ui = json.dumps(to_ui(graph), indent=2).encode() + b"\n"
        api = json.dumps(to_api(make()), indent=2).encode() + b"\n"
        files[f"workflows/ui/{graph.name}.json"] = ui
        files[f"example_workflows/{graph.template}.json"] = ui
        files[f"workflows/api/{graph.name}.json"] = api
    return files


def main() -> None:
    files = build()
    for make in GRAPHS:
        graph = make()
        files[f"example_workflows/{graph.template}.jpg"] = thumbnail(graph)
    for relative, content in files.items():
        path = os.path.join(ROOT, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
        print(f"wrote {relative}")  # noqa: T201 - a command-line tool


if __name__ == "__main__":
    main()
