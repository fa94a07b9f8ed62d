"""The LTX-2.5 text encoder file: Gemma 4 fine-tuned for LTX, its tokenizer, its version, prompt encoding.

The official file (``text_encoders/gemma4-12b-with-proj-ltx-2.5-bf16.safetensors``) carries everything:

* ``gemma_config`` (metadata): the Hugging Face ``gemma4_unified`` config as JSON, with a top-level
  ``gemma_version`` (``"gemma4-12b-ltx-v1"``) naming the LTX fine-tune;
* the language model under ``model.`` (``model.embed_tokens``, ``model.layers.N``, ``model.norm``; a Hugging Face
  export nests it as ``model.language_model.``), the unused vision / audio embedders (``vision_model.``,
  ``multi_modal_projector.``, ``audio_projector.``);
* the text projection of the LTX text path (``text_embedding_projection.{video,audio}_aggregate_embed``);
* the tokenizer: ``tokenizer_json`` (a uint8 tensor holding the ``tokenizers`` JSON) and the Hugging Face sidecars
  as ``hf_asset__<file name>`` tensors (``tokenizer_config.json``, ...), or as metadata strings in older packs.

A Hugging Face folder of the fine-tune (``config.json`` with ``gemma_version``, ``tokenizer.json``,
``tokenizer_config.json``, ``*.safetensors``) is read too; beside one, the projection comes from the LTX checkpoint.

The transformer it pairs with names the Gemma it was trained with in its metadata
(``gemma_source_checkpoint.gemma_version``); :func:`check_gemma_version` refuses any other, as the reference does:
Google's stock Gemma 4 and the Gemma 3 of LTX-2 / LTX-2.3 are not substitutes.

Encoding follows the reference: the prompt is stripped, tokenised (truncated to 1024 tokens), BOS is put first
when the tokenizer did not (Gemma 4's does not), and the sequence is left-padded to 1024. As for Gemma 3
(:mod:`.gemma`), only the real tokens are run, at their positions in the padded sequence.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .checkpoint import PICKLE_SUFFIXES, SafetensorsFile, check_keys, load_strict
from .errors import CheckpointError, ConfigError
from .gemma import MAX_TOKENS, Progress, Tokens, _read_json, _read_weight
from .gemma4 import Gemma4TextConfig, Gemma4TextModel
from .text_encoder import GemmaHiddenStates

log = logging.getLogger("ltx_av.gemma4")

OFFICIAL_FILE = "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors"
GEMMA_CONFIG_KEY = "gemma_config"
TOKENIZER_KEY = "tokenizer_json"
ASSET_PREFIX = "hf_asset__"
PROJECTION_PREFIX = "text_embedding_projection."
# Checkpoints from this model_version on name their Gemma (ltx-core 1.2.0's floor, below the 2.5 release).
_VERSIONED_SINCE = (2, 4, 0)
_LM_PARTS = ("embed_tokens.", "layers.", "norm.")
_SCALE_SUFFIXES = (".weight_scale", ".scale_weight", ".input_scale")
_VARIANT = "LTX-2.5"
_TITLE = "Gemma 4 text encoder"


# ---------------------------------------------------------------------------------------------------------------
# What a file or folder holds, read from headers only


@dataclass
class Gemma4Source:
    """A Gemma 4 text encoder on disk: its config, where its weights and projection are, its tokenizer."""

    path: str
    layout: str  # "safetensors" or "folder"
    config: Gemma4TextConfig
    gemma_version: str
    weight_files: tuple[str, ...]
    prefix: str  # the language model's key prefix: "model." or "model.language_model."
    tokenizer_json: str
    tokenizer_config: dict[str, Any]
    projection_file: str | None  # the file with text_embedding_projection.* (None: not bundled)
    model_type: str = "gemma4_unified"

    @property
    def name(self) -> str:
        return os.path.basename(self.path.rstrip(os.sep))


def inspect_gemma4(path: str | os.PathLike) -> Gemma4Source:
    """Resolve the LTX-2.5 text encoder (a ``.safetensors`` file or a Hugging Face folder) without reading weights.

    Raises :class:`CheckpointError` for anything else, naming what the file is: Gemma 3 (LTX-2 / LTX-2.3's
    encoder), a stock Gemma 4 (no ``gemma_version``), another model, a damaged file.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise CheckpointError(f"a Gemma 4 text encoder must be given as a file or folder path; got {type(path)}")
    path = os.fspath(path)
    if os.path.isdir(path):
        return _inspect_folder(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"Gemma 4 text encoder '{path}' does not exist")
    if path.lower().endswith(".safetensors"):
        return _inspect_file(path)
    kind = (
        "a pickle file, which LTX-AV never loads"
        if path.lower().endswith(PICKLE_SUFFIXES)
        else "not a .safetensors file"
    )
    raise CheckpointError(
        f"'{os.path.basename(path)}' is {kind}; the LTX-2.5 text encoder is {OFFICIAL_FILE} (or its Hugging Face folder)"
    )


def _inspect_file(path: str) -> Gemma4Source:
    header = SafetensorsFile(path)
    name = header.name
    raw = header.metadata.get(GEMMA_CONFIG_KEY)
    if raw is None:
        raise CheckpointError(_what_instead(header))
    try:
        config = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"'{name}': its '{GEMMA_CONFIG_KEY}' metadata is not valid JSON; re-download it") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"'{name}': its '{GEMMA_CONFIG_KEY}' metadata is not a JSON object")
    text_config, version = _check_family(config, name)
    prefix = _lm_prefix(header.tensors, name)
    if TOKENIZER_KEY not in header.tensors:
        raise CheckpointError(f"'{name}' has no '{TOKENIZER_KEY}' tensor, so its tokenizer is missing; re-download it")
    tokenizer_json = _text_tensor(header, TOKENIZER_KEY)
    if ASSET_PREFIX + "tokenizer_config.json" in header.tensors:
        tokenizer_config = _json_text(_text_tensor(header, ASSET_PREFIX + "tokenizer_config.json"), name)
    elif "tokenizer_config.json" in header.metadata:  # packs that keep small sidecars as metadata strings
        tokenizer_config = _json_text(header.metadata["tokenizer_config.json"], name)
    else:
        tokenizer_config = {}
    has_projection = any(k.startswith(PROJECTION_PREFIX) for k in header.tensors)
    return Gemma4Source(
        path, "safetensors", text_config, version, (path,), prefix, tokenizer_json, tokenizer_config,
        path if has_projection else None,
    )  # fmt: skip


def _inspect_folder(folder: str) -> Gemma4Source:
    name = os.path.basename(folder.rstrip(os.sep))
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        raise CheckpointError(f"Gemma folder '{folder}' has no config.json (a Hugging Face model folder has one)")
    text_config, version = _check_family(_read_json(config_path), name)
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".safetensors"))
    if not files:
        raise CheckpointError(f"Gemma folder '{folder}' has no .safetensors weights")
    headers = [SafetensorsFile(f) for f in files]
    tensors = {k: v for h in headers for k, v in h.tensors.items()}
    tokenizer_path = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(tokenizer_path):
        raise CheckpointError(f"Gemma folder '{folder}' has no tokenizer.json")
    with open(tokenizer_path, encoding="utf-8") as f:
        tokenizer_json = f.read()
    config_file = os.path.join(folder, "tokenizer_config.json")
    tokenizer_config = _read_json(config_file) if os.path.isfile(config_file) else {}
    # A folder holds Gemma alone; the projection then ships in the LTX checkpoint.
    return Gemma4Source(
        folder, "folder", text_config, version, tuple(files), _lm_prefix(tensors, name), tokenizer_json,
        tokenizer_config, None,
    )  # fmt: skip


def _check_family(config: dict[str, Any], name: str) -> tuple[Gemma4TextConfig, str]:
    family = config.get("model_type")
    if isinstance(family, str) and family.startswith("gemma3"):
        raise CheckpointError(_gemma3_message(name))
    if family == "gemma4":
        raise CheckpointError(
            f"'{name}' is a dense Gemma 4 (an instruct model such as gemma-4-E2B-it), not the LTX-2.5 text encoder; "
            f"use {OFFICIAL_FILE}"
        )
    try:
        text_config = Gemma4TextConfig.from_dict(config, f"'{name}'")
    except ConfigError as e:
        raise CheckpointError(str(e)) from e
    version = config.get("gemma_version")
    if version is None:
        raise CheckpointError(
            f"'{name}' is a stock Gemma 4 (its config declares no gemma_version). LTX-2.5 was trained with Gemma 4 "
            f"fine-tuned for LTX ('gemma4-12b-ltx-v1'), which Google's release cannot replace: use {OFFICIAL_FILE}"
        )
    if not isinstance(version, str):
        raise CheckpointError(f"'{name}': its config's gemma_version is {version!r}; expected a name")
    return text_config, version


def _gemma3_message(name: str) -> str:
    return (
        f"'{name}' is Gemma 3, the text encoder of LTX-2 and LTX-2.3. LTX-2.5 needs its own text encoder, Gemma 4 "
        f"fine-tuned for LTX with the text projection bundled: {OFFICIAL_FILE}"
    )


def _what_instead(header: SafetensorsFile) -> str:
    """Why a file without ``gemma_config`` is not the LTX-2.5 text encoder, in terms of what it is."""
    keys = header.tensors
    name = header.name
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return f"'{name}' is an LTX transformer / checkpoint, not the LTX-2.5 text encoder ({OFFICIAL_FILE})"
    for prefix in ("model.", "language_model.model.", "model.language_model.", ""):
        layer0 = f"{prefix}layers.0.self_attn."
        if layer0 + "q_norm.weight" in keys:
            layers = {k[len(prefix) + 7 :].split(".", 1)[0] for k in keys if k.startswith(prefix + "layers.")}
            if all(f"{prefix}layers.{i}.self_attn.v_proj.weight" in keys for i in layers):
                return _gemma3_message(name)
            # Global layers without v_proj (keys reused as values): a Gemma 4 12B, repacked without its config.
            return (
                f"'{name}' is a Gemma 4 without the config and version the LTX-2.5 text encoder carries "
                f"('{GEMMA_CONFIG_KEY}' metadata): a stock Gemma 4 repack cannot replace the LTX fine-tune; use "
                f"{OFFICIAL_FILE}"
            )
    return f"'{name}' has no '{GEMMA_CONFIG_KEY}' metadata: it is not the LTX-2.5 text encoder ({OFFICIAL_FILE})"


def _lm_prefix(tensors: Mapping[str, Any], name: str) -> str:
    for prefix in ("model.", "model.language_model."):
        if prefix + "layers.0.input_layernorm.weight" in tensors and prefix + "embed_tokens.weight" in tensors:
            return prefix
    raise CheckpointError(
        f"'{name}' holds no Gemma 4 language model (no model.embed_tokens / model.layers.0 tensors, nor the "
        "model.language_model.* layout of a Hugging Face export)"
    )


def _text_tensor(header: SafetensorsFile, key: str) -> str:
    tensor = header.tensor(key)
    if tensor.dtype == torch.int8:  # some packs store the bytes signed
        tensor = tensor.view(torch.uint8)
    if tensor.dtype != torch.uint8 or tensor.ndim != 1:
        raise CheckpointError(f"'{header.name}': '{key}' should be a 1-D uint8 tensor of text bytes")
    try:
        return bytes(tensor.numpy()).decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"'{header.name}': '{key}' is not UTF-8 text; re-download the file") from e


def _json_text(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"'{name}': its tokenizer_config.json is not valid JSON") from e
    if not isinstance(value, dict):
        raise CheckpointError(f"'{name}': its tokenizer_config.json is not a JSON object")
    return value


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer


def _token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json spells it: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class PromptTokenizer:
    """The ``tokenizers`` tokenizer of the file, configured as the reference's ``transformers`` tokenizer is.

    The named special tokens of ``tokenizer_config.json`` are registered (so a literal ``<bos>`` in a prompt is
    one token); ``add_bos_token`` / ``add_eos_token``, when the config states them, decide what encoding adds.
    """

    def __init__(self, tokenizer_json: str, config: Mapping[str, Any], name: str, max_length: int = MAX_TOKENS):
        from tokenizers import AddedToken, Tokenizer, processors

        try:
            self.backend = Tokenizer.from_str(tokenizer_json)
        except Exception as e:  # the tokenizers library raises a bare Exception for malformed JSON
            raise CheckpointError(
                f"the tokenizer in '{name}' cannot be read ({str(e)[:200]}); re-download the file"
            ) from e
        self.name = name
        self.max_length = max_length
        # transformers registers every special token the config names (new ones get new ids), so a literal
        # "<bos>" in a prompt is one token; unnamed roles fall back to Gemma's spelling.
        named = {role: _token_text(config.get(f"{role}_token")) for role in ("bos", "eos", "unk", "pad")}
        extra = config.get("extra_special_tokens") or config.get("additional_special_tokens") or []
        extra = extra.values() if isinstance(extra, dict) else extra
        wanted = [t for t in (*named.values(), *(_token_text(e) for e in extra)) if t]
        present = {str(t.content) for t in self.backend.get_added_tokens_decoder().values()}
        self.backend.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in dict.fromkeys(wanted) if t not in present]
        )
        roles = {role: token or f"<{role}>" for role, token in named.items()}
        self.bos_id = self.backend.token_to_id(roles["bos"])
        if self.bos_id is None:
            raise CheckpointError(f"the tokenizer of '{name}' has no '{roles['bos']}' token: it is not Gemma's")
        self.eos_id = self.backend.token_to_id(roles["eos"])
        pad = self.backend.token_to_id(roles["pad"])
        self.pad_id = pad if pad is not None else (self.eos_id or 0)
        if "add_bos_token" in config or "add_eos_token" in config:
            # Stated flags replace the file's post-processor: BOS / EOS around the text, as the flags say.
            bos = [roles["bos"]] if config.get("add_bos_token") else []
            eos = [roles["eos"]] if config.get("add_eos_token") and self.eos_id is not None else []
            self.backend.post_processor = processors.TemplateProcessing(
                single=" ".join([*(f"{t}:0" for t in bos), "$A:0", *(f"{t}:0" for t in eos)]),
                special_tokens=[(t, self.backend.token_to_id(t)) for t in (*bos, *eos)],
            )
        direction = config.get("truncation_side", "right")
        self.backend.enable_truncation(max_length, direction=direction if direction in ("left", "right") else "right")
        self.backend.no_padding()

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def ids(self, prompt: str) -> list[int]:
        """The ids the reference feeds Gemma for one prompt (stripped, BOS first, at most ``max_length``)."""
        full = self.backend.encode(prompt.strip(), add_special_tokens=True)
        ids = list(full.ids)
        if not ids or ids[0] != self.bos_id:
            ids = [self.bos_id, *ids]
        if len(ids) > self.max_length or full.overflowing:
            ids = ids[: self.max_length]
            kept = self.backend.decode(ids[-8:], skip_special_tokens=True)
            log.warning(
                "prompt is longer than %d tokens; LTX reads no more, so it was cut after '...%s'", self.max_length, kept
            )
        return ids


# ---------------------------------------------------------------------------------------------------------------
# The encoder


class Gemma4Encoder:
    """A loaded Gemma 4 text stack and its tokenizer, set up for LTX prompt encoding (same interface as
    :class:`.gemma.GemmaEncoder`)."""

    model_type = "gemma4_unified"

    def __init__(self, model: Gemma4TextModel, tokenizer: PromptTokenizer, source: Gemma4Source):
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.source = source
        self.max_length = tokenizer.max_length
        if len(tokenizer) > model.config.vocab_size + 1024:
            raise CheckpointError(
                f"the tokenizer of '{source.name}' has {len(tokenizer)} tokens but the model embeds "
                f"{model.config.vocab_size}: tokenizer and model do not belong together"
            )

    @property
    def gemma_version(self) -> str:
        return self.source.gemma_version

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def num_hidden_states(self) -> int:
        return self.model.config.num_hidden_states

    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.embed_tokens.weight.dtype

    def to(self, device: torch.device | str) -> Gemma4Encoder:
        self.model.to(device)
        return self

    def token_ids(self, prompt: str) -> list[int]:
        return self.tokenizer.ids(prompt)

    def tokenize(self, prompts: Sequence[str]) -> Tokens:
        """``[B, max_length]`` ids and mask, left padded, as the reference tokenises each prompt."""
        if isinstance(prompts, str):
            prompts = [prompts]
        rows = [self.token_ids(p) for p in prompts]
        ids = torch.full((len(rows), self.max_length), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), self.max_length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, self.max_length - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, self.max_length - len(row) :] = 1
        return Tokens(ids, mask)

    @torch.no_grad()
    def hidden_states(
        self, tokens: Tokens, *, trim_padding: bool = True, progress: Progress | None = None
    ) -> GemmaHiddenStates:
        """All hidden states ``[B, S, D, L]``; ``S`` is the longest prompt (``trim_padding``) or the padded length.
        Positions are the tokens' indices in the padded sequence either way."""
        ids, mask = tokens.input_ids, tokens.attention_mask.bool()
        length = ids.shape[1]
        kept = int(mask.sum(dim=1).max()) if trim_padding else length
        ids, mask = ids[:, length - kept :].to(self.device), mask[:, length - kept :].to(self.device)
        positions = torch.arange(length - kept, length, device=self.device).expand(ids.shape[0], -1)
        states = self.model(ids, mask, positions, progress)
        return GemmaHiddenStates(states, mask, length)

    def encode(
        self, prompts: Sequence[str], *, trim_padding: bool = True, progress: Progress | None = None
    ) -> GemmaHiddenStates:
        """Prompts -> hidden states for the LTX text path."""
        return self.hidden_states(self.tokenize(prompts), trim_padding=trim_padding, progress=progress)


def load_gemma4(
    path: str | os.PathLike | Gemma4Source,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> Gemma4Encoder:
    """Load the LTX-2.5 text encoder's language model (strictly: every tensor of ``model.embed_tokens``,
    ``model.layers.*``, ``model.norm``, no other under them) and its tokenizer. Float8 weights are upcast.
    ``progress(done, total)`` per tensor read."""
    source = path if isinstance(path, Gemma4Source) else inspect_gemma4(path)
    cfg = source.config
    log.info(
        "loading Gemma 4 (%s, %d wide, %d layers) from %s", source.gemma_version, cfg.hidden_size,
        cfg.num_hidden_layers, source.path,
    )  # fmt: skip
    with torch.device("meta"):
        model = Gemma4TextModel(cfg)
    files = [SafetensorsFile(f) for f in source.weight_files]
    located = {
        key: file
        for file in files
        for key in file.tensors
        if key.startswith(tuple(source.prefix + part for part in _LM_PARTS))
    }
    # Float8 files keep per-tensor scales beside their weights; they are folded in when the weight is read.
    weights = {k: f for k, f in located.items() if not k.endswith(_SCALE_SUFFIXES)}
    shapes = {k[len(source.prefix) :]: tuple(f.tensors[k].shape) for k, f in weights.items()}
    check_keys(model, shapes, component=_TITLE, source=source.path, variant=_VARIANT)
    state_dict = {}
    for done, (key, file) in enumerate(sorted(weights.items()), 1):
        state_dict[key[len(source.prefix) :]] = _read_weight(
            file, key, located, dtype, advice=f"the bf16 release, {OFFICIAL_FILE}"
        )
        if progress is not None:
            progress(done, len(weights))
    model = load_strict(model, state_dict, component=_TITLE, source=source.path, variant=_VARIANT).to(device)
    tokenizer = PromptTokenizer(source.tokenizer_json, source.tokenizer_config, source.name)
    return Gemma4Encoder(model, tokenizer, source)


# ---------------------------------------------------------------------------------------------------------------
# Which Gemma a checkpoint was trained with


def _version_numbers(text: Any) -> tuple[int, ...]:
    """``model_version`` as ltx-core compares it: leading dot-separated whole numbers (``"2.5.0"`` -> (2, 5, 0))."""
    numbers: list[int] = []
    for part in (text if isinstance(text, str) else "").split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


def expected_gemma_version(checkpoint_metadata: Mapping[str, str], checkpoint_name: str) -> str | None:
    """``gemma_source_checkpoint.gemma_version`` of a transformer file's metadata (None when it names none)."""
    raw = checkpoint_metadata.get("gemma_source_checkpoint")
    if raw is None:
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"'{checkpoint_name}': its gemma_source_checkpoint metadata is not valid JSON") from e
    if not isinstance(value, dict):
        raise CheckpointError(f"'{checkpoint_name}': its gemma_source_checkpoint metadata is not a JSON object")
    version = value.get("gemma_version")
    return version if isinstance(version, str) else None


def check_gemma_version(
    checkpoint_metadata: Mapping[str, str],
    *,
    gemma_model_type: str,
    gemma_version: str | None,
    checkpoint_name: str,
    gemma_name: str,
) -> None:
    """Refuse a text encoder the checkpoint was not trained with, as ltx-core 1.2.0 does.

    A checkpoint whose metadata has ``gemma_source_checkpoint`` (LTX-2.5) needs exactly that ``gemma_version``;
    one with ``model_version`` 2.4 or later must name it; older ones (LTX-2, LTX-2.3) need Gemma 3.
    ``checkpoint_metadata``: the transformer file's safetensors metadata (JSON values as strings).
    """
    if "gemma_source_checkpoint" in checkpoint_metadata:
        expected = expected_gemma_version(checkpoint_metadata, checkpoint_name)
        if expected == gemma_version:
            return
        if gemma_version is None and gemma_model_type.startswith("gemma3"):
            raise CheckpointError(
                _gemma3_message(gemma_name) + f" ('{checkpoint_name}' was trained with gemma_version '{expected}')"
            )
        if gemma_version is None:
            raise CheckpointError(
                f"'{gemma_name}' is a stock Gemma 4 (no gemma_version); '{checkpoint_name}' was trained with the LTX "
                f"fine-tune '{expected}', which Google's release cannot replace: use {OFFICIAL_FILE}"
            )
        raise CheckpointError(
            f"Gemma version mismatch: '{checkpoint_name}' was trained with gemma_version '{expected}' but "
            f"'{gemma_name}' is '{gemma_version}'; use the text encoder released with this checkpoint"
        )
    model_version = checkpoint_metadata.get("model_version")
    if _version_numbers(model_version) >= _VERSIONED_SINCE:
        if gemma_version is None:
            log.warning(
                "'%s' (model_version %s) does not name the Gemma it was trained with and '%s' declares no "
                "gemma_version either; their match is not checked",
                checkpoint_name, model_version, gemma_name,
            )  # fmt: skip
            return
        raise CheckpointError(
            f"'{checkpoint_name}' has model_version {model_version!r} but no gemma_source_checkpoint.gemma_version "
            f"in its metadata, so '{gemma_name}' ('{gemma_version}') cannot be checked against it"
        )
    if not gemma_model_type.startswith("gemma3"):
        raise CheckpointError(
            f"'{checkpoint_name}' is an LTX-2 / LTX-2.3 checkpoint, trained with Gemma 3, but '{gemma_name}' is "
            f"{gemma_model_type!r} (the Gemma 4 of LTX-2.5); use Gemma 3 12B (gemma-3-12b-it-qat-q4_0-unquantized)"
        )


def check_encoder_for_checkpoint(checkpoint_metadata: Mapping[str, str], encoder: Any, checkpoint_name: str) -> None:
    """:func:`check_gemma_version` for a loaded encoder (a :class:`Gemma4Encoder`, or Gemma 3's ``GemmaEncoder``)."""
    check_gemma_version(
        checkpoint_metadata,
        gemma_model_type=getattr(encoder, "model_type", "gemma3"),
        gemma_version=getattr(encoder, "gemma_version", None),
        checkpoint_name=checkpoint_name,
        gemma_name=encoder.source.name,
    )
