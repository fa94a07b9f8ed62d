"""Hostile files and names: damaged or hand-made safetensors headers, configs that do not describe their file,
latent files from anywhere, symbolic-link loops in model folders, broken Gemma configs and GGUF headers.

Every case must end in the pack's own error (an LTXError) that names the file or input, within a bounded time,
leaving the inputs as they were and no file or folder behind. The files are a few hundred bytes, written here.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import sys
import time
import types

import pytest
import torch
from safetensors.torch import save_file

from ltx_av.ltx_core import CheckpointError, InputError, open_checkpoint
from ltx_av.ltx_core import latent_file as latent_format
from ltx_av.ltx_core.audio_vae import AudioVAE
from ltx_av.ltx_core.checkpoint import SafetensorsFile, build_component
from ltx_av.ltx_core.errors import LTXError, TooLargeError
from ltx_av.ltx_core.gemma import inspect_gemma, read_gguf_metadata
from ltx_av.ltx_core.text_encoder import TextPath
from ltx_av.ltx_core.tiny import tiny_config
from ltx_av.ltx_core.transformer import AudioVideoTransformer
from ltx_av.ltx_core.video_vae import VideoVAE
from ltx_av.ltx_core.vocoder import build_vocoder
from ltx_av.nodes import host, latent_files
from ltx_av.nodes.latent_files import LTXLoadLatent, LTXSaveLatent
from ltx_av.nodes.text import _resolve, _walk_text_encoders

LIMIT_S = 2.0


def _tree(folder) -> dict[str, tuple[int, int] | None]:
    """Everything under ``folder``: relative path -> (size, mtime) for files, None for folders."""
    found: dict[str, tuple[int, int] | None] = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            found[os.path.relpath(os.path.join(root, d), folder)] = None
        for f in files:
            st = os.lstat(os.path.join(root, f))
            found[os.path.relpath(os.path.join(root, f), folder)] = (st.st_size, st.st_mtime_ns)
    return found


def refused(error: type[LTXError], pattern: str, call, *, folder=None) -> LTXError:
    """``call()`` raises ``error`` (one of ours) matching ``pattern``, fast, and changes nothing under ``folder``."""
    before = _tree(folder) if folder is not None else None
    start = time.perf_counter()
    with pytest.raises(error, match=pattern) as info:
        call()
    elapsed = time.perf_counter() - start
    assert isinstance(info.value, LTXError), type(info.value)
    assert elapsed < LIMIT_S, f"took {elapsed:.2f} s"
    if folder is not None:
        assert _tree(folder) == before
    return info.value


# -- hand-packed safetensors headers -----------------------------------------------------------------------------------


def _packed(path, header, data: bytes = b"") -> str:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)
    return str(path)


_GOOD = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}

MALFORMED_HEADERS = {
    "dtype is a list": ({"w": {**_GOOD, "dtype": ["F32"]}}, "tensor 'w' has dtype \\['F32'\\], which is not a dtype"),
    "dtype is unknown": ({"w": {**_GOOD, "dtype": "Q4_K"}}, "tensor 'w' has dtype Q4_K, which LTX-AV cannot read"),
    "shape is a string": ({"w": {**_GOOD, "shape": "2"}}, "tensor 'w' has shape '2'; a shape is a list of sizes"),
    "shape is negative": ({"w": {**_GOOD, "shape": [-2]}}, "tensor 'w' has shape \\[-2\\]"),
    "shape holds a float": ({"w": {**_GOOD, "shape": [2.0]}}, "tensor 'w' has shape \\[2.0\\]"),
    "shape holds a bool": ({"w": {**_GOOD, "shape": [True, 2]}}, "tensor 'w' has shape \\[True, 2\\]"),
    "offsets of the wrong length": ({"w": {**_GOOD, "data_offsets": [0]}}, "data_offsets \\[0\\]; expected \\[begin"),
    "offsets reversed": ({"w": {**_GOOD, "data_offsets": [8, 0]}}, "spans bytes 8..0, which is not its size"),
    "offsets do not fit the shape": ({"w": {**_GOOD, "data_offsets": [0, 4]}}, "spans bytes 0..4"),
    "entry is a number": ({"w": 5}, "the entry of tensor 'w' is a JSON int, not an object"),
    "entry lacks its dtype": ({"w": {"shape": [2], "data_offsets": [0, 8]}}, "the entry of tensor 'w' lacks dtype"),
    "header is a list": ([1, 2], "a JSON list where the format has an object"),
    "metadata is a list": ({"__metadata__": ["a"], "w": _GOOD}, "'__metadata__' is a JSON list"),
    "metadata holds a number": ({"__metadata__": {"config": 5}, "w": _GOOD}, "entry 'config' is a JSON int"),
    "overlapping tensors": (
        {"a": _GOOD, "b": {**_GOOD, "data_offsets": [4, 12]}},
        "tensors 'a' and 'b' claim the same bytes",
    ),
    "header nested too deeply": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "header not UTF-8": (b'{"w\xff": 1}', "corrupt safetensors header"),
    "integer of 5000 digits": (b'{"w": {"dtype": "F32", "shape": [1' + b"0" * 5000 + b"]}}", "corrupt safetensors"),
}


@pytest.mark.parametrize("case", list(MALFORMED_HEADERS))
def test_malformed_headers_are_the_packs_file_error_naming_the_file(case, tmp_path):
    header, pattern = MALFORMED_HEADERS[case]
    path = _packed(tmp_path / "bad.safetensors", header, b"\0" * 16)
    before = open(path, "rb").read()
    error = refused(CheckpointError, pattern, lambda: SafetensorsFile(path), folder=tmp_path)
    assert "'bad.safetensors'" in str(error)
    refused(CheckpointError, "bad.safetensors", lambda: open_checkpoint(path), folder=tmp_path)
    assert open(path, "rb").read() == before


def test_metadata_config_that_is_not_an_object_or_too_long_names_the_file(tmp_path):
    tensors = {"vae.decoder.conv_in.conv.weight": torch.zeros(1)}
    cases = {
        "number": ("5", "'number.safetensors': metadata 'config' should be a JSON object, found int"),
        "digits": ('{"vae": 1' + "0" * 5000 + "}", "'digits.safetensors': metadata 'config' is not valid JSON"),
        "deep": ("[" * 100_000 + "]" * 100_000, "'deep.safetensors': metadata 'config' is not valid JSON \\(nested"),
        "long": (json.dumps({"vae": {"pad": "x" * 2**21}}), "'long.safetensors': metadata 'config' is 2,097,"),
    }
    for name, (config, pattern) in cases.items():
        path = str(tmp_path / f"{name}.safetensors")
        save_file(tensors, path, metadata={"config": config})
        refused(CheckpointError, pattern, lambda path=path: open_checkpoint(path), folder=tmp_path)


def test_a_folder_given_as_a_checkpoint_is_called_a_folder(tmp_path):
    folder = tmp_path / "ltx-2.3-22b-dev.safetensors"
    folder.mkdir()
    error = refused(
        CheckpointError,
        "is a folder; expected the official LTX-2 / LTX-2.3 single-file",
        lambda: open_checkpoint(folder),
    )
    assert "does not exist" not in str(error) and "ltx-2.3-22b-dev.safetensors" in str(error)
    refused(CheckpointError, "is a folder, not a .safetensors file", lambda: SafetensorsFile(str(folder)))
    refused(InputError, "must be given as a file path; got a NoneType", lambda: open_checkpoint(None))


# -- configs against the file's tensors --------------------------------------------------------------------------------

_TRANSFORMER_KEYS = [
    "model.diffusion_model.audio_patchify_proj.weight",
    "model.diffusion_model.transformer_blocks.0.attn1.to_q.weight",
    "model.diffusion_model.transformer_blocks.1.attn1.to_q.weight",
]
_VAE_KEYS = (
    ["vae.decoder.conv_in.conv.weight"]
    + [f"vae.encoder.down_blocks.{i}.w" for i in range(9)]
    + [f"vae.decoder.up_blocks.{i}.w" for i in range(7)]
)
_AUDIO_KEYS = [f"audio_vae.encoder.down.{i}.w" for i in range(3)] + [f"audio_vae.decoder.up.{i}.w" for i in range(3)]
_VOCODER_KEYS = (
    ["vocoder.conv_pre.weight"]
    + [f"vocoder.ups.{i}.w" for i in range(5)]
    + [f"vocoder.resblocks.{i}.w" for i in range(15)]
)


def _config_file(tmp_path, keys, edit=None, raw: str | None = None, shapes=None) -> str:
    config = tiny_config("LTX-2")
    if edit is not None:
        edit(config)
    path = str(tmp_path / "edited.safetensors")
    tensors = {k: torch.zeros((shapes or {}).get(k, (1,))) for k in keys}
    save_file(tensors, path, metadata={"config": raw if raw is not None else json.dumps(config)})
    return path


def _set(section: str, key: str, value):
    def edit(config):
        config[section][key] = value

    return edit


CONFIG_CASES = {
    "num_layers 10**9": (
        _TRANSFORMER_KEYS,
        _set("transformer", "num_layers", 10**9),
        "transformer",
        AudioVideoTransformer,
        "config key 'transformer.num_layers' says 1,000,000,000 but the file holds 2 numbered 'transformer_blocks.N'",
    ),
    "num_layers 1e300": (
        _TRANSFORMER_KEYS,
        _set("transformer", "num_layers", 1e300),
        "transformer",
        AudioVideoTransformer,
        "'transformer.num_layers' is 1e\\+300; expected an integer from 1 to 2147483647",
    ),
    "num_layers a string": (
        _TRANSFORMER_KEYS,
        _set("transformer", "num_layers", "48"),
        "transformer",
        AudioVideoTransformer,
        "'transformer.num_layers' is '48'; expected an integer",
    ),
    "a width beyond any network": (
        _TRANSFORMER_KEYS,
        _set("transformer", "attention_head_dim", 2**31 - 1),
        "transformer",
        AudioVideoTransformer,
        "cannot build the transformer its config describes",
    ),
    "connector layers 10**9": (
        [*_TRANSFORMER_KEYS, "model.diffusion_model.video_embeddings_connector.transformer_1d_blocks.0.w"],
        _set("transformer", "connector_num_layers", 10**9),
        "text_encoder",
        TextPath,
        "'transformer.connector_num_layers' says 1,000,000,000 but the file holds 1",
    ),
    "VAE block with 10**9 layers": (
        _VAE_KEYS,
        lambda c: c["vae"]["encoder_blocks"][0][1].update(num_layers=10**9),
        "video_vae",
        VideoVAE,
        "the video VAE its config describes has more than 290 tensors, but the file stores 17",
    ),
    "VAE block layers infinite": (
        _VAE_KEYS,
        lambda c: c["vae"]["encoder_blocks"][0][1].update(num_layers=float("inf")),
        "video_vae",
        VideoVAE,
        "'vae.encoder_blocks\\[0\\].num_layers' is inf; expected an integer",
    ),
    "VAE with 10 extra blocks": (
        _VAE_KEYS,
        lambda c: c["vae"]["decoder_blocks"].extend([["res_x", {"num_layers": 1}]] * 10),
        "video_vae",
        VideoVAE,
        "'vae.decoder_blocks \\(entries\\)' says 17 but the file holds 7 numbered 'decoder.up_blocks.N'",
    ),
    "VAE block list of 10**4": (
        _VAE_KEYS,
        lambda c: c["vae"].update(encoder_blocks=[["res_x", 1]] * 10**4),
        "video_vae",
        VideoVAE,
        "'vae.encoder_blocks' lists 10,000 entries; expected at most 1024",
    ),
    "audio VAE with 10**6 residual blocks": (
        _AUDIO_KEYS,
        lambda c: c["audio_vae"]["model"]["params"]["ddconfig"].update(num_res_blocks=10**6),
        "audio_vae",
        AudioVAE,
        "the audio VAE its config describes has more than 268 tensors, but the file stores 6",
    ),
    "audio VAE with extra levels": (
        _AUDIO_KEYS,
        lambda c: c["audio_vae"]["model"]["params"]["ddconfig"].update(ch_mult=[1, 1, 2, 2], ch=64),
        "audio_vae",
        AudioVAE,
        "ch_mult \\(entries\\)' says 4 but the file holds 3",
    ),
    "vocoder with 10**4 stages": (
        _VOCODER_KEYS,
        lambda c: c["vocoder"].update(upsample_rates=[2] * 10**4, upsample_kernel_sizes=[4] * 10**4),
        "vocoder",
        build_vocoder,
        "'vocoder.upsample_rates' lists 10,000 entries",
    ),
    "vocoder dilations of NaN": (
        _VOCODER_KEYS,
        _set("vocoder", "resblock_dilation_sizes", [[1, float("nan")]] * 3),
        "vocoder",
        build_vocoder,
        "'vocoder.resblock_dilation_sizes' is .*; expected a list of lists of integers",
    ),
    "vocoder with one stage more": (
        _VOCODER_KEYS,
        lambda c: c["vocoder"].update(upsample_rates=[6, 5, 2, 2, 2, 2], upsample_kernel_sizes=[16, 15, 8, 4, 4, 4]),
        "vocoder",
        build_vocoder,
        "'vocoder.upsample_rates \\(entries\\)' says 6 but the file holds 5 numbered 'ups.N'",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_config_that_does_not_describe_its_file_is_refused_before_building(case, tmp_path):
    keys, edit, component, factory, pattern = CONFIG_CASES[case]
    shapes = {k: (4, 4) for k in keys if "embeddings_connector" in k}
    path = _config_file(tmp_path, keys, edit, shapes=shapes)
    error = refused(CheckpointError, pattern, lambda: build_component(path, component, factory), folder=tmp_path)
    assert "'edited.safetensors'" in str(error)


@pytest.mark.parametrize("raw", ["Infinity", "NaN", "-Infinity", "1e999"])
def test_non_finite_config_numbers_are_config_errors(raw, tmp_path):
    text = '{"transformer": {"num_layers": ' + raw + ', "caption_channels": 32}}'
    path = _config_file(tmp_path, _TRANSFORMER_KEYS, raw=text)
    refused(
        CheckpointError,
        "'edited.safetensors' \\(LTX-2\\): config key 'transformer.num_layers' is .*; expected an integer",
        lambda: build_component(path, "transformer", AudioVideoTransformer),
    )


def test_a_text_projection_that_is_not_a_matrix_is_refused(tmp_path):
    path = _config_file(tmp_path, [*_TRANSFORMER_KEYS, "text_embedding_projection.aggregate_embed.weight"])
    refused(
        CheckpointError,
        "'edited.safetensors' .*the text projection weight has shape \\[1\\]",
        lambda: open_checkpoint(path).component_config("text_encoder"),
    )


# -- latent files ------------------------------------------------------------------------------------------------------


@pytest.fixture
def output(tmp_path, monkeypatch):
    monkeypatch.setenv("LTX_AV_OUTPUT_DIR", str(tmp_path / "output"))
    return tmp_path / "output"


def _latents():
    video = {"samples": torch.randn(1, 128, 2, 2, 3), "frame_rate": 25.0, "ltx_conditions": [{"index": 0}]}
    audio = {"samples": torch.randn(1, 8, 5, 16), "type": "audio"}
    return video, audio


def _copy(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


BAD_PREFIXES = {
    "": "filename_prefix is empty",
    "   ": "filename_prefix is empty",
    "/tmp/evil": "is an absolute path",
    "../escape": "contains '..', which points outside the output folder",
    "run/../../escape": "contains '..'",
    "a\0b": "contains the control character '\\\\x00'",
    "a\nb": "contains the control character '\\\\n'",
    "x" * 300: "has a part of 300 bytes",
    "run/" + "y" * 220: "has a file name part of 220 bytes; at most 200",
    "z/" * 600: "bytes long; at most 1024",
    "run/": "ends with a folder",
    "half \ud83d emoji": "not valid Unicode text",
    None: "must be a string of text; got nothing",
    5: "must be a string of text; got 5",
}


@pytest.mark.parametrize("prefix", list(BAD_PREFIXES), ids=lambda p: repr(p)[:20])
def test_bad_filename_prefixes_are_refused_before_any_folder_is_made(prefix, output, tmp_path):
    video, audio = _latents()
    kept = _copy((video, audio))
    refused(
        InputError,
        "LTXSaveLatent: filename_prefix( .*)? " + BAD_PREFIXES[prefix].replace("filename_prefix ", ""),
        lambda: LTXSaveLatent().save(video, prefix, audio),
        folder=tmp_path,
    )
    assert not output.exists() and _same((video, audio), kept)


@pytest.mark.parametrize(
    "bad",
    ["a set", "an object", "a complex tensor", "a non-text key", "a dict inside itself"],
)
def test_latents_that_cannot_be_stored_are_refused_before_any_folder_is_made(bad, output, tmp_path):
    video, audio = _latents()
    loop: dict = {}
    loop["self"] = loop
    extra = {
        "a set": ("ids", {1, 2}),
        "an object": ("model", object()),
        "a complex tensor": ("phase", torch.zeros(2, dtype=torch.complex64)),
        "a non-text key": ("by_frame", {3: "x"}),
        "a dict inside itself": ("loop", loop),
    }[bad]
    video[extra[0]] = extra[1]
    patterns = {
        "a set": "video_latent\\['ids'\\] holds a set",
        "an object": "video_latent\\['model'\\] holds a object",
        "a complex tensor": "video_latent\\['phase'\\] is a torch.complex64 tensor",
        "a non-text key": "video_latent\\['by_frame'\\] has a key 3 that is not text",
        "a dict inside itself": r"video_latent\['loop'\]\['self'\].*\.\.\. is nested more than 32 levels",
    }
    refused(
        InputError,
        "LTXSaveLatent: " + patterns[bad],
        lambda: LTXSaveLatent().save(video, "run/a", audio),
        folder=tmp_path,
    )
    assert not output.exists()


def test_tensors_shared_between_the_inputs_are_saved_as_copies(output):
    video, _ = _latents()
    audio = {"samples": video["samples"][0, :8, :, :, :].reshape(1, 8, 2, 6)[..., :6], "noise_mask": None}
    video["noise_mask"] = video["samples"]  # the same tensor twice
    video["ltx_conditions"] = [{"latent": video["samples"][:, :, :1]}]  # a view
    kept = _copy((video, audio))
    shown = LTXSaveLatent().save(video, "shared", audio)["ui"]["text"]
    assert shown == ["shared_00001.ltx.safetensors"]
    assert _same((video, audio), kept)
    loaded_video, loaded_audio = LTXLoadLatent().load(shown[0])
    assert _same(loaded_video, video) and _same(loaded_audio, audio)
    assert loaded_video["noise_mask"].data_ptr() != loaded_video["samples"].data_ptr()
    # the same dict as both inputs
    LTXSaveLatent().save(video, "shared", video)
    again_video, again_audio = LTXLoadLatent().load("shared_00002.ltx.safetensors")
    assert _same(again_video, video) and _same(again_audio, video)


def test_disk_full_leaves_no_partial_file_and_no_new_folder(output, monkeypatch, tmp_path):
    (output / "latents").mkdir(parents=True)
    video, audio = _latents()

    def full_disk(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(latent_format, "save_file", full_disk)
    error = refused(
        InputError,
        "LTXSaveLatent: could not write 'a_00001.ltx.safetensors' in .*No space left on device; nothing was written",
        lambda: LTXSaveLatent().save(video, "run/deeper/a", audio),
        folder=tmp_path,
    )
    assert isinstance(error.__cause__, OSError)
    assert os.listdir(output / "latents") == []


def test_an_unwritable_folder_or_a_file_in_the_way_is_a_clear_error(output, monkeypatch, tmp_path):
    latents = output / "latents"
    latents.mkdir(parents=True)
    (latents / "run").write_bytes(b"a user's file")
    video, audio = _latents()
    refused(
        InputError,
        "cannot create the folder '.*run' for filename_prefix: a file of that name is in the way",
        lambda: LTXSaveLatent().save(video, "run/a", audio),
        folder=tmp_path,
    )

    def denied(tensors, path, metadata=None):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)

    monkeypatch.setattr(latent_format, "save_file", denied)
    refused(
        InputError, "could not write .*Permission denied", lambda: LTXSaveLatent().save(video, "new/a"), folder=tmp_path
    )
    assert (latents / "run").read_bytes() == b"a user's file"


def test_an_existing_file_is_never_replaced(output):
    video, _ = _latents()
    latents = output / "latents"
    latents.mkdir(parents=True)
    (latents / "a_00001.ltx.safetensors").write_bytes(b"mine")
    assert LTXSaveLatent().save(video, "a")["ui"]["text"] == ["a_00002.ltx.safetensors"]
    assert (latents / "a_00001.ltx.safetensors").read_bytes() == b"mine"


def test_a_prefix_through_a_link_to_outside_is_refused(output, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (output / "latents").mkdir(parents=True)
    os.symlink(outside, output / "latents" / "link")
    video, _ = _latents()
    refused(
        InputError, "points outside the output folder", lambda: LTXSaveLatent().save(video, "link/a"), folder=tmp_path
    )
    assert os.listdir(outside) == []


BAD_LOAD_NAMES = {
    "../../../../etc/passwd": "contains '..', which points outside the output folder",
    "/etc/passwd": "is an absolute path",
    "notes.txt": "is not a latent file; expected a name ending in .ltx.safetensors",
    "missing.ltx.safetensors": "'missing.ltx.safetensors' was not found in",
    "folder.ltx.safetensors": "is a folder; expected a .ltx.safetensors file",
    "outside.ltx.safetensors": "points outside the output folder \\(a symbolic link leads to",
    "a\0.ltx.safetensors": "control character",
    "": "must be a file name from the list; got an empty name",
}


@pytest.mark.parametrize("name", list(BAD_LOAD_NAMES))
def test_load_latent_stays_inside_its_folder(name, output, tmp_path, monkeypatch):
    latents = output / "latents"
    (latents / "folder.ltx.safetensors").mkdir(parents=True)
    secret = tmp_path / "secret.ltx.safetensors"
    save_file({"x": torch.zeros(1)}, str(secret), metadata={"ltx_av_latents": "{}", "format": "ltx-av-latents-1"})
    os.symlink(secret, latents / "outside.ltx.safetensors")
    opened = []
    monkeypatch.setattr(latent_format, "SafetensorsFile", lambda path: opened.append(path))
    refused(
        InputError, "LTXLoadLatent: file .*" + BAD_LOAD_NAMES[name], lambda: LTXLoadLatent().load(name), folder=tmp_path
    )
    assert opened == []  # nothing was opened
    assert isinstance(LTXLoadLatent.IS_CHANGED(name), float)  # NaN: run and report, never crash
    assert "outside.ltx.safetensors" not in LTXLoadLatent.INPUT_TYPES()["required"]["file"][0]


@pytest.mark.parametrize("name", [None, 5, "x" * 5000, "a\0b", "\ud800", "../" * 100])
def test_is_changed_never_crashes_on_hostile_names(name, output):
    value = LTXLoadLatent.IS_CHANGED(name)
    assert value != value  # NaN: never equal, so the node runs and reports the problem


def _latent_file(folder, name: str, layout, tensors=None, fmt="ltx-av-latents-1") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {"v": torch.zeros(1, 128, 1, 1, 1)} if tensors is None else tensors
    metadata = {"format": fmt}
    if layout is not None:
        metadata["ltx_av_latents"] = layout if isinstance(layout, str) else json.dumps(layout)
    save_file(tensors, str(folder / name), metadata=metadata)
    return name


_VIDEO = {"__dict__": {"samples": {"__tensor__": "v"}}}
BAD_LATENT_FILES = {
    "no layout (another tool's file)": (None, InputError, "was not written by Save Latent"),
    "layout not JSON": ("{'video':", CheckpointError, "its layout is not valid JSON"),
    "layout a list": ([_VIDEO], CheckpointError, "its layout should be a JSON object with 'video' and 'audio'"),
    "no video": ({"audio": None}, CheckpointError, "its layout should be a JSON object"),
    "video a list": ({"video": {"__list__": []}}, CheckpointError, "its video latent is not a LATENT"),
    "samples a number": ({"video": {"__dict__": {"samples": 3}}}, CheckpointError, "is not a LATENT"),
    "samples a list of tensors": (
        {"video": {"__dict__": {"samples": {"__list__": [{"__tensor__": "v"}]}}}},
        CheckpointError,
        "the 'samples' of its video latent is not a tensor",
    ),
    "a missing tensor": (
        {"video": {"__dict__": {"samples": {"__tensor__": "gone"}}}},
        CheckpointError,
        "names the tensor 'gone', which the file does not hold",
    ),
    "a tensor used twice": (
        {"video": _VIDEO, "audio": _VIDEO},
        CheckpointError,
        "the tensor 'v' is used twice",
    ),
    "a tensor name that is a number": (
        {"video": {"__dict__": {"samples": {"__tensor__": 5}}}},
        CheckpointError,
        "video\\['samples'\\] should name a tensor",
    ),
    "an unknown marker": (
        {"video": {"__dict__": {"samples": {"__tensor__": "v"}, "x": {"__pickle__": "..."}}}},
        CheckpointError,
        "has the unknown marker '__pickle__'",
    ),
    "a plain object value": (
        {"video": {"__dict__": {"samples": {"__tensor__": "v"}, "x": {"a": 1, "b": 2}}}},
        CheckpointError,
        "video\\['x'\\] is a JSON dict where the layout has a marked value",
    ),
    "a nested tensor of mismatched parts": (
        {"video": {"__dict__": {"samples": {"__nested__": [{"__tensor__": "v"}, {"__tensor__": "w"}]}}}},
        CheckpointError,
        "the parts of the nested tensor video\\['samples'\\] do not fit together",
    ),
    "nesting 100 deep": (
        {"video": {"__dict__": {"samples": {"__tensor__": "v"}, "x": json.loads('{"__list__": [' * 100 + "]}" * 100)}}},
        CheckpointError,
        "nested more than 32 levels deep",
    ),
    "a newer format": ({"video": _VIDEO}, CheckpointError, "is in latent format 'ltx-av-latents-9'"),
}


@pytest.mark.parametrize("case", list(BAD_LATENT_FILES))
def test_damaged_or_foreign_latent_files_name_the_file(case, output, tmp_path):
    layout, error, pattern = BAD_LATENT_FILES[case]
    tensors = {"v": torch.zeros(1, 128, 1, 1, 1), "w": torch.zeros(3, dtype=torch.int64)}
    fmt = "ltx-av-latents-9" if case == "a newer format" else "ltx-av-latents-1"
    name = _latent_file(output / "latents", "bad.ltx.safetensors", layout, tensors, fmt)
    refused(
        error,
        "LTXLoadLatent: file 'bad.ltx.safetensors'.*" + pattern,
        lambda: LTXLoadLatent().load(name),
        folder=tmp_path,
    )


def test_truncated_pickled_and_empty_latent_files_get_the_file_error(output, tmp_path):
    latents = output / "latents"
    latents.mkdir(parents=True)
    video, audio = _latents()
    LTXSaveLatent().save(video, "good", audio)
    data = (latents / "good_00001.ltx.safetensors").read_bytes()
    (latents / "cut.ltx.safetensors").write_bytes(data[: len(data) - 100])
    torch.save({"samples": torch.zeros(1)}, latents / "pickle.ltx.safetensors")
    (latents / "empty.ltx.safetensors").write_bytes(b"")
    (latents / "text.ltx.safetensors").write_bytes(b"hello, this is not a latent file at all")
    for name, pattern in (
        ("cut", "'cut.ltx.safetensors' is truncated"),
        ("pickle", "'pickle.ltx.safetensors' is a pickle .* never unpickles"),
        ("empty", "'empty.ltx.safetensors' is empty or truncated"),
        ("text", "'text.ltx.safetensors' is not a valid safetensors file"),
    ):
        refused(CheckpointError, pattern, lambda n=name: LTXLoadLatent().load(f"{n}.ltx.safetensors"), folder=tmp_path)


def test_a_latent_file_larger_than_memory_is_refused_before_reading(output, monkeypatch, tmp_path):
    video, audio = _latents()
    LTXSaveLatent().save(video, "big", audio)
    monkeypatch.setattr(host, "available_memory", lambda device: 1024)
    refused(
        TooLargeError,
        "LTXLoadLatent: file 'big_00001.ltx.safetensors' needs about .* of memory, but only 0 MiB is available",
        lambda: LTXLoadLatent().load("big_00001.ltx.safetensors"),
        folder=tmp_path,
    )


def test_loaded_latents_own_their_memory(output):
    video, audio = _latents()
    LTXSaveLatent().save(video, "own", audio)
    path = output / "latents" / "own_00001.ltx.safetensors"
    loaded, _ = LTXLoadLatent().load("own_00001.ltx.safetensors")
    os.unlink(path)  # nothing stays mapped from the file
    assert torch.equal(loaded["samples"], video["samples"])
    assert loaded["ltx_conditions"] == [{"index": 0}]


# -- model lists with symbolic-link loops ------------------------------------------------------------------------------


def _looping_models(tmp_path):
    folder = tmp_path / "models" / "checkpoints"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.safetensors", "sub/b.safetensors", "sub/c.safetensors"):
        (folder / name).write_bytes(b"")
    os.symlink(folder, folder / "sub" / "loop")  # a link to an ancestor
    os.symlink(folder / "sub", folder / "again")  # a second name for a folder
    os.symlink(folder / "a.safetensors", folder / "alias.safetensors")  # a second name for a file
    return folder


def test_model_lists_follow_each_real_folder_once(tmp_path, monkeypatch):
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(tmp_path / "models"))
    _looping_models(tmp_path)
    start = time.perf_counter()
    assert host.list_models("checkpoints") == ["a.safetensors", "sub/b.safetensors", "sub/c.safetensors"]
    assert time.perf_counter() - start < LIMIT_S


def test_model_lists_inside_comfyui_keep_one_name_per_real_file(tmp_path, monkeypatch):
    folder = _looping_models(tmp_path)
    names = ["a.safetensors", "alias.safetensors", "again/b.safetensors", "sub/b.safetensors", "sub/loop/a.safetensors"]
    fp = types.SimpleNamespace(
        get_filename_list=lambda kind: names, get_full_path=lambda kind, name: str(folder / name)
    )
    monkeypatch.setitem(sys.modules, "folder_paths", fp)
    assert host.list_models("checkpoints") == ["a.safetensors", "sub/b.safetensors"]


def test_text_encoder_lists_follow_each_real_folder_once(tmp_path, monkeypatch):
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(tmp_path / "models"))
    root = tmp_path / "models" / "text_encoders"
    gemma = root / "gemma-3"
    gemma.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (gemma / name).write_bytes(b"{}")
    (root / "gemma.gguf").write_bytes(b"")
    os.symlink(root, gemma / "tokenizer")  # a loop through the folder Gemma's tokenizer is looked for in
    os.symlink(root, root / "self")
    start = time.perf_counter()
    assert _walk_text_encoders() == (["gemma-3/", "gemma.gguf"], ["gemma-3"])
    assert time.perf_counter() - start < LIMIT_S


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a/../../b.safetensors", "x\0y"])
def test_model_names_cannot_leave_their_folders(name, tmp_path, monkeypatch):
    monkeypatch.setenv("LTX_AV_MODELS_DIR", str(tmp_path / "models"))
    refused(InputError, "is not a name inside the 'checkpoints' folders", lambda: host.model_path("checkpoints", name))
    refused(InputError, "is not a name inside the 'text_encoders' folders", lambda: _resolve("text_encoders", name))


# -- Gemma sources -----------------------------------------------------------------------------------------------------


def _gemma_folder(tmp_path, config: bytes) -> str:
    folder = tmp_path / "gemma"
    folder.mkdir()
    (folder / "config.json").write_bytes(config)
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "tokenizer.json").write_bytes(b"{}")
    return str(folder)


BAD_GEMMA_CONFIGS = {
    "not JSON": (b'{"model_type": "gemma3"', "config.json' is not valid JSON"),
    "not UTF-8": (b'{"model_type": "\xff\xfe"}', "config.json' is not valid JSON"),
    "a list": (b'["gemma3_text"]', "config.json' is a JSON list, not the JSON object a config holds"),
    "a number as model type": (b'{"model_type": 3}', "'gemma' is '3', not Gemma 3"),
    "hidden size text": (
        b'{"model_type": "gemma3_text", "hidden_size": "big", "num_hidden_layers": 2}',
        "'gemma': its config gives text_config.hidden_size = 'big'; expected a whole number",
    ),
    "layers infinite": (
        b'{"model_type": "gemma3_text", "hidden_size": 8, "num_hidden_layers": 1e999}',
        "text_config.num_hidden_layers = inf",
    ),
    "nested too deeply": (b"[" * 100_000 + b"]" * 100_000, "config.json' is not valid JSON \\(nested too deeply\\)"),
}


@pytest.mark.parametrize("case", list(BAD_GEMMA_CONFIGS))
def test_broken_gemma_configs_are_file_errors(case, tmp_path):
    config, pattern = BAD_GEMMA_CONFIGS[case]
    folder = _gemma_folder(tmp_path, config)
    refused(CheckpointError, pattern, lambda: inspect_gemma(folder), folder=tmp_path)


def test_a_damaged_shard_index_is_a_file_error(tmp_path):
    folder = _gemma_folder(tmp_path, b'{"model_type": "gemma3_text", "hidden_size": 8, "num_hidden_layers": 2}')
    index = os.path.join(folder, "model.safetensors.index.json")
    for weight_map in ([1, 2], {"w": 5}, {"w": "../../outside.safetensors"}):
        with open(index, "w") as f:
            json.dump({"weight_map": weight_map}, f)
        refused(CheckpointError, "index.json' is damaged: its weight_map", lambda: inspect_gemma(folder))


def _gguf(path, *entries: bytes, count: int | None = None) -> str:
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(entries) if count is None else count) + b"".join(entries)
    with open(path, "wb") as f:
        f.write(body)
    return str(path)


def _kv(key: str, kind: int, payload: bytes) -> bytes:
    return struct.pack("<Q", len(key)) + key.encode() + struct.pack("<I", kind) + payload


BAD_GGUF = {
    "garbage": (lambda p: p.write_bytes(b"\x00" * 64), "'m.gguf' is not a GGUF file"),
    "truncated after the magic": (lambda p: p.write_bytes(b"GGUF\x03"), "cannot read the GGUF header of 'm.gguf'"),
    "a key of 2**60 bytes": (
        lambda p: _gguf(p, struct.pack("<Q", 2**60) + b"general"),
        "'m.gguf' is truncated or damaged: its GGUF header asks for 1,152,921,504,606,846,976 bytes",
    ),
    "an array of 2**40 floats": (
        lambda p: _gguf(p, _kv("general.architecture", 9, struct.pack("<IQ", 6, 2**40))),
        "asks for 4,398,046,511,104 bytes",
    ),
    "an array of 2**40 strings": (
        lambda p: _gguf(p, _kv("general.architecture", 9, struct.pack("<IQ", 8, 2**40))),
        "'m.gguf' is truncated or damaged",
    ),
    "arrays nested deeply": (
        lambda p: _gguf(p, _kv("general.architecture", 9, struct.pack("<IQ", 9, 1) * 2000)),
        "arrays nested 4 deep",
    ),
    "10**18 keys": (lambda p: _gguf(p, count=10**18), "'m.gguf' is truncated or damaged"),
    "an unknown value type": (lambda p: _gguf(p, _kv("general.architecture", 99, b"")), "value type 99"),
    "an architecture that is a number": (
        lambda p: _gguf(p, _kv("general.architecture", 4, struct.pack("<I", 7))),
        "'m.gguf' is '7', not Gemma 3",
    ),
    "a size that is text": (
        lambda p: _gguf(
            p,
            _kv("general.architecture", 8, struct.pack("<Q", 6) + b"gemma3"),
            _kv("gemma3.embedding_length", 8, struct.pack("<Q", 3) + b"big"),
            _kv("gemma3.block_count", 4, struct.pack("<I", 2)),
        ),
        "'m.gguf': its config gives gemma3.embedding_length = 'big'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_GGUF))
def test_damaged_gguf_headers_are_file_errors(case, tmp_path):
    write, pattern = BAD_GGUF[case]
    path = tmp_path / "m.gguf"
    write(path)
    refused(CheckpointError, pattern, lambda: inspect_gemma(str(path)), folder=tmp_path)


def test_gguf_reader_refuses_lengths_beyond_the_file(tmp_path):
    path = _gguf(tmp_path / "m.gguf", _kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3)))
    refused(CheckpointError, "truncated or damaged", lambda: read_gguf_metadata(path, ("tokenizer.ggml.tokens",)))


def test_a_gemma_folder_is_fine_but_a_missing_source_is_named(tmp_path):
    refused(CheckpointError, "Gemma source '.*nowhere' does not exist", lambda: inspect_gemma(tmp_path / "nowhere"))
    refused(CheckpointError, "must be given as a file or folder path; got a int", lambda: inspect_gemma(5))


def test_latent_file_module_is_used_by_the_nodes():
    assert latent_files.LATENT_SUFFIX == latent_format.SUFFIX
