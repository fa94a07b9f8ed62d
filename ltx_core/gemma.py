"""Gemma 3, the text encoder of LTX-2 and LTX-2.3, loaded through ``transformers`` from the layouts users have.

Accepted sources:

* a Hugging Face folder (``config.json``, tokenizer files, one or more ``.safetensors`` shards), the multimodal
  ``Gemma3ForConditionalGeneration`` layout (e.g. ``google/gemma-3-12b-it-qat-q4_0-unquantized``) or a text-only
  ``Gemma3ForCausalLM`` one;
* a single ``.safetensors`` file (e.g. in ComfyUI's ``text_encoders`` folder) in any of the usual key layouts, with
  float8 weights upcast (per-tensor scales folded); its ``config.json`` and tokenizer are looked up beside it or in
  a folder the caller names, else the SentencePiece model ComfyUI stores in its Gemma files (``spiece_model``) is
  used. Without a ``config.json`` only Gemma 3 12B is recognised (the one LTX uses);
* a GGUF file (config through ``transformers``, tensors dequantised with the ``gguf`` package), tokenizer included.

Tokenizers stored as vocabularies (GGUF, ``spiece_model``) are rebuilt as the SentencePiece-BPE tokenizer Gemma
ships; ``transformers``' own GGUF conversion yields a Unigram model that splits common words.

Only the language model is built: the vision tower and the LM head are never loaded. Encoding follows the LTX
recipe: the prompt is stripped, starts with BOS, is cut to 1024 tokens (logged) and left-padded to 1024; every
hidden state is returned (embedding output, then each layer, the last one after the final norm).

Speed: the official pipeline runs Gemma over all 1024 positions although only the prompt's tokens are used
downstream (padding is masked out of attention and replaced by registers in the text path). We run only the
real tokens, keeping their absolute positions (position ids ``T - n .. T - 1``), which gives the same hidden
states for them at a fraction of the cost. ``trim_padding=False`` runs the full padded sequence instead.

``transformers`` is imported lazily: importing this module costs nothing.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .checkpoint import FLOAT8_DTYPES, PICKLE_SUFFIXES, SafetensorsFile
from .errors import CheckpointError
from .text_encoder import GemmaHiddenStates

log = logging.getLogger("ltx_av.gemma")

MAX_TOKENS = 1024
GEMMA3_MODEL_TYPES = ("gemma3", "gemma3_text")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")

# Gemma 3 12B's text config (the text encoder of LTX-2 and LTX-2.3), used for a single-file Gemma that comes
# without a config.json. Written in the config.json vocabulary so every transformers version reads it its own way.
GEMMA3_12B_TEXT_CONFIG: dict[str, Any] = {
    "model_type": "gemma3_text",
    "hidden_size": 3840,
    "num_hidden_layers": 48,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 256,
    "intermediate_size": 15360,
    "vocab_size": 262208,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131072,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "rope_local_base_freq": 10000.0,
    "rope_scaling": {"rope_type": "linear", "factor": 8.0},
    "sliding_window": 1024,
    "sliding_window_pattern": 6,
    "layer_types": ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(48)],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "final_logit_softcapping": None,
    "attn_logit_softcapping": None,
    "pad_token_id": 0,
    "bos_token_id": 2,
    "eos_token_id": 1,
}

Progress = Callable[[int, int], None]


def _need_gemma3(name: str, family: str) -> CheckpointError:
    """The error for a model that is not Gemma 3; ``family`` is its model type (or a description of it)."""
    if family.startswith("gemma3n"):
        what = "Gemma 3n, a different architecture"
    elif family.startswith("gemma4"):
        what = "Gemma 4 (the text encoder of LTX-2.5)"
    elif family.startswith("gemma2") or family == "gemma":
        what = f"an earlier Gemma ('{family}')"
    else:
        what = f"'{family}'"
    return CheckpointError(
        f"'{name}' is {what}, not Gemma 3. LTX-2 and LTX-2.3 need Gemma 3 as their text encoder "
        "(12B: google/gemma-3-12b-it, or its qat-q4_0-unquantized release)."
    )


# ---------------------------------------------------------------------------------------------------------------
# Finding what a source holds, without reading weights


@dataclass
class GemmaSource:
    """A Gemma 3 source resolved on disk: layout, text config, weight files and tokenizer location."""

    path: str
    layout: str  # "folder", "safetensors" or "gguf"
    text_config: dict[str, Any]
    weight_files: tuple[str, ...] = ()
    tokenizer_dir: str | None = None  # None: the tokenizer is inside the file (GGUF, ComfyUI's spiece_model)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return os.path.basename(self.path.rstrip(os.sep))

    @property
    def hidden_size(self) -> int:
        return int(self.text_config["hidden_size"])

    @property
    def num_hidden_states(self) -> int:
        """Hidden states ``transformers`` returns: the embedding output plus one per layer."""
        return int(self.text_config["num_hidden_layers"]) + 1


def inspect_gemma(path: str | os.PathLike, tokenizer_dir: str | os.PathLike | None = None) -> GemmaSource:
    """Resolve a Gemma 3 source (folder, ``.safetensors`` or ``.gguf``) and check it is Gemma 3; reads headers only.

    ``tokenizer_dir`` overrides where the tokenizer comes from. Raises :class:`CheckpointError` for another model
    family, a missing config or a missing tokenizer (listing where it looked).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise CheckpointError(f"a Gemma source must be given as a file or folder path; got a {type(path).__name__}")
    path = os.fspath(path)
    tokenizer_dir = os.fspath(tokenizer_dir) if tokenizer_dir else None
    try:
        return _inspect(path, tokenizer_dir)
    except OSError as e:  # unreadable folder or file (permissions, a file vanishing meanwhile)
        raise CheckpointError(f"cannot read the Gemma source '{path}': {e.strerror or e}") from e


def _inspect(path: str, tokenizer_dir: str | None) -> GemmaSource:
    if tokenizer_dir is not None and not _has_tokenizer(tokenizer_dir):
        raise CheckpointError(
            f"tokenizer folder '{tokenizer_dir}' has none of {', '.join(TOKENIZER_FILES)}; name the folder that "
            "holds the Gemma 3 tokenizer files"
        )
    if os.path.isdir(path):
        source = _inspect_folder(path)
    elif not os.path.isfile(path):
        raise CheckpointError(f"Gemma source '{path}' does not exist")
    elif path.lower().endswith(".gguf"):
        source = _inspect_gguf(path)
    elif path.lower().endswith(".safetensors"):
        source = _inspect_safetensors(path, tokenizer_dir)
    elif path.lower().endswith(PICKLE_SUFFIXES):
        raise CheckpointError(
            f"'{os.path.basename(path)}' is a pickle file; LTX-AV loads Gemma only from .safetensors or .gguf files "
            "(unpickling can run arbitrary code)"
        )
    else:
        raise CheckpointError(
            f"'{os.path.basename(path)}' is not a Gemma source LTX-AV can read: expected a Hugging Face folder, a "
            ".safetensors file or a .gguf file"
        )
    if tokenizer_dir is not None:
        source.tokenizer_dir = tokenizer_dir
    return source


# A config.json or index of a Gemma release is well under a megabyte.
_MAX_JSON_BYTES = 16 * 2**20


def _read_json(path: str) -> dict[str, Any]:
    try:
        if os.path.getsize(path) > _MAX_JSON_BYTES:
            raise CheckpointError(
                f"'{path}' is {os.path.getsize(path):,} bytes; a Gemma config or index is far smaller (a damaged or "
                "misplaced file?)"
            )
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except OSError as e:
        raise CheckpointError(f"cannot read '{path}': {e.strerror or e}") from e
    except (ValueError, RecursionError) as e:  # not JSON, not UTF-8, numbers of thousands of digits, deep nesting
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:200]
        raise CheckpointError(f"'{path}' is not valid JSON ({reason}); re-download it") from e
    if not isinstance(value, dict):
        raise CheckpointError(f"'{path}' is a JSON {type(value).__name__}, not the JSON object a config holds")
    return value


def _size(value: Any, name: str, key: str) -> int:
    """A model size from a config (``hidden_size``, ``num_hidden_layers``): a whole number from 1 to 2**20."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**20:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise CheckpointError(f"'{name}': its config gives {key} = {shown}; expected a whole number from 1 to {2**20}")
    return value


def _text_config(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The language-model part of a config.json, after checking the family."""
    family = config.get("model_type", "")
    family = family if isinstance(family, str) else repr(family)
    if family not in GEMMA3_MODEL_TYPES:
        raise _need_gemma3(name, family or "unknown (config.json has no model_type)")
    text = config.get("text_config") if family == "gemma3" else config
    if not isinstance(text, dict):
        text = {}
    text = {**text, "model_type": "gemma3_text"}
    for key in ("hidden_size", "num_hidden_layers"):
        if key not in text:
            # Gemma3Config fills an absent text_config with the 4B defaults; spell out what we could not find.
            raise CheckpointError(f"'{name}': config.json gives no text_config.{key}, so the Gemma size is unknown")
        text[key] = _size(text[key], name, f"text_config.{key}")
    return text


def _has_tokenizer(folder: str) -> bool:
    return any(os.path.isfile(os.path.join(folder, f)) for f in TOKENIZER_FILES)


def _find_tokenizer(candidates: Sequence[str], name: str, inside: str = "") -> str:
    seen = []
    for folder in candidates:
        if folder in seen:
            continue
        seen.append(folder)
        if _has_tokenizer(folder):
            return folder
    raise CheckpointError(
        f"no Gemma tokenizer found for '{name}': looked for {' / '.join(TOKENIZER_FILES)} in "
        + ", ".join(f"'{f}'" for f in seen)
        + inside
        + ". Put the tokenizer files of google/gemma-3-12b-it beside the model, or name their folder as the "
        "tokenizer folder."
    )


def _inspect_folder(folder: str) -> GemmaSource:
    name = os.path.basename(folder.rstrip(os.sep))
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise CheckpointError(f"Gemma folder '{folder}' has no config.json (a Hugging Face model folder has one)")
    text = _text_config(_read_json(config_path), name)
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index):
        weight_map = _read_json(index).get("weight_map") or {}
        shards = set(weight_map.values()) if isinstance(weight_map, dict) else None
        bad = shards is None or any(
            not isinstance(f, str) or os.path.basename(f) != f or f in ("", ".", "..") for f in shards
        )
        if bad:
            raise CheckpointError(
                f"'{index}' is damaged: its weight_map should map tensor names to shard file names in the folder"
            )
        files = sorted(os.path.join(folder, f) for f in shards)
    else:
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".safetensors"))
    if not files:
        pickles = [f for f in os.listdir(folder) if f.endswith(PICKLE_SUFFIXES)]
        hint = " (it has only pickle weights, which LTX-AV does not load)" if pickles else ""
        raise CheckpointError(f"Gemma folder '{folder}' has no .safetensors weights{hint}")
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise CheckpointError(
            f"Gemma folder '{folder}' is incomplete: missing {', '.join(map(os.path.basename, missing))}"
        )
    tokenizer = _find_tokenizer([folder, os.path.join(folder, "tokenizer")], name)
    return GemmaSource(folder, "folder", text, tuple(files), tokenizer)


def _inspect_safetensors(path: str, tokenizer_dir: str | None) -> GemmaSource:
    name = os.path.basename(path)
    folder = os.path.dirname(os.path.abspath(path))
    stem = os.path.splitext(name)[0]
    header = SafetensorsFile(path)
    _check_gemma3_keys(header, name)
    candidates = [folder, os.path.join(folder, "tokenizer"), os.path.join(folder, stem)]
    tokenizer = tokenizer_dir
    if tokenizer is None and not any(_has_tokenizer(c) for c in candidates) and _embedded_tokenizer_key(header):
        tokenizer = None  # ComfyUI's Gemma files carry their SentencePiece model
    elif tokenizer is None:
        tokenizer = _find_tokenizer(candidates, name, " and for a 'spiece_model' tensor inside the file")
    notes = []
    config_candidates = [os.path.join(folder, "config.json")]
    if tokenizer_dir:
        config_candidates.append(os.path.join(tokenizer_dir, "config.json"))
    config_path = next((c for c in config_candidates if os.path.isfile(c)), None)
    if config_path is not None:
        text = _text_config(_read_json(config_path), name)
        notes.append(f"config from {config_path}")
    else:
        width, layers = _lm_size(header)
        if (width, layers) != (GEMMA3_12B_TEXT_CONFIG["hidden_size"], GEMMA3_12B_TEXT_CONFIG["num_hidden_layers"]):
            raise CheckpointError(
                f"'{name}' holds a Gemma 3 with hidden size {width} and {layers} layers but no config.json was found "
                f"(looked in {', '.join(repr(c) for c in config_candidates)}); only Gemma 3 12B is recognised without "
                "one. Put the model's config.json beside the file."
            )
        text = dict(GEMMA3_12B_TEXT_CONFIG)
        notes.append("no config.json: using the Gemma 3 12B config")
    return GemmaSource(path, "safetensors", text, (path,), tokenizer, notes)


_LM_PREFIXES = ("language_model.model.", "model.language_model.", "model.", "language_model.", "")


def _lm_prefix(keys: Sequence[str] | dict, name: str) -> str:
    for prefix in _LM_PREFIXES:
        if prefix + "embed_tokens.weight" in keys:
            return prefix
    raise CheckpointError(
        f"'{name}' is not a Gemma language model: no 'embed_tokens.weight' under any of "
        + ", ".join(repr(p or "(no prefix)") for p in _LM_PREFIXES)
    )


def _check_gemma3_keys(header: SafetensorsFile, name: str) -> None:
    # LTX-2.5's text encoder file names its family in the Hugging Face config it carries.
    declared = header.metadata.get("gemma_config")
    family = _json_model_type(declared) if declared else None
    if family is not None and not family.startswith("gemma3"):
        raise _need_gemma3(name, family)
    prefix = _lm_prefix(header.tensors, name)
    # Gemma 3 normalises q and k per head and wraps the MLP in two extra norms; Gemma 1/2 and other LLMs do not.
    layer = prefix + "layers.0."
    markers = (layer + "self_attn.q_norm.weight", layer + "pre_feedforward_layernorm.weight")
    if not all(m in header.tensors for m in markers):
        raise _need_gemma3(name, "a language model without Gemma 3's q/k norms")
    # Gemma 4's global layers reuse the key projection as values (no v_proj); every Gemma 3 layer has one.
    layers = {k[len(prefix) + 7 :].split(".", 1)[0] for k in header.tensors if k.startswith(prefix + "layers.")}
    if any(f"{prefix}layers.{i}.self_attn.v_proj.weight" not in header.tensors for i in layers):
        raise _need_gemma3(name, "gemma4")


def _json_model_type(text: str) -> str | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    family = value.get("model_type") if isinstance(value, dict) else None
    return family if isinstance(family, str) else None


def _lm_size(header: SafetensorsFile) -> tuple[int, int]:
    prefix = _lm_prefix(header.tensors, header.name)
    shape = header.tensors[prefix + "embed_tokens.weight"].shape
    if len(shape) != 2:
        raise CheckpointError(
            f"'{header.name}': its token embedding has shape {list(shape)}; a Gemma embedding is [vocabulary, width]"
        )
    width = shape[1]
    layers = {k[len(prefix) + 7 :].split(".", 1)[0] for k in header.tensors if k.startswith(prefix + "layers.")}
    return width, len(layers)


# -- GGUF header ---------------------------------------------------------------------------------------------------

_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf_metadata(path: str, wanted: Sequence[str]) -> dict[str, Any]:
    """The values of the ``wanted`` keys of a GGUF file (arrays as lists, numeric arrays as numpy arrays), plus
    ``"_keys"``: every key present. A small reader of our own: the ``gguf`` package parses every array first."""
    import numpy as np

    name = os.path.basename(path)
    found: dict[str, Any] = {}
    keys: list[str] = []
    size = 0

    def take(f, n: int, keep: bool = True) -> bytes:
        # Every length in the header is checked against what is left of the file before it is read, so a damaged
        # length cannot ask for more memory than the file has.
        if n > size - f.tell():
            raise CheckpointError(
                f"'{name}' is truncated or damaged: its GGUF header asks for {n:,} bytes at offset {f.tell():,} "
                f"of a {size:,}-byte file"
            )
        if not keep:
            f.seek(n, 1)
            return b""
        return f.read(n)

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise CheckpointError(f"'{name}' is not a GGUF file (bad magic bytes)")
            (version,) = struct.unpack("<I", f.read(4))
            if version < 2:
                raise CheckpointError(f"'{name}' is GGUF version {version}; re-convert it with a current llama.cpp")
            _, kv_count = struct.unpack("<QQ", take(f, 16))

            def string(keep: bool = True) -> str | None:
                (n,) = struct.unpack("<Q", take(f, 8))
                raw = take(f, n, keep)
                return raw.decode("utf-8", errors="replace") if keep else None

            def value(kind: int, keep: bool, depth: int = 0) -> Any:
                if kind in _GGUF_SCALARS:
                    fmt = _GGUF_SCALARS[kind]
                    raw = take(f, struct.calcsize(fmt))
                    return struct.unpack(fmt, raw)[0] if keep else None
                if kind == 8:
                    return string(keep)
                if kind == 9:
                    if depth >= 4:  # llama.cpp writes arrays of scalars or strings only
                        raise CheckpointError(f"'{name}' has a corrupt GGUF header (arrays nested {depth} deep)")
                    elem, count = struct.unpack("<IQ", take(f, 12))
                    if elem in _GGUF_SCALARS:
                        raw = take(f, count * struct.calcsize(_GGUF_SCALARS[elem]), keep)
                        return np.frombuffer(raw, dtype=np.dtype(_GGUF_SCALARS[elem])) if keep else None
                    if elem not in (8, 9):
                        raise CheckpointError(f"'{name}' has a corrupt GGUF header (array of value type {elem})")
                    if count > size - f.tell():  # every element takes at least a byte
                        take(f, count)
                    items = [value(elem, keep, depth + 1) for _ in range(count)]
                    return items if keep else None
                raise CheckpointError(f"'{name}' has a corrupt GGUF header (value type {kind})")

            for _ in range(kv_count):
                key = string()
                (kind,) = struct.unpack("<I", take(f, 4))
                keys.append(key)
                result = value(kind, key in wanted)
                if key in wanted:
                    found[key] = result
    except (OSError, struct.error, ValueError) as e:
        raise CheckpointError(f"cannot read the GGUF header of '{name}' (a damaged or truncated file?): {e}") from e
    found["_keys"] = keys
    return found


# llama.cpp token types
_NORMAL, _CONTROL, _USER_DEFINED = 1, 3, 4


def gguf_tokenizer(path: str):
    """The Gemma 3 tokenizer stored in a GGUF file (see :func:`sentencepiece_bpe_tokenizer`).

    ``transformers`` (4.x and 5.x) turns a GGUF Gemma vocabulary into a Unigram model that splits common words
    ("a cat" -> ``a``, ``▁c``, ``at``), which would silently change every prompt, so we build our own.
    """
    name = os.path.basename(path)
    keys = ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type")
    meta = read_gguf_metadata(path, keys + ("tokenizer.ggml.bos_token_id",))
    if meta.get("tokenizer.ggml.model") != "llama" or any(k not in meta for k in keys[1:]):
        raise CheckpointError(f"'{name}' does not carry a SentencePiece (Gemma) tokenizer; name a tokenizer folder")
    tokens = meta["tokenizer.ggml.tokens"]
    bos = tokens[int(meta.get("tokenizer.ggml.bos_token_id", 2))]
    return sentencepiece_bpe_tokenizer(
        tokens, meta["tokenizer.ggml.scores"].tolist(), meta["tokenizer.ggml.token_type"].tolist(), bos
    )


def sentencepiece_bpe_tokenizer(tokens: Sequence[str], scores: Sequence[float], types: Sequence[int], bos: str):
    """A fast tokenizer equal to a SentencePiece BPE model (Gemma's) given its pieces, scores and piece types.

    SentencePiece BPE merges, at each step, the adjacent pair whose joined piece has the highest score; so every
    split of a normal piece into two known pieces is a merge, ranked by the joined piece's score. Control pieces
    become special tokens; user-defined ones (newline and space runs, ...) are matched before BPE, as SentencePiece
    does. Unknown characters fall back to byte pieces; spaces are the piece marker ``▁``.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(tokens)}
    merges = []
    for i, piece in enumerate(tokens):
        if types[i] != _NORMAL or len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                merges.append((-scores[i], vocab[left], vocab[right], left, right))
    merges.sort()
    bpe = models.BPE(
        vocab=vocab, merges=[(m[3], m[4]) for m in merges], unk_token="<unk>", byte_fallback=True, fuse_unk=True
    )
    tokenizer = Tokenizer(bpe)
    tokenizer.normalizer = normalizers.Replace(" ", "\u2581")
    tokenizer.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    kinds = list(zip(tokens, types, strict=True))
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, k in kinds if k == _CONTROL])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t, k in kinds if k == _USER_DEFINED])
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, vocab[bos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=bos, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _protobuf_fields(data: bytes):
    """(field number, wire type, value) of one protobuf message; length-delimited values as bytes."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at : at + size], at + size
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def sentencepiece_model_tokenizer(data: bytes, name: str):
    """The tokenizer of a serialised SentencePiece ``ModelProto`` (e.g. the ``spiece_model`` tensor that ComfyUI
    stores inside its Gemma files), read without the ``sentencepiece`` package. Only BPE models (Gemma) qualify."""
    tokens, scores, types = [], [], []
    model_type = None
    try:
        for field, _, value in _protobuf_fields(data):
            if field == 1:  # pieces: {1: piece, 2: score, 3: type}
                piece, score, kind = "", 0.0, _NORMAL
                for f, _, v in _protobuf_fields(value):
                    if f == 1:
                        piece = v.decode("utf-8")
                    elif f == 2:
                        (score,) = struct.unpack("<f", v)
                    elif f == 3:
                        kind = v
                # SentencePiece stores space runs as marker runs; they are matched in the raw text.
                if kind == _USER_DEFINED and piece and set(piece) == {"\u2581"}:
                    piece = " " * len(piece)
                tokens.append(piece)
                scores.append(score)
                types.append(kind)
            elif field == 2:  # trainer spec: {3: model_type}
                model_type = next((v for f, _, v in _protobuf_fields(value) if f == 3), 1)
    except (ValueError, IndexError, UnicodeDecodeError, struct.error) as e:
        raise CheckpointError(f"the SentencePiece model in '{name}' is damaged ({e})") from e
    if model_type != 2 or "<bos>" not in tokens:
        raise CheckpointError(
            f"the SentencePiece model in '{name}' is not Gemma's (BPE with <bos>); name a Gemma 3 tokenizer folder"
        )
    return sentencepiece_bpe_tokenizer(tokens, scores, types, "<bos>")


def _embedded_tokenizer_key(header: SafetensorsFile) -> str | None:
    return next((k for k in header.tensors if k.endswith("spiece_model")), None)


def _inspect_gguf(path: str) -> GemmaSource:
    name = os.path.basename(path)
    arch = read_gguf_metadata(path, ("general.architecture",)).get("general.architecture", "unknown")
    if arch != "gemma3":
        raise _need_gemma3(name, arch if isinstance(arch, str) else repr(arch)[:40])
    meta = read_gguf_metadata(path, ("gemma3.embedding_length", "gemma3.block_count"))
    if "gemma3.embedding_length" not in meta or "gemma3.block_count" not in meta:
        raise CheckpointError(f"'{name}': its GGUF header gives no gemma3.embedding_length / gemma3.block_count")
    text = {
        "model_type": "gemma3_text",
        "hidden_size": _size(meta["gemma3.embedding_length"], name, "gemma3.embedding_length"),
        "num_hidden_layers": _size(meta["gemma3.block_count"], name, "gemma3.block_count"),
    }
    source = GemmaSource(path, "gguf", text, (path,), None)
    if "tokenizer.ggml.model" not in meta["_keys"]:
        folder = os.path.dirname(os.path.abspath(path))
        source.tokenizer_dir = _find_tokenizer([folder, os.path.join(folder, "tokenizer")], name)
    return source


# ---------------------------------------------------------------------------------------------------------------
# Loading


@dataclass
class Tokens:
    """``input_ids`` / ``attention_mask``: ``[B, T]`` int64, left padded (real tokens at the end)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor


class GemmaEncoder:
    """A loaded Gemma 3 language model and its tokenizer, set up for LTX prompt encoding."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, source: GemmaSource, max_length: int = MAX_TOKENS):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.source = source
        self.max_length = max_length
        self.bos_id = _token_id(tokenizer, "bos", "<bos>")
        if self.bos_id is None:
            raise CheckpointError(f"the tokenizer of '{source.name}' has no BOS token; it is not a Gemma tokenizer")
        pad = _token_id(tokenizer, "pad", "<pad>")
        self.pad_id = pad if pad is not None else _token_id(tokenizer, "eos", "<eos>")
        vocab = model.config.vocab_size
        if len(tokenizer) > vocab + 1024:
            raise CheckpointError(
                f"the tokenizer for '{source.name}' has {len(tokenizer)} tokens but the model embeds {vocab}: "
                "tokenizer and model do not belong together"
            )

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_hidden_states(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def to(self, device: torch.device | str) -> GemmaEncoder:
        self.model.to(device)
        return self

    def token_ids(self, prompt: str) -> list[int]:
        """The ids LTX feeds Gemma for one prompt (stripped, BOS first, at most ``max_length``), unpadded."""
        ids = list(self.tokenizer(prompt.strip(), add_special_tokens=True)["input_ids"])
        if not ids or ids[0] != self.bos_id:
            ids.insert(0, self.bos_id)
        if len(ids) > self.max_length:
            kept = self.tokenizer.decode(ids[self.max_length - 8 : self.max_length], skip_special_tokens=True)
            log.warning(
                "prompt is %d tokens; LTX-2 reads at most %d, so it was truncated after '...%s' (%d tokens dropped)",
                len(ids),
                self.max_length,
                kept,
                len(ids) - self.max_length,
            )
            ids = ids[: self.max_length]
        return ids

    def tokenize(self, prompts: Sequence[str]) -> Tokens:
        """``[B, max_length]`` ids and mask, left padded, as the reference tokenises each prompt."""
        if isinstance(prompts, str):
            prompts = [prompts]
        rows = [self.token_ids(p) for p in prompts]
        ids = torch.full((len(rows), self.max_length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), self.max_length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, self.max_length - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, self.max_length - len(row) :] = 1
        return Tokens(ids, mask)

    @torch.no_grad()
    def hidden_states(
        self, tokens: Tokens, *, trim_padding: bool = True, progress: Progress | None = None
    ) -> GemmaHiddenStates:
        """All hidden states ``[B, S, D, L]`` of the tokens; ``S`` is the longest prompt (``trim_padding``) or the
        full padded length. ``progress(done, total)`` is called after every layer (it may raise to interrupt)."""
        ids, mask = tokens.input_ids, tokens.attention_mask
        length = ids.shape[1]
        positions = None
        if trim_padding:
            kept = int(mask.sum(dim=1).max())
            ids, mask = ids[:, length - kept :], mask[:, length - kept :]
            # Keep each token's absolute position in the padded sequence, as in the full run.
            positions = torch.arange(length - kept, length, device=self.device).expand(ids.shape[0], -1)
        hooks = []
        if progress is not None:
            layers = self.model.layers
            for i, layer in enumerate(layers):
                hooks.append(layer.register_forward_hook(_report(progress, i + 1, len(layers))))
        try:
            out = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions,
                output_hidden_states=True,
                use_cache=False,
            )
        finally:
            for hook in hooks:
                hook.remove()
        states = torch.stack(out.hidden_states, dim=-1)
        return GemmaHiddenStates(states, mask.to(self.device).bool(), length)

    def encode(
        self, prompts: Sequence[str], *, trim_padding: bool = True, progress: Progress | None = None
    ) -> GemmaHiddenStates:
        """Prompts -> hidden states for the LTX text path."""
        return self.hidden_states(self.tokenize(prompts), trim_padding=trim_padding, progress=progress)


def _report(progress: Progress, done: int, total: int):
    def hook(module, args, output):
        progress(done, total)

    return hook


def _token_id(tokenizer: Any, role: str, fallback: str) -> int | None:
    value = getattr(tokenizer, f"{role}_token_id", None)
    if value is None:
        vocab = tokenizer.get_vocab()
        value = vocab.get(fallback)
    return int(value) if value is not None else None


def load_tokenizer(folder: str):
    """A Gemma tokenizer from a folder with ``tokenizer.json`` or ``tokenizer.model``."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, ImportError) as e:
        single = os.path.join(folder, "tokenizer.json")
        if not os.path.isfile(single):
            raise CheckpointError(f"cannot load the Gemma tokenizer in '{folder}': {e}") from e
        # A bare tokenizer.json without tokenizer_config.json: name Gemma's special tokens ourselves.
        return PreTrainedTokenizerFast(
            tokenizer_file=single, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
        )


def load_gemma(
    path: str | os.PathLike | GemmaSource,
    *,
    tokenizer_dir: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> GemmaEncoder:
    """Load Gemma 3's language model (no vision tower, no LM head) and tokenizer from any supported source.

    ``dtype``: weights and compute (bfloat16 by default). ``device``: where the model runs; weights are read on
    the CPU first. ``progress(done, total)`` is called per tensor read.
    """
    source = path if isinstance(path, GemmaSource) else inspect_gemma(path, tokenizer_dir)
    for note in source.notes:
        log.info("%s: %s", source.name, note)
    log.info(
        "loading Gemma 3 (%d wide, %d layers) from %s", source.hidden_size, source.num_hidden_states - 1, source.path
    )
    if source.layout == "gguf":
        model, tokenizer = _load_gguf(source, dtype, progress)
    else:
        model = _load_safetensors(source, dtype, progress)
        if source.tokenizer_dir is not None:
            tokenizer = load_tokenizer(source.tokenizer_dir)
        else:
            header = SafetensorsFile(source.path)
            data = header.tensor(_embedded_tokenizer_key(header)).numpy().tobytes()
            tokenizer = sentencepiece_model_tokenizer(data, source.name)
    model = model.to(device)
    return GemmaEncoder(model, tokenizer, source, _context_length(tokenizer))


def _context_length(tokenizer: Any) -> int:
    """The padded prompt length: LTX's 1024, or less where the tokenizer declares a shorter ``model_max_length``
    (the built-in demo model's stand-in declares 128: its prompts are a dozen tokens, and 1024 positions of
    registers would drown them in its text cross-attention). Real Gemma tokenizers declare far more than 1024."""
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < MAX_TOKENS:
        return declared
    return MAX_TOKENS


def _load_safetensors(source: GemmaSource, dtype: torch.dtype, progress: Progress | None) -> torch.nn.Module:
    from transformers import Gemma3TextConfig, Gemma3TextModel

    config = Gemma3TextConfig.from_dict(source.text_config)
    with torch.device("meta"):
        expected = set(Gemma3TextModel(config).state_dict())
    files = [SafetensorsFile(f) for f in source.weight_files]
    located = {key: file for file in files for key in file.tensors}
    prefix = _lm_prefix(located, source.name)
    wanted = {k: prefix + k for k in expected}
    missing = [k for k, file_key in wanted.items() if file_key not in located]
    if missing:
        raise CheckpointError(
            f"'{source.name}' does not hold a complete Gemma 3 language model for its config "
            f"({source.hidden_size} wide, {source.num_hidden_states - 1} layers): {len(missing)} tensors missing, "
            f"e.g. {', '.join(prefix + k for k in sorted(missing)[:3])}"
        )
    state_dict = {}
    for done, (key, file_key) in enumerate(sorted(wanted.items()), 1):
        file = located[file_key]
        state_dict[key] = _read_weight(file, file_key, located, dtype)
        if progress is not None:
            progress(done, len(wanted))
    model = Gemma3TextModel.from_pretrained(None, config=config, state_dict=state_dict, dtype=dtype)
    return model


def _read_weight(
    file: SafetensorsFile,
    key: str,
    located: dict,
    dtype: torch.dtype,
    advice: str = "a bf16 / fp16 / fp8 .safetensors or a GGUF file of Gemma 3",
) -> torch.Tensor:
    """One weight in ``dtype``: float8 upcast with its per-tensor scale folded in; quantised integers refused
    (``advice`` says what to use instead)."""
    tensor = file.tensor(key)
    if tensor.dtype in FLOAT8_DTYPES:
        tensor = tensor.float()
        stem = key[: -len(".weight")] if key.endswith(".weight") else key
        for scale_key in (stem + ".weight_scale", stem + ".scale_weight"):
            if scale_key in located:
                tensor = tensor * located[scale_key].tensor(scale_key).float()
                break
    elif not tensor.is_floating_point():
        raise CheckpointError(
            f"'{file.name}' stores '{key}' as {tensor.dtype}, a quantised layout LTX-AV cannot read; use {advice}"
        )
    return tensor.to(dtype)


def _load_gguf(source: GemmaSource, dtype: torch.dtype, progress: Progress | None):
    """Config through ``transformers``' GGUF support; tensors dequantised with the ``gguf`` package ourselves
    (``transformers`` 5 insists on ``accelerate`` for GGUF models, and reads the file twice)."""
    try:
        import gguf
    except ImportError as e:
        raise CheckpointError(f"reading '{source.name}' needs the 'gguf' package (pip install gguf)") from e
    from transformers import AutoConfig, Gemma3TextModel

    folder, name = os.path.split(os.path.abspath(source.path))
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if config.model_type != "gemma3_text":
        raise _need_gemma3(name, config.model_type)
    if (config.hidden_size, config.num_hidden_layers) != (source.hidden_size, source.num_hidden_states - 1):
        raise CheckpointError(f"'{name}': transformers read a different model size than its GGUF header states")
    with torch.device("meta"):
        expected = list(Gemma3TextModel(config).state_dict())
    reader = gguf.GGUFReader(source.path)
    stored = {t.name: t for t in reader.tensors}
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3, config.num_hidden_layers)
    state_dict = {}
    for done, key in enumerate(expected, 1):
        stem, suffix = key.rsplit(".", 1)
        gguf_name = names.get_name("model." + stem)
        tensor = stored.get(f"{gguf_name}.{suffix}") if gguf_name else None
        if tensor is None:
            raise CheckpointError(f"'{name}' has no tensor for the Gemma 3 weight '{key}' (GGUF name {gguf_name!r})")
        values = torch.from_numpy(gguf.dequantize(tensor.data, tensor.tensor_type).copy())
        if key.endswith("norm.weight"):
            values = values - 1  # llama.cpp stores Gemma's RMSNorm scales as 1 + weight
        state_dict[key] = values.reshape(tuple(reversed([int(d) for d in tensor.shape]))).to(dtype)
        if progress is not None:
            progress(done, len(expected))
    model = Gemma3TextModel.from_pretrained(None, config=config, state_dict=state_dict, dtype=dtype)
    tokenizer = load_tokenizer(source.tokenizer_dir) if source.tokenizer_dir else gguf_tokenizer(source.path)
    return model, tokenizer
