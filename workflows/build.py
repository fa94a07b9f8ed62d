"""Writes the example workflows from one description per graph, so the UI files and their API twins never drift.

    python workflows/build.py          # rewrites workflows/ui, workflows/api and example_workflows

Each graph is a list of :class:`Node` (type, widget values by input name, links by input name) laid out on a grid.
Widget order and defaults come from our nodes' ``INPUT_TYPES`` and, for ComfyUI core nodes, from :data:`CORE`
(checked by tests/test_workflows.py against the files and, when configured, against a real ComfyUI).
The UI files (LiteGraph format 0.4) carry a Markdown note saying which model files go where.
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
EXAMPLE_IMAGE = "example.png"  # ships in ComfyUI's input folder
LAST_IMAGE = "ltx_av_last_frame.png"
EXAMPLE_AUDIO = "ltx_av_example.wav"
EXAMPLE_VIDEO = "ltx_av_example.mp4"

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
    "SaveAudio": {"inputs": [("audio", "AUDIO", None), ("filename_prefix", "STRING", "audio/ltx_av")], "outputs": []},
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


@dataclass
class Node:
    type: str
    col: int
    row: float
    widgets: dict[str, Any] = field(default_factory=dict)
    links: dict[str, tuple[Node, int]] = field(default_factory=dict)
    title: str | None = None
    size: tuple[int, int] | None = None
    id: int = 0


@dataclass
class Graph:
    name: str
    title: str
    note: str
    nodes: list[Node]
    groups: list[tuple[str, list[Node]]] = field(default_factory=list)
    columns: tuple[tuple[int, int], ...] | None = None  # (x, width) per column; None: COLUMNS


# -- layout ---------------------------------------------------------------------------------------------------------

COLUMN_X = (0, 440, 880, 1320, 1760, 2160)
COLUMN_W = (380, 400, 400, 400, 360, 360)
COLUMNS = tuple(zip(COLUMN_X, COLUMN_W, strict=True))
# Two-stage graphs: loaders | prompt | stage 1 (2 columns) | upsample + stage 2 (2 columns) | output (2 columns),
# with room between the stages for their groups.
TWO_STAGE_COLUMNS = ((0, 380), (440, 400), (900, 400), (1340, 400), (1840, 360), (2240, 400), (2740, 360), (3140, 360))
ROW_Y = 140  # pixels per row unit


def _size(node: Node, columns: tuple[tuple[int, int], ...] = COLUMNS) -> tuple[int, int]:
    if node.size:
        return node.size
    rows = sum(1 for name, kind, _, _ in node_inputs(node.type) if kind != "+ui")
    rows = max(rows, len(node_outputs(node.type)))
    height = 46 + 26 * rows
    if node.type == "LTXTextEncode":
        height = 200
    if node.type in ("LoadImage", "LoadVideo"):
        height = 320
    return columns[node.col][1], height


def _pos(node: Node, columns: tuple[tuple[int, int], ...] = COLUMNS) -> list[int]:
    return [columns[node.col][0], int(node.row * ROW_Y)]


# -- UI (LiteGraph) format ------------------------------------------------------------------------------------------


def _widget_values(node: Node) -> list:
    values = []
    for name, kind, default, _ in node_inputs(node.type):
        if not is_widget(kind) or name in node.links:
            continue
        value = node.widgets.get(name, default)
        values.append(value)
        if has_seed_control(node.type, name):
            values.append("fixed")
    return values


def _view_top(graph: Graph, columns: tuple[tuple[int, int], ...]) -> int:
    """The saved view's vertical offset: the topmost title bar (30 px above its node) 14 px below the top."""
    return 14 - min(_pos(n, columns)[1] - 30 for n in graph.nodes)


def to_ui(graph: Graph) -> dict:
    columns = graph.columns or COLUMNS
    for i, node in enumerate(graph.nodes, start=1):
        node.id = i
    links = []
    inputs_of: dict[int, list] = {}
    outputs_of: dict[int, list] = {n.id: [] for n in graph.nodes}
    for node in graph.nodes:
        outputs_of[node.id] = [
            {"name": name, "type": kind, "links": [], "slot_index": slot}
            for slot, (name, kind) in enumerate(node_outputs(node.type))
        ]
    for node in graph.nodes:
        sockets = []
        for name, kind, _, _ in node_inputs(node.type):
            if is_widget(kind) and name not in node.links:
                continue
            entry: dict[str, Any] = {"name": name, "type": kind if not is_widget(kind) else kind, "link": None}
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
    for order, node in enumerate(graph.nodes):
        entry = {
            "id": node.id,
            "type": node.type,
            "pos": _pos(node, columns),
            "size": list(_size(node, columns)),
            "flags": {},
            "order": order,
            "mode": 0,
            "inputs": inputs_of[node.id],
            "outputs": outputs_of[node.id],
            "properties": {"Node name for S&R": node.type},
            "widgets_values": _widget_values(node),
        }
        if node.title:
            entry["title"] = node.title
        if node.type == "MarkdownNote":
            entry["color"], entry["bgcolor"] = "#432", "#653"
        nodes.append(entry)
    groups = []
    for title, members in graph.groups:
        left = min(_pos(n, columns)[0] for n in members) - 20
        top = min(_pos(n, columns)[1] for n in members) - 60
        right = max(_pos(n, columns)[0] + _size(n, columns)[0] for n in members) + 20
        bottom = max(_pos(n, columns)[1] + _size(n, columns)[1] for n in members) + 20
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
        "extra": {"ds": {"scale": 0.7, "offset": [40, _view_top(graph, columns)]}, "ltx_av": {"title": graph.title}},
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


def _negative() -> str:
    from ltx_av.ltx_core.pipeline import DEFAULT_NEGATIVE_PROMPT

    return DEFAULT_NEGATIVE_PROMPT


MODELS_NOTE = f"""\
**Model files** (see the pack's README for links)
- `ComfyUI/models/checkpoints/{{checkpoint}}`
- `ComfyUI/models/text_encoders/{GEMMA}` — the whole Gemma 3 12B folder (config, tokenizer, shards)

One checkpoint feeds all four loaders: each reads only its part of the file.
Short on GPU memory? Set **offload = blocks** and/or **dtype = float8-storage** on *Load Model*, and
**gemma_device = cpu** on *Load Text Encoder*."""


def _loaders(checkpoint: str) -> dict[str, Node]:
    return {
        "model": Node("LTXModelLoader", 0, 0, {"model_name": checkpoint}),
        "text": Node("LTXTextEncoderLoader", 0, 1.5, {"gemma": GEMMA, "ckpt_name": checkpoint}),
        "vae": Node("LTXLoadVideoVAE", 0, 3.0, {"vae_name": f"checkpoints/{checkpoint}"}),
        "audio": Node("LTXAudioVAELoader", 0, 4.0, {"ckpt_name": checkpoint}),
    }


def _prompts(text_loader: Node, prompt: str) -> tuple[Node, Node]:
    positive = Node(
        "LTXTextEncode", 1, 0, {"text": prompt}, {"text_encoder": (text_loader, 0)}, title="Positive prompt"
    )
    negative = Node(
        "LTXTextEncode", 1, 1.6, {"text": _negative()}, {"text_encoder": (text_loader, 0)}, title="Negative prompt"
    )
    return positive, negative


def _outputs(
    loaders: dict[str, Node],
    sampler: Node,
    prefix: str,
    audio_source: tuple[Node, int] | None = None,
    col: int = 4,
    fps: float = 24.0,
):
    decode = Node("LTXVAEDecode", col, 0, links={"vae": (loaders["vae"], 0), "samples": (sampler, 0)})
    audio = Node(
        "LTXAudioDecode", col, 3.2, links={"audio_vae": (loaders["audio"], 0), "samples": audio_source or (sampler, 1)}
    )
    video = Node("CreateVideo", col + 1, 0, {"fps": fps}, {"images": (decode, 0), "audio": (audio, 0)})
    save = Node("SaveVideo", col + 1, 1.4, {"filename_prefix": f"video/{prefix}"}, {"video": (video, 0)})
    return [decode, audio, video, save]


def _sampler(
    model: Node, positive: Node, negative: Node, video: tuple[Node, int], audio: tuple[Node, int], **widgets
) -> Node:
    return Node(
        "LTXSampler",
        3,
        0,
        {"seed": 42, **widgets},
        {
            "model": (model, 0),
            "positive": (positive, 0),
            "negative": (negative, 0),
            "video_latent": video,
            "audio_latent": audio,
        },
        size=(400, 620),
    )


def _note(text: str) -> Node:
    return Node("MarkdownNote", 0, -2.4, {"text": text}, size=(760, 290), title="Read me")


def text_to_video(distilled: bool) -> Graph:
    checkpoint = CHECKPOINT_23_DISTILLED if distilled else CHECKPOINT_23
    loaders = _loaders(checkpoint)
    positive, negative = _prompts(loaders["text"], PROMPT)
    empty = Node("LTXEmptyLatent", 2, 0, {"width": 768, "height": 512, "frames": 121, "frame_rate": 24.0})
    if distilled:
        sampler = _sampler(
            loaders["model"], positive, negative, (empty, 0), (empty, 1), schedule="distilled", steps=8, **UNGUIDED
        )
        how = (
            "Text to video with sound, **distilled** LTX-2.3: 8 fixed steps without guidance (CFG 1), several "
            "times faster than the dev model. The sampler's widgets show what this schedule runs."
        )
    else:
        sampler = _sampler(loaders["model"], positive, negative, (empty, 0), (empty, 1))
        how = (
            "Text to video with sound, LTX-2.3 dev: the LTX-2 scheduler with the official step count and guidance "
            "(*settings = official* on the sampler: the values shown are LTX-2.3's; switch it to *as set above* to "
            "change steps or guidance)."
        )
    outs = _outputs(loaders, sampler, "ltx_av_t2v_distilled" if distilled else "ltx_av_t2v")
    note = _note(
        f"## {'Distilled text' if distilled else 'Text'} to video + audio\n{how}\n\n"
        "121 frames at 24 fps, 768x512. Frames must be 8k+1 and sides multiples of 32; other values are padded "
        "(logged) and cropped off after decoding.\n\n" + MODELS_NOTE.format(checkpoint=checkpoint)
    )
    nodes = [note, *loaders.values(), positive, negative, empty, sampler, *outs]
    return Graph(
        "ltx-2.3_text-to-video_distilled" if distilled else "ltx-2.3_text-to-video",
        "LTX-2.3 distilled: text to video + audio" if distilled else "LTX-2.3: text to video + audio",
        "",
        nodes,
        [("Models", list(loaders.values())), ("Prompts", [positive, negative]), ("Output", outs)],
    )


def image_to_video() -> Graph:
    loaders = _loaders(CHECKPOINT_23)
    positive, negative = _prompts(loaders["text"], IMAGE_PROMPT)
    empty = Node("LTXEmptyLatent", 2, 0, {"width": 768, "height": 512, "frames": 121, "frame_rate": 24.0})
    image = Node("LoadImage", 2, 2.4, {"image": EXAMPLE_IMAGE}, title="First frame")
    condition = Node(
        "LTXImageCondition",
        2,
        5.0,
        {"frame_index": 0, "strength": 1.0},
        {"vae": (loaders["vae"], 0), "image": (image, 0), "video_latent": (empty, 0)},
    )
    sampler = _sampler(loaders["model"], positive, negative, (condition, 0), (empty, 1))
    outs = _outputs(loaders, sampler, "ltx_av_i2v")
    note = _note(
        "## Image to video + audio\nThe loaded image becomes the first frame (it is scaled to cover 768x512 and "
        "centre-cropped, then lightly re-compressed like the official pipelines, crf 33). Describe the motion and "
        "the sound in the prompt. Lower *strength* lets the model depart from the image.\n\n"
        + MODELS_NOTE.format(checkpoint=CHECKPOINT_23)
    )
    nodes = [note, *loaders.values(), positive, negative, empty, image, condition, sampler, *outs]
    return Graph(
        "ltx-2.3_image-to-video",
        "LTX-2.3: image to video + audio",
        "",
        nodes,
        [("Models", list(loaders.values())), ("Prompts", [positive, negative]), ("Output", outs)],
    )


def first_last_frame() -> Graph:
    loaders = _loaders(CHECKPOINT_23)
    positive, negative = _prompts(loaders["text"], FIRST_LAST_PROMPT)
    empty = Node("LTXEmptyLatent", 2, 0, {"width": 768, "height": 512, "frames": 121, "frame_rate": 24.0})
    first = Node("LoadImage", 1, 3.6, {"image": EXAMPLE_IMAGE}, title="First frame")
    last = Node("LoadImage", 1, 6.2, {"image": LAST_IMAGE}, title="Last frame")
    cond_first = Node(
        "LTXImageCondition",
        2,
        2.4,
        {"frame_index": 0},
        {"vae": (loaders["vae"], 0), "image": (first, 0), "video_latent": (empty, 0)},
        title="Condition: first frame",
    )
    cond_last = Node(
        "LTXImageCondition",
        2,
        4.8,
        {"frame_index": -1},
        {"vae": (loaders["vae"], 0), "image": (last, 0), "video_latent": (cond_first, 0)},
        title="Condition: last frame",
    )
    sampler = _sampler(loaders["model"], positive, negative, (cond_last, 0), (empty, 1))
    outs = _outputs(loaders, sampler, "ltx_av_first_last")
    note = _note(
        "## First + last frame\nTwo chained *Image Condition* nodes: frame_index 0 pins the first frame, -1 the "
        "last one (negative indices count from the end). Add more in the chain for keyframes in between (e.g. "
        "frame_index 60).\n\n" + MODELS_NOTE.format(checkpoint=CHECKPOINT_23)
    )
    nodes = [note, *loaders.values(), positive, negative, empty, first, last, cond_first, cond_last, sampler, *outs]
    return Graph(
        "ltx-2.3_first-last-frame",
        "LTX-2.3: first + last frame to video + audio",
        "",
        nodes,
        [("Models", list(loaders.values())), ("Keyframes", [first, last]), ("Output", outs)],
    )


def audio_to_video() -> Graph:
    loaders = _loaders(CHECKPOINT_23)
    positive, negative = _prompts(loaders["text"], AUDIO_PROMPT)
    empty = Node("LTXEmptyLatent", 2, 0, {"width": 768, "height": 512, "frames": 121, "frame_rate": 24.0})
    sound = Node("LoadAudio", 2, 2.4, {"audio": EXAMPLE_AUDIO})
    encode = Node(
        "LTXAudioEncode",
        2,
        4.0,
        {"video_frames": 121, "frame_rate": 24.0},
        {"audio_vae": (loaders["audio"], 0), "audio": (sound, 0)},
    )
    sampler = _sampler(loaders["model"], positive, negative, (empty, 0), (encode, 0), audio_mode="keep")
    outs = _outputs(loaders, sampler, "ltx_av_a2v")
    save_audio = Node("SaveAudio", 5, 3.2, {"filename_prefix": "audio/ltx_av_a2v"}, {"audio": (outs[1], 0)})
    note = _note(
        "## Audio to video\nThe loaded sound is encoded (any sample rate; mono is duplicated) and cut or padded to "
        "the video's length (*video_frames* / *frame_rate* on Audio Encode: keep them equal to the empty "
        "latent's). The sampler keeps it (*audio_mode = keep*) and generates a video that follows it. The kept "
        "audio is decoded again for the output (Audio Encode -> Audio Decode round trip), and saved on its own.\n\n"
        + MODELS_NOTE.format(checkpoint=CHECKPOINT_23)
    )
    nodes = [note, *loaders.values(), positive, negative, empty, sound, encode, sampler, *outs, save_audio]
    return Graph(
        "ltx-2.3_audio-to-video",
        "LTX-2.3: audio to video",
        "",
        nodes,
        [("Models", list(loaders.values())), ("Sound", [sound, encode]), ("Output", [*outs, save_audio])],
    )


def latent_round_trip() -> Graph:
    vae = Node("LTXLoadVideoVAE", 0, 0, {"vae_name": f"checkpoints/{CHECKPOINT_23}"})
    load = Node("LoadVideo", 0, 1.2, {"file": EXAMPLE_VIDEO})
    parts = Node("GetVideoComponents", 1, 1.2, links={"video": (load, 0)})
    encode = Node("LTXVAEEncode", 2, 0, {"fit": "pad", "frame_rate": 24.0}, {"vae": (vae, 0), "images": (parts, 0)})
    upscale = Node("LatentUpscaleBy", 3, 0, {"upscale_method": "bilinear", "scale_by": 1.5}, {"samples": (encode, 0)})
    decode = Node("LTXVAEDecode", 4, 0, links={"vae": (vae, 0), "samples": (upscale, 0)})
    video = Node("CreateVideo", 5, 0, {"fps": 24.0}, {"images": (decode, 0), "audio": (parts, 1)})
    save = Node("SaveVideo", 5, 1.4, {"filename_prefix": "video/ltx_av_roundtrip"}, {"video": (video, 0)})
    note = _note(
        "## Latent round trip\nA video goes through the LTX video VAE: *Video Encode* gives an ordinary LATENT "
        "(`[1, 128, frames', H/32, W/32]`), any core latent node can work on it (here *Upscale Latent By* 1.5x, "
        "so the decoded video is 1.5x larger and softer; set 1.0 for a plain round trip), and *Video Decode* "
        "turns it back into frames, tiled to fit the free memory. The video's own sound is passed through.\n\n"
        f"**Model file**: `ComfyUI/models/checkpoints/{CHECKPOINT_23}` (only its video VAE is read)."
    )
    nodes = [note, vae, load, parts, encode, upscale, decode, video, save]
    return Graph("ltx-av_latent-round-trip", "LTX-AV: video -> latent -> video", "", nodes, [("Output", [video, save])])


SPATIAL_UPSAMPLER = "ltx-2.3-spatial-upscaler-x2-1.1.safetensors"
TEMPORAL_UPSAMPLER = "ltx-2.3-temporal-upscaler-x2-1.0.safetensors"

UPSAMPLER_NOTE = """\
- `ComfyUI/models/latent_upscale_models/{upsampler}` — the {kind} latent upsampler (its own file; the pack creates \
the folder on ComfyUI versions that lack it)"""

TWO_STAGE_MODELS_NOTE = f"""\
**Model files** (see the pack's README for links)
- `ComfyUI/models/checkpoints/{CHECKPOINT_23_DISTILLED}` — both stages use the distilled checkpoint
{{upsampler}}
- `ComfyUI/models/text_encoders/{GEMMA}` — the whole Gemma 3 12B folder (config, tokenizer, shards)

One checkpoint feeds the model, text-encoder, video-VAE and audio-VAE loaders (each reads only its part). Short on \
GPU memory? **offload = blocks** and/or **dtype = float8-storage** on *Load Model*, **gemma_device = cpu** on \
*Load Text Encoder*."""

STAGE2_AUDIO_NOTE = (
    "Stage 2 refines the stage-1 audio together with the video (*audio_mode = generate*, as ltx-pipelines 1.0.0 "
    "does). To keep the stage-1 sound instead, set *audio_mode = keep* on the stage-2 sampler (the video then "
    "follows that sound), or connect Audio Decode to the stage-1 sampler's *audio_latent* (ltx-pipelines 1.2)."
)


def _two_stage_loaders(upsampler: str) -> dict[str, Node]:
    loaders = _loaders(CHECKPOINT_23_DISTILLED)
    loaders["upsampler"] = Node("LTXUpsamplerLoader", 0, 5.2, {"upsampler_name": upsampler})
    return loaders


def _prompt(text_loader: Node, prompt: str) -> Node:
    """The positive prompt alone: distilled and stage-2 schedules run without guidance, so no negative prompt."""
    return Node("LTXTextEncode", 1, 0, {"text": prompt}, {"text_encoder": (text_loader, 0)}, title="Prompt")


# What an unguided schedule (distilled, stage2) runs, shown on its sampler so that the widgets say what is used.
UNGUIDED = {
    **{f"cfg_{s}": 1.0 for s in ("video", "audio")},
    **{f"stg_{s}": 0.0 for s in ("video", "audio")},
    **{f"modality_{s}": 1.0 for s in ("video", "audio")},
    **{f"rescale_{s}": 0.0 for s in ("video", "audio")},
}
FIXED_STEPS = {"distilled": 8, "stage2": 3}


def _stage_sampler(
    col: int, title: str, model: Node, positive: Node, video: tuple[Node, int], audio: tuple[Node, int], **widgets
) -> Node:
    if widgets.get("schedule") in FIXED_STEPS:
        widgets = {"steps": FIXED_STEPS[widgets["schedule"]], **UNGUIDED, **widgets}
    return Node(
        "LTXSampler",
        col,
        0,
        {"seed": 42, **widgets},
        {"model": (model, 0), "positive": (positive, 0), "video_latent": video, "audio_latent": audio},
        title=title,
        size=(400, 620),
    )


def two_stage(image: bool) -> Graph:
    """DistilledPipeline: half size with the 8 distilled sigmas -> spatial x2 -> full size with the 3 stage-2 sigmas
    (image conditions applied again at full size), no guidance in either stage."""
    loaders = _two_stage_loaders(SPATIAL_UPSAMPLER)
    positive = _prompt(loaders["text"], IMAGE_PROMPT if image else PROMPT)
    empty = Node(
        "LTXEmptyLatent",
        2,
        0,
        {"width": 384, "height": 256, "frames": 121, "frame_rate": 24.0},
        title="Stage 1 size: half the output's",
    )
    stage1_inputs = [empty]
    video1: tuple[Node, int] = (empty, 0)
    picture = cond1 = cond2 = None
    if image:
        picture = Node("LoadImage", 1, 1.8, {"image": EXAMPLE_IMAGE}, title="First frame")
        cond1 = Node(
            "LTXImageCondition",
            2,
            2.4,
            {"frame_index": 0, "strength": 1.0},
            {"vae": (loaders["vae"], 0), "image": (picture, 0), "video_latent": (empty, 0)},
            title="First frame (half size)",
        )
        stage1_inputs.append(cond1)
        video1 = (cond1, 0)
    stage1 = _stage_sampler(
        3, "Stage 1: 8 distilled steps", loaders["model"], positive, video1, (empty, 1), schedule="distilled"
    )
    upsample = Node(
        "LTXLatentUpsample",
        4,
        0,
        links={
            "video_latent": (stage1, 0),
            "upsampler": (loaders["upsampler"], 0),
            "vae": (loaders["vae"], 0),
            "audio_latent": (stage1, 1),
        },
        title="Latent upsample x2",
    )
    video2: tuple[Node, int] = (upsample, 0)
    if image:
        cond2 = Node(
            "LTXImageCondition",
            4,
            2.4,
            {"frame_index": 0, "strength": 1.0},
            {"vae": (loaders["vae"], 0), "image": (picture, 0), "video_latent": (upsample, 0)},
            title="First frame again (full size)",
        )
        video2 = (cond2, 0)
    stage2 = _stage_sampler(
        5,
        "Stage 2: 3 refinement steps",
        loaders["model"],
        positive,
        video2,
        (upsample, 1),
        schedule="stage2",
        audio_mode="generate",
    )
    prefix = "ltx_av_i2v_two_stage" if image else "ltx_av_t2v_two_stage"
    outs = _outputs(loaders, stage2, prefix, col=6)
    title = "Image to video" if image else "Text to video"
    first_frame = (
        "The loaded image becomes the first frame in both stages: the upsample drops the half-size condition, so "
        "*Image Condition* is applied again on the upsampled latent, at full size, as the official pipelines do.\n\n"
        if image
        else ""
    )
    note = _note(
        f"## {title} + audio in two stages (distilled)\nThe official *DistilledPipeline*: **stage 1** at half size "
        "(384x256) with the 8 distilled steps; **latent upsample x2** (the video VAE un-normalises the latent around "
        "the upsampler; the audio latent passes through); **stage 2** at full size (768x512, 121 frames, 24 fps): "
        "*schedule = stage2* re-noises the upsampled latent to sigma 0.909 and refines it in 3 steps. No guidance in "
        "either stage, so no negative prompt. For other sizes keep stage 1 at half the output's (output sides "
        "multiples of 64).\n\n"
        + first_frame
        + STAGE2_AUDIO_NOTE
        + "\n\n"
        + TWO_STAGE_MODELS_NOTE.format(upsampler=UPSAMPLER_NOTE.format(upsampler=SPATIAL_UPSAMPLER, kind="spatial x2"))
    )
    note.size, note.row = (1200, 420), -3.6  # wider and taller than the others: it says more; ends above the groups
    nodes = [note, *loaders.values(), positive]
    nodes += [picture] if picture else []
    nodes += [*stage1_inputs, stage1, upsample]
    nodes += [cond2] if cond2 else []
    nodes += [stage2, *outs]
    stage2_members = [upsample, stage2] + ([cond2] if cond2 else [])
    return Graph(
        "ltx-2.3_image-to-video_two-stage" if image else "ltx-2.3_text-to-video_two-stage",
        f"LTX-2.3 distilled, two stages: {'image' if image else 'text'} to video + audio",
        "",
        nodes,
        [
            ("Models", list(loaders.values())),
            ("Stage 1: half size", [*stage1_inputs, stage1]),
            ("Stage 2: upsample x2, refine at full size", stage2_members),
            ("Output", outs),
        ],
        TWO_STAGE_COLUMNS,
    )


def temporal_upsample() -> Graph:
    """Stage 1 at 24 fps -> temporal x2 (2F - 1 latent frames, 48 fps) -> stage-2 refinement -> 48 fps video."""
    loaders = _two_stage_loaders(TEMPORAL_UPSAMPLER)
    positive = _prompt(loaders["text"], PROMPT)
    empty = Node("LTXEmptyLatent", 2, 0, {"width": 768, "height": 512, "frames": 121, "frame_rate": 24.0})
    stage1 = _stage_sampler(
        3, "Stage 1: 8 distilled steps at 24 fps", loaders["model"], positive, (empty, 0), (empty, 1),
        schedule="distilled",
    )  # fmt: skip
    upsample = Node(
        "LTXLatentUpsample",
        4,
        0,
        links={
            "video_latent": (stage1, 0),
            "upsampler": (loaders["upsampler"], 0),
            "vae": (loaders["vae"], 0),
            "audio_latent": (stage1, 1),
        },
        title="Temporal upsample x2 (48 fps)",
    )
    stage2 = _stage_sampler(
        5,
        "Stage 2: 3 refinement steps at 48 fps",
        loaders["model"],
        positive,
        (upsample, 0),
        (upsample, 1),
        schedule="stage2",
        audio_mode="generate",
    )
    outs = _outputs(loaders, stage2, "ltx_av_temporal_x2", col=6, fps=48.0)
    outs[2].title = "Create Video (48 fps)"
    note = _note(
        "## Temporal upsample: 24 -> 48 fps\n**Stage 1** makes 121 frames at 24 fps (768x512, the 8 distilled "
        "steps); the **temporal x2 upsampler** turns its 16 latent frames into 31 (241 frames) and records 48 fps "
        "on both latents; **stage 2** (*schedule = stage2*) re-noises that to sigma 0.909 and refines it in 3 "
        "steps; the result is decoded and saved at **48 fps** (*fps* on Create Video: keep it twice stage 1's frame "
        "rate). Same length in seconds, twice the frames.\n\n"
        + STAGE2_AUDIO_NOTE
        + "\n\n"
        + TWO_STAGE_MODELS_NOTE.format(
            upsampler=UPSAMPLER_NOTE.format(upsampler=TEMPORAL_UPSAMPLER, kind="temporal x2")
        )
    )
    note.size, note.row = (1200, 420), -3.6  # wider and taller than the others: it says more; ends above the groups
    nodes = [note, *loaders.values(), positive, empty, stage1, upsample, stage2, *outs]
    return Graph(
        "ltx-2.3_temporal-upsample",
        "LTX-2.3 distilled: text to video + audio, temporal x2 to 48 fps",
        "",
        nodes,
        [
            ("Models", list(loaders.values())),
            ("Stage 1: 24 fps", [empty, stage1]),
            ("Stage 2: temporal x2, refine at 48 fps", [upsample, stage2]),
            ("Output", outs),
        ],
        TWO_STAGE_COLUMNS,
    )


# -- LoRAs ----------------------------------------------------------------------------------------------------------

LORA_NOTE = """\
**LoRAs**: *Load LoRA* adds a LoRA from `ComfyUI/models/loras` to the model wired into it and returns a new model; \
the one it was given is unchanged, so the same base can feed several LoRA chains. Each adapted weight becomes \
W + strength x B.A (official LTX files carry no alpha, so 1.0 is the LoRA as trained). Chain loaders to stack \
LoRAs: their changes add up, so the order does not matter. A LoRA made for another model (LTX-2 vs LTX-2.3, another \
family) is refused with the model it seems made for; the console says how many layers each one changes."""


def _lora(model: tuple[Node, int], name: str, strength: float, col: int, row: float, title: str) -> Node:
    return Node("LTXLoraLoader", col, row, {"lora_name": name, "strength": strength}, {"model": model}, title=title)


DEV_PROMPT_NOTE = (
    "Stage 1 runs the dev model with the official guidance (*settings = official* on its sampler; switch it to *as "
    "set above* to change steps or guidance)."
)


def two_stage_dev() -> Graph:
    """TI2VidTwoStagesPipeline: dev with guidance at half size -> spatial x2 -> dev + distilled LoRA (1.0) on the
    3 stage-2 sigmas without guidance."""
    loaders = _loaders(CHECKPOINT_23)
    loaders["upsampler"] = Node("LTXUpsamplerLoader", 0, 5.2, {"upsampler_name": SPATIAL_UPSAMPLER})
    distilled = _lora((loaders["model"], 0), DISTILLED_LORA_23, 1.0, 0, 6.4, "Distilled LoRA (stage 2)")
    positive, negative = _prompts(loaders["text"], PROMPT)
    empty = Node(
        "LTXEmptyLatent",
        2,
        0,
        {"width": 384, "height": 256, "frames": 121, "frame_rate": 24.0},
        title="Stage 1 size: half the output's",
    )
    stage1 = Node(
        "LTXSampler",
        3,
        0,
        {"seed": 42},
        {
            "model": (loaders["model"], 0),
            "positive": (positive, 0),
            "negative": (negative, 0),
            "video_latent": (empty, 0),
            "audio_latent": (empty, 1),
        },
        title="Stage 1: dev, guided",
        size=(400, 620),
    )
    upsample = Node(
        "LTXLatentUpsample",
        4,
        0,
        links={
            "video_latent": (stage1, 0),
            "upsampler": (loaders["upsampler"], 0),
            "vae": (loaders["vae"], 0),
            "audio_latent": (stage1, 1),
        },
        title="Latent upsample x2",
    )
    stage2 = _stage_sampler(
        5,
        "Stage 2: dev + distilled LoRA, 3 steps",
        distilled,
        positive,
        (upsample, 0),
        (upsample, 1),
        schedule="stage2",
        audio_mode="generate",
    )
    outs = _outputs(loaders, stage2, "ltx_av_t2v_two_stage_dev", col=6)
    note = _note(
        "## Text to video + audio in two stages (dev)\nThe official *TI2VidTwoStagesPipeline*: **stage 1** at half "
        "size (384x256) with the dev model, 30 guided steps; **latent upsample x2**; **stage 2** at full size "
        "(768x512, 121 frames, 24 fps) with the dev model **plus the distilled LoRA at strength 1.0** (the "
        "pipeline's default; the official ComfyUI examples use 0.5), re-noised to sigma 0.909 and refined in 3 "
        "unguided steps (*schedule = stage2*). "
        + DEV_PROMPT_NOTE
        + " The LoRA applies to stage 2 only: stage 1 takes the model before the LoRA.\n\n"
        + STAGE2_AUDIO_NOTE
        + "\n\n"
        + MODELS_NOTE.format(checkpoint=CHECKPOINT_23)
        + "\n"
        + UPSAMPLER_NOTE.format(upsampler=SPATIAL_UPSAMPLER, kind="spatial x2")
        + f"\n- `ComfyUI/models/loras/{DISTILLED_LORA_23}` — the distilled LoRA"
    )
    note.size, note.row = (1200, 460), -3.9
    models = [*loaders.values(), distilled]
    nodes = [note, *models, positive, negative, empty, stage1, upsample, stage2, *outs]
    return Graph(
        "ltx-2.3_text-to-video_two-stage_dev",
        "LTX-2.3 dev, two stages with the distilled LoRA: text to video + audio",
        "",
        nodes,
        [
            ("Models", models),
            ("Prompts", [positive, negative]),
            ("Stage 1: half size, guided", [empty, stage1]),
            ("Stage 2: upsample x2, refine with the distilled LoRA", [upsample, stage2]),
            ("Output", outs),
        ],
        TWO_STAGE_COLUMNS,
    )


DOLLY_PROMPT = (
    "The camera slowly dollies in toward an old lighthouse on a rocky coast at dusk, its beam sweeping over the sea. "
    "Waves crash against the rocks below, wind whistles, a distant foghorn sounds."
)


def lora_stack() -> Graph:
    """LTX-2 dev + camera dolly-in LoRA + distilled LoRA: the 8 distilled steps without guidance."""
    loaders = _loaders(CHECKPOINT_2)
    camera = _lora((loaders["model"], 0), CAMERA_LORA_2, 1.0, 1, 3.6, "LoRA 1: camera dolly-in")
    distilled = _lora((camera, 0), DISTILLED_LORA_2, 1.0, 1, 4.8, "LoRA 2: distilled (8 steps)")
    positive = _prompt(loaders["text"], DOLLY_PROMPT)
    empty = Node("LTXEmptyLatent", 2, 0, {"width": 768, "height": 512, "frames": 121, "frame_rate": 24.0})
    sampler = _stage_sampler(
        3, "Sampler: 8 distilled steps", distilled, positive, (empty, 0), (empty, 1), schedule="distilled"
    )
    outs = _outputs(loaders, sampler, "ltx_av_lora_stack")
    note = _note(
        "## A LoRA stack: LTX-2 dev + camera motion + distilled\nTwo LoRAs chained on the LTX-2 19B dev model: the "
        "official **camera dolly-in** LoRA moves the camera, the **distilled LoRA** lets the dev model run the 8 "
        "distilled steps without guidance (so no negative prompt). Swap in your own style or camera LoRAs, add "
        "more *Load LoRA* nodes to the chain, or set a strength to 0 to switch one off without rewiring.\n\n"
        + LORA_NOTE
        + "\n\n"
        + MODELS_NOTE.format(checkpoint=CHECKPOINT_2)
        + f"\n- `ComfyUI/models/loras/{CAMERA_LORA_2}` and `{DISTILLED_LORA_2}`"
    )
    note.size, note.row = (1100, 460), -3.9
    loras = [camera, distilled]
    nodes = [note, *loaders.values(), positive, *loras, empty, sampler, *outs]
    return Graph(
        "ltx-2_lora-stack",
        "LTX-2 dev with a LoRA stack (camera dolly-in + distilled): text to video + audio",
        "",
        nodes,
        [("Models", list(loaders.values())), ("Prompt and LoRAs", [positive, *loras]), ("Output", outs)],
    )


CONTROL_PROMPT = (
    "A watercolour painting come to life: a figure walks through a misty forest clearing, soft brush textures, "
    "muted greens and golds. Birds sing, leaves rustle underfoot."
)


def ic_lora_control() -> Graph:
    """ICLoraPipeline, stage 1: distilled checkpoint + union-control IC-LoRA, canny edges of a video as the
    reference (at half size, as the LoRA's metadata says), 8 distilled steps."""
    loaders = _loaders(CHECKPOINT_23_DISTILLED)
    ic = _lora((loaders["model"], 0), IC_LORA_23, 1.0, 0, 5.2, "IC-LoRA: union control")
    positive = _prompt(loaders["text"], CONTROL_PROMPT)
    video = Node("LoadVideo", 1, 1.8, {"file": EXAMPLE_VIDEO}, title="Control video: pick your own")
    components = Node("GetVideoComponents", 1, 4.3, links={"video": (video, 0)})
    edges = Node("Canny", 1, 5.3, {"low_threshold": 0.4, "high_threshold": 0.8}, {"image": (components, 0)})
    empty = Node("LTXEmptyLatent", 2, 0, {"width": 768, "height": 512, "frames": 121, "frame_rate": 24.0})
    reference = Node(
        "LTXReferenceCondition",
        2,
        2.4,
        {"strength": 1.0, "scale": 0},
        {"vae": (loaders["vae"], 0), "reference": (edges, 0), "video_latent": (empty, 0), "model": (ic, 0)},
        title="Reference: the edges",
    )
    sampler = _stage_sampler(
        3, "Sampler: 8 distilled steps", ic, positive, (reference, 0), (empty, 1), schedule="distilled"
    )
    outs = _outputs(loaders, sampler, "ltx_av_ic_lora_canny")
    note = _note(
        "## IC-LoRA control: a new video that follows another's edges\n**Pick your own clip in *Load Video* "
        "(Control video)**; its frames become Canny edge maps (core node), and *Reference Video* attaches them to the "
        "latent for the **union-control IC-LoRA** (canny, depth or pose: feed core's other preprocessors the same "
        "way). The reference is encoded at the size the IC-LoRA declares in its metadata (here half: `ref0.5`; "
        "connect the LoRA'd model to *model* so it is read), kept clean, and **cut from the sampler's output by "
        "itself**: no crop node, the decoded video never shows the control. Up to the video's 121 frames are used; "
        "the distilled checkpoint runs 8 steps without guidance, as the official IC-LoRA pipeline's first stage."
        "\n\n"
        + LORA_NOTE
        + "\n\n"
        + MODELS_NOTE.format(checkpoint=CHECKPOINT_23_DISTILLED)
        + f"\n- `ComfyUI/models/loras/{IC_LORA_23}` — the IC-LoRA"
    )
    note.size, note.row = (1100, 500), -4.2
    control = [video, components, edges]
    nodes = [note, *loaders.values(), ic, positive, *control, empty, reference, sampler, *outs]
    return Graph(
        "ltx-2.3_ic-lora_canny-control",
        "LTX-2.3 distilled + IC-LoRA: video + audio following a video's edges",
        "",
        nodes,
        [
            ("Models", [*loaders.values(), ic]),
            ("Prompt and control video", [positive, *control]),
            ("Latent + reference", [empty, reference]),
            ("Output", outs),
        ],
    )


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
)


def build() -> dict[str, bytes]:
    """Relative path -> file content for every workflow file."""
    files = {}
    for make in GRAPHS:
        graph = make()
        ui = json.dumps(to_ui(graph), indent=2).encode() + b"\n"
        api = json.dumps(to_api(make()), indent=2).encode() + b"\n"
        files[f"workflows/ui/{graph.name}.json"] = ui
        files[f"example_workflows/{graph.name}.json"] = ui
        files[f"workflows/api/{graph.name}.json"] = api
    return files


def main() -> None:
    for relative, content in build().items():
        path = os.path.join(ROOT, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
        print(f"wrote {relative}")  # noqa: T201 - a command-line tool


if __name__ == "__main__":
    main()
