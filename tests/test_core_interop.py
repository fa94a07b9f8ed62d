"""LTX-AV next to ComfyUI's own LTX-2 nodes (0.33: comfy_extras/nodes_lt.py, nodes_lt_audio.py), where users mix them:

* core latents into ours: EmptyLTXVLatentVideo (no frame rate recorded), LTXVEmptyLatentAudio (its own frame rate,
  25 by default: the sampler reads it from the audio latent's length), LTXVConcatAVLatent (one NestedTensor holding
  video + audio, and its noise mask) into LTX-AV Sampler / Video Decode / Audio Decode; LTXVSeparateAVLatent's
  parts (both carry the joint latent's "type", the audio's: the tensor's shape decides);
* ours into core's: the sampler's latents into core LTXVAudioVAEDecode and VAEDecode (with the audio and video VAE
  core loads from the same checkpoint), which decode what ours decode;
* a latent into the wrong kind of node is refused with a message naming the node to use instead.

Unit tests with a stand-in NestedTensor run anywhere; the real-host tests need LTX_AV_COMFY_DIR / LTX_AV_COMFY_PYTHON
(skipped without) and, for the LTX-2 core nodes, a host that has them (0.33; 0.3.64 has only EmptyLTXVLatentVideo)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys

import numpy as np
import pytest
import torch
from comfy_host import comfy_server, execution_error, get, needs_comfy, output_path, run_prompt

from ltx_av.ltx_core.errors import InputError
from ltx_av.nodes.audio import LTXAudioDecode, load_audio
from ltx_av.nodes.model import load_transformer
from ltx_av.nodes.sampling import LTXEmptyLatent, LTXSampler
from ltx_av.nodes.video import LTXVAEDecode, load_video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class NestedTensor:
    """What comfy.nested_tensor.NestedTensor offers the nodes (ComfyUI 0.33): the parts, unbind, shape of the first."""

    def __init__(self, tensors):
        self.tensors = list(tensors)
        self.is_nested = True

    def unbind(self):
        return self.tensors

    @property
    def shape(self):
        return self.tensors[0].shape

    @property
    def ndim(self):
        return max(t.ndim for t in self.tensors)


def concat_av(video: dict, audio: dict) -> dict:
    """Core LTXVConcatAVLatent: the two dicts merged (the audio's keys win), samples and masks nested."""
    out = {**video, **audio}
    masks = video.get("noise_mask"), audio.get("noise_mask")
    if any(m is not None for m in masks):
        out["noise_mask"] = NestedTensor(
            [
                masks[0] if masks[0] is not None else torch.ones_like(video["samples"]),
                masks[1] if masks[1] is not None else torch.ones_like(audio["samples"]),
            ]
        )
    out["samples"] = NestedTensor([video["samples"], audio["samples"]])
    return out


def separate_av(av: dict) -> tuple[dict, dict]:
    """Core LTXVSeparateAVLatent: both parts are copies of the joint dict with their own samples."""
    video, audio = dict(av), dict(av)
    video["samples"], audio["samples"] = av["samples"].unbind()
    if av.get("noise_mask") is not None:
        video["noise_mask"], audio["noise_mask"] = av["noise_mask"].unbind()
    return video, audio


def core_empty_video(width: int, height: int, length: int) -> dict:
    """Core EmptyLTXVLatentVideo: no frame rate, no type."""
    return {
        "samples": torch.zeros(1, 128, (length - 1) // 8 + 1, height // 32, width // 32),
        "downscale_ratio_spacial": 32,
    }


def core_empty_audio(frames: int, frame_rate: float) -> dict:
    """Core LTXVEmptyLatentAudio: round(frames / frame_rate * 25) latent frames, "type": "audio", no frame rate."""
    return {"samples": torch.zeros(1, 8, round(frames / frame_rate * 25), 16), "type": "audio"}


@pytest.fixture(scope="module")
def tiny(tiny_checkpoints):
    path = tiny_checkpoints["LTX-2.3"]
    model = load_transformer(path, device="cpu", offload_device="cpu")
    vae = load_video(path, device="cpu", offload_device="cpu")
    audio_vae = load_audio(path, device="cpu", offload_device="cpu")
    return model, vae, audio_vae


def _conditioning(model):
    c = model.config
    v1 = c.text_path_version == 1
    dv, da = (c.caption_channels, c.caption_channels) if v1 else (c.video_dim, c.audio_dim)
    g = torch.Generator().manual_seed(0)
    signature = {"variant": model.variant, "video_dim": dv, "audio_dim": da, "checkpoint": "tiny"}
    return [
        [
            torch.randn(1, 7, dv, generator=g),
            {"ltx_audio_context": torch.randn(1, 7, da, generator=g), "ltx_text_path": signature},
        ]
    ]


FAST = dict(seed=3, schedule="distilled", settings=False)


def test_core_empty_latents_sample_at_the_audio_latents_frame_rate(tiny):
    """EmptyLTXVLatentVideo records no frame rate; LTXVEmptyLatentAudio made for 25 fps says so by its length."""
    model, _, _ = tiny
    video, audio = core_empty_video(64, 64, 17), core_empty_audio(17, 25.0)
    # A handler on the node's own logger: the command line's tests (run before this one) reconfigure logging.
    messages: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("ltx_av.nodes.sampling")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        out_video, out_audio = LTXSampler().run(model, _conditioning(model), video, audio_latent=audio, **FAST)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert out_video["frame_rate"] == 25.0 and out_audio["frame_rate"] == 25.0
    assert any("at 25 fps" in m for m in messages), messages
    assert out_video["samples"].shape == video["samples"].shape and out_audio["samples"].shape == audio["samples"].shape
    # at 24 fps (what our latents say, or what a core audio latent at 24 fps fits) nothing is guessed
    out_video, _ = LTXSampler().run(model, _conditioning(model), video, audio_latent=core_empty_audio(17, 24.0), **FAST)
    assert out_video["frame_rate"] == 24.0


def test_an_audio_latent_that_fits_no_frame_rate_is_refused_naming_the_nodes(tiny):
    model, _, _ = tiny
    with pytest.raises(InputError, match="audio_latent has 40 latent frames .*LTXVEmptyLatentAudio: frames_number=17"):
        LTXSampler().run(
            model, _conditioning(model), core_empty_video(64, 64, 17), audio_latent=core_empty_audio(40, 25.0), **FAST
        )


def test_core_av_latent_with_its_nested_noise_mask_samples_both_streams(tiny):
    """LTXVConcatAVLatent into video_latent alone: video and audio both come back, plain; its nested noise mask
    (audio all zeros: keep) is split between the streams."""
    model, _, _ = tiny
    video, audio = LTXEmptyLatent().make(64, 64, 17, 24.0)
    audio = {
        **audio,
        "samples": torch.randn(audio["samples"].shape),
        "noise_mask": torch.zeros(1, 1, audio["samples"].shape[2], 1),
    }
    av = concat_av(video, audio)
    out_video, out_audio = LTXSampler().run(model, _conditioning(model), av, **FAST)
    assert (
        not getattr(out_video["samples"], "is_nested", False) and out_video["samples"].shape == video["samples"].shape
    )
    assert "noise_mask" not in out_video
    torch.testing.assert_close(out_audio["samples"], audio["samples"])  # the mask kept the audio


def test_our_decoders_take_core_av_latents_and_separated_parts(tiny):
    model, vae, audio_vae = tiny
    g = torch.Generator().manual_seed(1)
    video = {"samples": torch.randn(1, 128, 2, 2, 2, generator=g), "type": "video", "frame_rate": 24.0}
    audio = {"samples": torch.randn(1, 8, 9, 16, generator=g), "type": "audio", "frame_rate": 24.0}
    (frames,) = LTXVAEDecode().decode(vae, video)
    (sound,) = LTXAudioDecode().decode(audio_vae, audio)
    av = concat_av(video, audio)
    assert torch.equal(LTXVAEDecode().decode(vae, av)[0], frames)
    assert torch.equal(LTXAudioDecode().decode(audio_vae, av)[0]["waveform"], sound["waveform"])
    video_part, audio_part = separate_av(av)
    assert video_part["type"] == "audio"  # what core's separate node hands on: the shape decides, not the type
    assert torch.equal(LTXVAEDecode().decode(vae, video_part)[0], frames)
    assert torch.equal(LTXAudioDecode().decode(audio_vae, audio_part)[0]["waveform"], sound["waveform"])
    # a core empty video latent (no type, no frame rate) decodes too
    assert LTXVAEDecode().decode(vae, core_empty_video(64, 64, 9))[0].shape == (9, 64, 64, 3)


@pytest.mark.parametrize(
    "where,latent,message",
    [
        ("video decode", core_empty_audio(9, 24.0), "is an audio latent .*Audio Decode"),
        ("audio decode", core_empty_video(64, 64, 9), "is a video latent .*Video Decode"),
        ("sampler video", core_empty_audio(9, 24.0), "video_latent is an audio latent .*EmptyLTXVLatentVideo"),
        ("sampler audio", core_empty_video(64, 64, 9), "audio_latent is a video latent .*LTXVEmptyLatentAudio"),
    ],
)
def test_a_latent_of_the_other_kind_is_refused_naming_the_node_to_use(tiny, where, latent, message):
    model, vae, audio_vae = tiny
    with pytest.raises(InputError, match=message):
        if where == "video decode":
            LTXVAEDecode().decode(vae, latent)
        elif where == "audio decode":
            LTXAudioDecode().decode(audio_vae, latent)
        elif where == "sampler video":
            LTXSampler().run(model, _conditioning(model), latent, **FAST)
        else:
            LTXSampler().run(model, _conditioning(model), core_empty_video(64, 64, 9), audio_latent=latent, **FAST)


# -- the real host ---------------------------------------------------------------------------------------------------


def _load_build():
    spec = importlib.util.spec_from_file_location("ltx_av_workflow_build", os.path.join(ROOT, "workflows", "build.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _load_build()
CKPT = build.CHECKPOINT_23_DISTILLED
VAE_FILE = "ltx-2.3-tiny-video-vae.safetensors"


def _write_core_vae(base) -> None:
    """The checkpoint's video VAE as a file of its own in models/vae (what core's VAELoader reads), with the
    checkpoint's metadata (its config)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(base / "models" / "checkpoints" / CKPT), "pt") as f:
        tensors = {k[len("vae.") :]: f.get_tensor(k) for k in f.keys() if k.startswith("vae.")}
        metadata = f.metadata()
    (base / "models" / "vae").mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(base / "models" / "vae" / VAE_FILE), metadata=metadata)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    base = tmp_path_factory.mktemp("interop")
    from comfy_host import write_models

    write_models(base / "models")
    _write_core_vae(base)
    with comfy_server(base) as url:
        yield url, base, get(f"{url}/object_info")


def _needs(info: dict, *nodes: str) -> None:
    missing = [n for n in nodes if n not in info]
    if missing:
        pytest.skip(f"this host has no {', '.join(missing)} (ComfyUI 0.33 has)")


def _ours() -> dict:
    """Our half of the graphs: loaders, a prompt, the distilled sampler (latents linked by each test), decoders
    saving frames as PNG and sound as FLAC (lossless, to compare)."""
    return {
        "1": {"class_type": "LTXModelLoader", "inputs": {"model_name": CKPT, "dtype": "auto", "offload": "none", "cross_modal_timesteps": "cross_sigma"}},
        "2": {"class_type": "LTXTextEncoderLoader", "inputs": {"gemma": build.GEMMA, "ckpt_name": CKPT, "tokenizer": "auto", "gemma_device": "default", "dtype": "bfloat16"}},
        "3": {"class_type": "LTXTextEncode", "inputs": {"text_encoder": ["2", 0], "text": "waves on a beach", "after_encoding": "offload to CPU"}},
        "4": {"class_type": "LTXLoadVideoVAE", "inputs": {"vae_name": f"checkpoints/{CKPT}", "dtype": "auto"}},
        "5": {"class_type": "LTXAudioVAELoader", "inputs": {"ckpt_name": CKPT, "dtype": "auto"}},
        "6": {"class_type": "LTXSampler", "inputs": {"model": ["1", 0], "positive": ["3", 0], "seed": 1, "schedule": "distilled", "steps": 8, "settings": True}},
    }  # fmt: skip


def _fill_defaults(prompt: dict, info: dict) -> dict:
    """Every widget a node declares that the prompt leaves out, at its default (the API needs them all)."""
    for node in prompt.values():
        spec = info[node["class_type"]]["input"]
        for section in ("required", "optional"):
            for name, entry in spec.get(section, {}).items():
                if name in node["inputs"] or not isinstance(entry, list) or len(entry) < 2:
                    continue
                kind, options = entry[0], entry[1] if isinstance(entry[1], dict) else {}
                if "default" in options:
                    node["inputs"][name] = options["default"]
                elif isinstance(kind, list) and kind and section == "required":
                    node["inputs"][name] = kind[0]
    return prompt


def _run(host, prompt: dict) -> dict:
    url, _, info = host
    entry = run_prompt(url, _fill_defaults(prompt, info))
    assert "rejected" not in entry, json.dumps(entry)[-3000:]
    return entry


def _why(entry: dict) -> str:
    error = execution_error(entry) or {}
    return f"{error.get('node_type')}: {error.get('exception_message')}\n{''.join(error.get('traceback', [])[-6:])}"


def _frames(base, entry: dict, node: str) -> np.ndarray:
    from PIL import Image

    items = entry["outputs"][node]["images"]
    return np.stack([np.asarray(Image.open(output_path(base, item))) for item in items]).astype(np.float32) / 255


def _sound(base, entry: dict, node: str) -> np.ndarray:
    import av

    (item,) = entry["outputs"][node]["audio"]
    with av.open(str(output_path(base, item))) as container:
        samples = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=-1)
    return samples / 32768.0 if samples.dtype == np.int16 else samples  # FLAC of 16-bit samples


@needs_comfy
def test_core_empty_video_latent_into_our_sampler(host):
    """Present in every host (0.3.64 too): core's empty LTXV latent is ours by shape."""
    url, base, info = host
    prompt = _ours()
    prompt["10"] = {
        "class_type": "EmptyLTXVLatentVideo",
        "inputs": {"width": 64, "height": 64, "length": 9, "batch_size": 1},
    }
    prompt["6"]["inputs"]["video_latent"] = ["10", 0]
    prompt["11"] = {"class_type": "LTXVAEDecode", "inputs": {"vae": ["4", 0], "samples": ["6", 0]}}
    prompt["12"] = {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "interop/core_empty"}}
    entry = _run(host, prompt)
    assert entry["status"]["status_str"] == "success", _why(entry)
    assert _frames(base, entry, "12").shape == (9, 64, 64, 3)


@needs_comfy
def test_core_latents_in_ours_and_ours_in_cores(host):
    """One prompt: core's empty video + audio latents (25 fps), joined by LTXVConcatAVLatent, into our sampler; its
    latents decoded by ours and by core's LTXVAudioVAEDecode / VAEDecode (core loading the same checkpoint's VAEs),
    and by ours again after a core concat and separate. Ours and core's decode the same pictures and sound."""
    url, base, info = host
    _needs(
        info,
        "LTXVEmptyLatentAudio",
        "LTXVConcatAVLatent",
        "LTXVSeparateAVLatent",
        "LTXVAudioVAEDecode",
        "LTXVAudioVAELoader",
    )
    prompt = _ours()
    prompt.update({
        "10": {"class_type": "EmptyLTXVLatentVideo", "inputs": {"width": 64, "height": 64, "length": 17, "batch_size": 1}},
        "11": {"class_type": "LTXVAudioVAELoader", "inputs": {"ckpt_name": CKPT}},
        "12": {"class_type": "LTXVEmptyLatentAudio", "inputs": {"frames_number": 17, "frame_rate": 25, "batch_size": 1, "audio_vae": ["11", 0]}},
        "13": {"class_type": "LTXVConcatAVLatent", "inputs": {"video_latent": ["10", 0], "audio_latent": ["12", 0]}},
        # ours decode ours
        "20": {"class_type": "LTXVAEDecode", "inputs": {"vae": ["4", 0], "samples": ["6", 0]}},
        "21": {"class_type": "SaveImage", "inputs": {"images": ["20", 0], "filename_prefix": "interop/ours"}},
        "22": {"class_type": "LTXAudioDecode", "inputs": {"audio_vae": ["5", 0], "samples": ["6", 1]}},
        "23": {"class_type": "PreviewAudio", "inputs": {"audio": ["22", 0]}},
        # core's decode ours
        "30": {"class_type": "VAELoader", "inputs": {"vae_name": VAE_FILE}},
        "31": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["30", 0]}},
        "32": {"class_type": "SaveImage", "inputs": {"images": ["31", 0], "filename_prefix": "interop/core"}},
        "33": {"class_type": "LTXVAudioVAEDecode", "inputs": {"samples": ["6", 1], "audio_vae": ["11", 0]}},
        "34": {"class_type": "PreviewAudio", "inputs": {"audio": ["33", 0]}},
        # ours decode core's concat of ours, and the parts core's separate node makes of it
        "40": {"class_type": "LTXVConcatAVLatent", "inputs": {"video_latent": ["6", 0], "audio_latent": ["6", 1]}},
        "41": {"class_type": "LTXVAEDecode", "inputs": {"vae": ["4", 0], "samples": ["40", 0]}},
        "42": {"class_type": "SaveImage", "inputs": {"images": ["41", 0], "filename_prefix": "interop/nested"}},
        "43": {"class_type": "LTXVSeparateAVLatent", "inputs": {"av_latent": ["40", 0]}},
        "44": {"class_type": "LTXVAEDecode", "inputs": {"vae": ["4", 0], "samples": ["43", 0]}},
        "45": {"class_type": "SaveImage", "inputs": {"images": ["44", 0], "filename_prefix": "interop/separated"}},
        "46": {"class_type": "LTXAudioDecode", "inputs": {"audio_vae": ["5", 0], "samples": ["43", 1]}},
        "47": {"class_type": "PreviewAudio", "inputs": {"audio": ["46", 0]}},
    })  # fmt: skip
    prompt["6"]["inputs"]["video_latent"] = ["13", 0]  # the AV latent alone: both streams come from it
    entry = _run(host, prompt)
    assert entry["status"]["status_str"] == "success", _why(entry)
    assert "fit 17 video frames at 25 fps" in (base / "server.log").read_text()
    ours, core = _frames(base, entry, "21"), _frames(base, entry, "32")
    assert ours.shape == core.shape == (17, 64, 64, 3)
    assert np.abs(ours - core).mean() < 2 / 255, np.abs(ours - core).mean()  # two implementations, one decoder
    assert np.array_equal(_frames(base, entry, "42"), ours) and np.array_equal(_frames(base, entry, "45"), ours)
    ours_sound, core_sound, separated = _sound(base, entry, "23"), _sound(base, entry, "34"), _sound(base, entry, "47")
    assert np.array_equal(separated, ours_sound)
    n = min(ours_sound.shape[-1], core_sound.shape[-1])
    assert abs(ours_sound.shape[-1] - core_sound.shape[-1]) <= 0.01 * n
    assert np.abs(ours_sound[..., :n] - core_sound[..., :n]).max() < 0.02


@needs_comfy
@pytest.mark.parametrize("wrong", ["audio into Video Decode", "video into Audio Decode"])
def test_a_core_latent_of_the_other_kind_is_refused_naming_the_node_to_use(host, wrong):
    url, base, info = host
    _needs(info, "LTXVEmptyLatentAudio", "LTXVAudioVAELoader")
    prompt = _ours()
    del prompt["6"]
    prompt.update({
        "10": {"class_type": "EmptyLTXVLatentVideo", "inputs": {"width": 64, "height": 64, "length": 9, "batch_size": 1}},
        "11": {"class_type": "LTXVAudioVAELoader", "inputs": {"ckpt_name": CKPT}},
        "12": {"class_type": "LTXVEmptyLatentAudio", "inputs": {"frames_number": 9, "frame_rate": 24, "batch_size": 1, "audio_vae": ["11", 0]}},
    })  # fmt: skip
    if wrong.startswith("audio"):
        prompt["20"] = {"class_type": "LTXVAEDecode", "inputs": {"vae": ["4", 0], "samples": ["12", 0]}}
        prompt["21"] = {"class_type": "SaveImage", "inputs": {"images": ["20", 0], "filename_prefix": "interop/wrong"}}
        message = "LTXVAEDecode: samples is an audio latent"
        use = "Audio Decode"
    else:
        prompt["20"] = {"class_type": "LTXAudioDecode", "inputs": {"audio_vae": ["5", 0], "samples": ["10", 0]}}
        prompt["21"] = {"class_type": "PreviewAudio", "inputs": {"audio": ["20", 0]}}
        message = "LTXAudioDecode: samples is a video latent"
        use = "Video Decode"
    entry = _run(host, prompt)
    error = execution_error(entry)
    assert error and message in error["exception_message"] and use in error["exception_message"], error
    assert error["exception_type"].endswith("InputError")
