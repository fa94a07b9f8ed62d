"""LoRA adapters for the transformer: reading the files, checking them against a model, and the weights a model
with LoRAs computes with.

A LoRA changes a linear layer's weight ``W [out, in]`` by ``strength · scale · B @ A``, with ``A`` ("down",
``[rank, in]``) and ``B`` ("up", ``[out, rank]``). ``scale`` is ``alpha / rank`` when the file stores an ``.alpha``
for the layer (the kohya / ComfyUI convention) and 1 otherwise. Official LTX-2 files (the trainer's PEFT output)
carry no alpha and ltx-core never reads one, so for them the change is ``strength · B @ A``.

Key layouts read, all mapped onto the transformer's own module paths (the checkpoint keys without
``model.diffusion_model.``): the prefixes ``diffusion_model.`` (official files, ComfyUI), ``model.diffusion_model.``,
``transformer.`` (diffusers), ``base_model.model.`` (raw PEFT) or none, and ``lora_unet_`` followed by the module
path with its dots written as underscores (kohya); factors named ``lora_A`` / ``lora_B`` (with ``.weight``, bare,
or ``.default.weight``) or ``lora_down`` / ``lora_up`` (``.weight``); an optional ``.alpha`` per layer.

Two ways to apply a stack of LoRAs:

* :func:`fuse_loras_` adds them into the model's own weights, in place, once: the model then computes like one
  without LoRAs (no per-forward cost). Only for a caller that owns the model alone and knows its LoRAs when it
  loads it (the headless pipeline's ``loras``): the change cannot be taken back exactly, and anyone else holding
  the model would see it.
* :class:`LoraPatches` (everything else, e.g. ComfyUI, where one base model is shared by several LoRA loaders)
  never modifies the model.

With patches, nothing is merged into the model. Its tensors stay exactly as loaded, so one model can be shared by
holders with different LoRAs or strengths, and changing a strength costs no reload. A :class:`LoraPatches` makes
each patched weight when it is needed: block weights as the block runs (:class:`.offload.BlockWeights`: one
block's patched weights exist at a time, two while the next block is prefetched on CUDA), the few outside the
blocks once per forward. A patched weight is one ``addmm`` in the compute dtype: ``W + up @ down`` where ``up`` holds
``strength · scale · B`` of every LoRA of the stack side by side and ``down`` their ``A`` stacked, so the sum over
the stack is a single product rounded once. ``W`` is taken after any float8 dequantisation and the result is never
written back: no re-quantisation, so no rounding to float8 ever touches the LoRA's change (ltx-core, on CUDA,
rounds each fused weight back to float8 stochastically; on the CPU it adds in the compute dtype, as here).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
import mmap
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import FLOAT8_DTYPES, PICKLE_SUFFIXES, SafetensorsFile
from .config import LTX2, LTX23, LTX25
from .errors import CheckpointError, InputError
from .offload import BLOCKS_PREFIX, BlockPatches, BlockWeights, Placement, block_weights_of

log = logging.getLogger("ltx_av.lora")

# key suffix -> which part of a layer's adapter it holds; a longer suffix is tried before one it ends with.
FACTOR_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".lora_A.default.weight", "down"),
    (".lora_B.default.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".lora_A", "down"),
    (".lora_B", "up"),
    (".alpha", "alpha"),
)
# Prefixes before the module path (the first that matches is removed).
MODULE_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "base_model.model.", "transformer.")
# Kohya files write the module path with underscores for dots after this prefix.
UNDERSCORED_PREFIX = "lora_unet_"
# Adapters other than plain LoRA, by a key pattern only they use (ComfyUI's weight adapters).
OTHER_ADAPTERS = (
    (r"\.dora_scale$|lora_magnitude_vector", "DoRA"),
    (r"\.lora_mid\.", "LoCon with a mid factor"),
    (r"\.hada_", "LoHa"),
    (r"\.lokr_", "LoKr"),
    (r"\.oft_", "OFT"),
    (r"\.diff_b$", "bias differences"),
    (r"\.diff$", "full weight differences"),
)
# The text connectors live under the transformer's prefix in the checkpoint but belong to the text path, which
# LTX_MODEL does not hold; ltx-core's transformer loader leaves LoRA layers there unapplied as well.
CONNECTOR_MODULES = ("video_embeddings_connector", "audio_embeddings_connector")

# Module-name fragments that only one variant has, and fragments of other model families' layer names.
_ONLY_IN = {
    LTX2: ("caption_projection",),
    LTX23: ("to_gate_logits", "prompt_adaln_single", "prompt_scale_shift_table"),
}
_FAMILIES = (
    (("double_blocks", "single_blocks", "single_transformer_blocks", "img_attn", "txt_attn"), "FLUX"),
    (("input_blocks", "output_blocks", "down_blocks", "up_blocks", "mid_block"), "Stable Diffusion / SDXL"),
    (("joint_blocks",), "Stable Diffusion 3"),
    (("self_attn", "cross_attn"), "Wan"),
    (("lora_te", "text_model", "te1_", "te2_"), "a text encoder"),
    (("proj_in", "time_embed", "norm_q", "norm_k", "audio_proj_in"), "LTX-2 in the diffusers naming"),
)
_BLOCK_INDEX = re.compile(r"^transformer_blocks[._](\d+)[._]")


@dataclass(frozen=True)
class LoraLayer:
    """One adapted layer as the file stores it; the factors are read when the LoRA is bound to a model."""

    module: str  # module path as the file names it, prefix and factor name removed
    underscored: bool  # kohya naming: dots written as underscores
    down_key: str
    up_key: str
    down_shape: tuple[int, ...]  # [rank, in]
    up_shape: tuple[int, ...]  # [out, rank]
    alpha: float | None

    @property
    def rank(self) -> int:
        return self.down_shape[0]

    @property
    def scale(self) -> float:
        """``alpha / rank`` when the file gives an alpha, else 1."""
        return self.alpha / self.rank if self.alpha is not None else 1.0


@dataclass(frozen=True)
class LoraFile:
    """A LoRA ``.safetensors`` file: its layers (checked among themselves) and its metadata (e.g. an IC-LoRA's
    ``reference_downscale_factor``). Only the header and the alphas have been read."""

    path: str
    layers: tuple[LoraLayer, ...]
    metadata: dict[str, str]
    size: int
    mtime_ns: int
    file: SafetensorsFile = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def ranks(self) -> list[int]:
        return sorted({layer.rank for layer in self.layers})


@dataclass(frozen=True)
class AppliedLora:
    """A LoRA bound to one model at one strength: model parameter key -> (down ``[rank, in]``, up ``[out, rank]``,
    scale) as stored in the file, plus the text-connector layers it has that the model does not hold."""

    file: LoraFile
    strength: float
    factors: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = field(repr=False)
    left_out: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def metadata(self) -> dict[str, str]:
        """The file's metadata (an IC-LoRA declares its reference scale there)."""
        return self.file.metadata

    def with_strength(self, strength: float) -> AppliedLora:
        return AppliedLora(self.file, float(strength), self.factors, self.left_out)


# -- reading ---------------------------------------------------------------------------------------------------------


def read_lora(path: str | os.PathLike) -> LoraFile:
    """Open a LoRA file and check its key layout and factor shapes (reads the header and any alphas only)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"a LoRA must be given as a file path; got a {type(path).__name__}")
    path = os.fspath(path)
    name = os.path.basename(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"'{name}' is a pickle file ({suffix}). LTX-AV loads LoRAs only from .safetensors files, because "
            "unpickling can run arbitrary code; use (or convert to) the .safetensors version."
        )
    if not os.path.isfile(path):
        raise CheckpointError(f"LoRA file '{path}' does not exist or is not a file")
    file = SafetensorsFile(path)
    if not file.tensors:
        raise CheckpointError(f"'{name}' holds no tensors; it is not a LoRA")
    parts, others, strangers = _classify(file)
    if others:
        kinds = sorted({kind for _, kind in others})
        raise CheckpointError(
            f"'{name}' is a {' / '.join(kinds)} adapter (e.g. key '{others[0][0]}'); LTX-AV applies plain LoRAs only "
            "(lora_A/lora_B or lora_down/lora_up pairs with an optional alpha)"
        )
    if not parts:
        looks_like_model = any(k.endswith((".weight", ".bias")) for k in strangers)
        hint = (
            "; it looks like a model checkpoint: load a full model with LTX-AV Load Model" if looks_like_model else ""
        )
        raise CheckpointError(
            f"'{name}' is not a LoRA: none of its {len(file.tensors)} tensors is a LoRA factor (lora_A/lora_B or "
            f"lora_down/lora_up), e.g. {_first(strangers, 3)}{hint}"
        )
    if strangers:
        raise CheckpointError(
            f"'{name}' holds {len(strangers)} tensors that are not LoRA factors ({_first(strangers, 3)}); LTX-AV "
            "applies plain LoRAs only (lora_A/lora_B or lora_down/lora_up pairs with an optional alpha)"
        )
    layers = tuple(_layer(file, module, underscored, keys) for (module, underscored), keys in parts.items())
    stat = os.stat(path)
    return LoraFile(path, layers, dict(file.metadata), stat.st_size, stat.st_mtime_ns, file)


def _classify(
    file: SafetensorsFile,
) -> tuple[dict[tuple[str, bool], dict[str, str]], list[tuple[str, str]], list[str]]:
    """(module, underscored) -> {role: key}; keys of other adapter kinds; keys that are no adapter part at all."""
    parts: dict[tuple[str, bool], dict[str, str]] = {}
    others: list[tuple[str, str]] = []
    strangers: list[str] = []
    for key in file.tensors:
        found = next(((s, role) for s, role in FACTOR_SUFFIXES if key.endswith(s)), None)
        if found is None:
            kind = next((kind for pattern, kind in OTHER_ADAPTERS if re.search(pattern, key)), None)
            if kind is not None:
                others.append((key, kind))
            else:
                strangers.append(key)
            continue
        module, underscored = _module_path(key[: -len(found[0])])
        roles = parts.setdefault((module, underscored), {})
        if found[1] in roles:
            raise CheckpointError(
                f"'{file.name}' has two {found[1]} tensors for layer '{module}' ('{roles[found[1]]}' and '{key}'); "
                "a LoRA has one of each per layer"
            )
        roles[found[1]] = key
    # An alpha without factors is some other model's parameter (e.g. a vocoder's snake activation).
    for module, roles in list(parts.items()):
        if roles.keys() == {"alpha"}:
            strangers.append(roles.pop("alpha"))
            del parts[module]
    return parts, others, strangers


def _module_path(stem: str) -> tuple[str, bool]:
    if stem.startswith(UNDERSCORED_PREFIX):
        return stem[len(UNDERSCORED_PREFIX) :], True
    for prefix in MODULE_PREFIXES:
        if stem.startswith(prefix):
            return stem[len(prefix) :], False
    return stem, False


def _layer(file: SafetensorsFile, module: str, underscored: bool, keys: dict[str, str]) -> LoraLayer:
    missing = [role for role in ("down", "up") if role not in keys]
    if missing:
        have = ", ".join(f"'{k}'" for k in keys.values())
        raise CheckpointError(
            f"'{file.name}': layer '{module}' has {have} but no {' and no '.join(missing)} factor "
            "(lora_A / lora_down is down, lora_B / lora_up is up); the file is incomplete"
        )
    down, up = file.tensors[keys["down"]], file.tensors[keys["up"]]
    for key, info in ((keys["down"], down), (keys["up"], up)):
        if not info.dtype.is_floating_point:
            raise CheckpointError(f"'{file.name}': '{key}' holds {info.dtype}; LoRA factors are floating point")
        if len(info.shape) != 2 or 0 in info.shape:
            raise CheckpointError(
                f"'{file.name}': '{key}' has shape {list(info.shape)}; LoRA factors of a linear layer are matrices "
                "(down [rank, in], up [out, rank])"
            )
    if down.shape[0] != up.shape[1]:
        raise CheckpointError(
            f"'{file.name}': layer '{module}' has down {list(down.shape)} and up {list(up.shape)}, whose ranks "
            f"differ ({down.shape[0]} vs {up.shape[1]}); down is [rank, in] and up [out, rank]"
        )
    alpha = None
    if "alpha" in keys:
        alpha = _alpha(file, keys["alpha"])
    return LoraLayer(module, underscored, keys["down"], keys["up"], down.shape, up.shape, alpha)


def _alpha(file: SafetensorsFile, key: str) -> float:
    info = file.tensors[key]
    count = 1
    for d in info.shape:
        count *= d
    if count != 1 or info.dtype == torch.bool:
        raise CheckpointError(
            f"'{file.name}': '{key}' has shape {list(info.shape)} ({info.dtype}); an alpha is one number"
        )
    value = float(file.read(key).reshape(()).item())
    if not torch.isfinite(torch.tensor(value)):
        raise CheckpointError(f"'{file.name}': '{key}' is {value}; an alpha is a finite number")
    return value


# -- binding to a model ----------------------------------------------------------------------------------------------


def bind_lora(lora: LoraFile, model: nn.Module, variant: str, strength: float = 1.0) -> AppliedLora:
    """Match ``lora``'s layers with ``model``'s linear weights, check every shape, and read the factors.

    Raises :class:`CheckpointError` for a layer the model does not have (naming the first few and the model the
    LoRA seems to be for) or whose shape differs from the model's weight. A LoRA may change any subset of layers;
    how many it changes, and where, is logged."""
    targets, left_out = _match(lora, LinearShapes.of(model), variant)
    factors = {
        module + ".weight": (_read_factor(lora, layer.down_key), _read_factor(lora, layer.up_key), layer.scale)
        for module, layer in targets.items()
    }
    applied = AppliedLora(lora, float(strength), factors, left_out)
    _log_binding(applied, variant, len(model.transformer_blocks))
    return applied


def _is_linear_weight(name: str, p: torch.Tensor) -> bool:
    return p.ndim == 2 and name.endswith(".weight")


def _read_factor(lora: LoraFile, key: str) -> torch.Tensor:
    t = lora.file.read(key)
    if not _all_finite(t):
        raise CheckpointError(f"'{lora.name}': '{key}' contains NaN or infinite values; the file is damaged")
    return t


# A LoRA factor is small (rank x width). Torch works on one in a parallel region whose threads must all be scheduled
# before it returns; on a CPU busy with other work that wait is several times the work itself, so these small
# per-factor steps run in numpy, on the calling thread.


def _all_finite(t: torch.Tensor) -> bool:
    if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        return bool(torch.isfinite(t).all())
    if t.dtype == torch.bfloat16:  # no numpy dtype: an exponent of all ones is an infinity or a NaN
        return not bool(((t.contiguous().view(torch.int16).numpy() & 0x7F80) == 0x7F80).any())
    return bool(np.isfinite(t.numpy()).all())


def _as_float32(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if t.device.type == "cpu" and device.type == "cpu" and t.dtype == torch.bfloat16:
        # bfloat16 is float32's top half: widen the bits
        return torch.from_numpy((t.contiguous().view(torch.int16).numpy().astype(np.int32) << 16).view(np.float32))
    return t.to(device, torch.float32)


def _shown_key(layer: LoraLayer) -> str:
    return f"'{layer.down_key}'"


def _seems_for(lora: LoraFile, variant: str, blocks: int) -> str:
    """A sentence on the model the LoRA seems to be made for, from its layer names and sizes."""
    modules = [layer.module for layer in lora.layers]
    for other, fragments in _ONLY_IN.items():
        if other != variant and any(f in m for m in modules for f in fragments):
            found = next(f for f in fragments if any(f in m for m in modules))
            return f"It was made for {other} (only {other} has '{found}' layers); use it with an {other} checkpoint."
    for layer in lora.layers:
        # The timestep AdaLN makes 6 modulation rows per width in LTX-2 and 9 in LTX-2.3.
        if layer.module.replace("_", ".").endswith("adaln.single.linear") and "prompt" not in layer.module:
            rows = layer.up_shape[0] / layer.down_shape[1]
            other = {6: LTX2, 9: LTX23}.get(rows)
            if other is not None and other != variant:
                return (
                    f"It was made for {other} (its '{layer.module}' has the {int(rows)} modulation rows per width "
                    f"of {other}); use it with an {other} checkpoint."
                )
    for fragments, family in _FAMILIES:
        if any(f in m for m in modules for f in fragments):
            return f"Its layer names are those of {family}, not of the official LTX-2 / LTX-2.3 transformer."
    indices = [int(m.group(1)) for m in map(_BLOCK_INDEX.match, modules) if m]
    if indices and max(indices) >= blocks:
        return (
            f"It has layers for blocks up to {max(indices)}, but this model has {blocks} blocks: a LoRA for a model "
            "of another size."
        )
    if not any("audio" in m for m in modules):
        return (
            "It has no audio layers: a LoRA for a video-only model such as LTX-Video 0.9.x? LTX-2 and LTX-2.3 "
            "LoRAs come from LTX-2 / LTX-2.3 checkpoints."
        )
    return f"It seems to be made for another model than {variant}."


def _stream(module: str) -> str:
    inner = module[len(BLOCKS_PREFIX) :].split(".", 1)[1] if module.startswith(BLOCKS_PREFIX) else ""
    if not inner:
        return "outside"
    if inner.startswith(("audio_to_video_attn", "video_to_audio_attn")):
        return "audio<->video"
    return "audio" if inner.startswith("audio_") else "video"


def _log_binding(applied: AppliedLora, variant: str, blocks: int) -> None:
    counts = {"video": 0, "audio": 0, "audio<->video": 0, "outside": 0}
    touched_blocks = set()
    for key in applied.factors:
        counts[_stream(key)] += 1
        match = _BLOCK_INDEX.match(key)
        if match:
            touched_blocks.add(int(match.group(1)))
    streams = ", ".join(f"{name} {n}" for name, n in counts.items() if name != "outside" and n)
    log.info(
        "LoRA '%s' (rank %s) at strength %g on the %s transformer: changes %d layers in %d of %d blocks (%s) and %d "
        "outside the blocks",
        applied.name,
        "/".join(map(str, applied.file.ranks)),
        applied.strength,
        variant,
        len(applied.factors),
        len(touched_blocks),
        blocks,
        streams or "none",
        counts["outside"],
    )
    if applied.left_out:
        log.warning(
            "LoRA '%s': %d layers of the text connectors were left out: they belong to the text encoder's path, "
            "not to LTX_MODEL (ltx-core does not apply them either; ComfyUI core does)",
            applied.name,
            len(applied.left_out),
        )
    hinted = _variant_in_name(applied.file)
    if hinted is not None and hinted != variant:
        log.warning(
            "LoRA '%s' seems to be made for %s (from its name or metadata) but the model is %s; its layers have "
            "the same names and sizes in both, so it loads, but expect it to do little or the wrong thing",
            applied.name,
            hinted,
            variant,
        )


def _variant_in_name(lora: LoraFile) -> str | None:
    text = " ".join([lora.name, *(str(v)[:200] for k, v in lora.metadata.items() if "model" in k.lower())]).lower()
    if re.search(r"ltx[-_ .]?2[._]5", text):  # before 2.3's: LTX-2.5 is a 22B model too
        return LTX25
    if re.search(r"ltx[-_ .]?2[._]3|\b22b\b", text):
        return LTX23
    if re.search(r"ltx[-_ .]?2(?![._]\d)|\b19b\b", text):
        return LTX2
    return None


# -- applying --------------------------------------------------------------------------------------------------------


def _stack_parts(stack: Sequence[AppliedLora]) -> dict[str, list[tuple[torch.Tensor, torch.Tensor, float]]]:
    """Model parameter key -> (down, up, strength x scale) of every LoRA of ``stack`` that changes it; LoRAs at
    strength 0 are left out."""
    parts: dict[str, list[tuple[torch.Tensor, torch.Tensor, float]]] = {}
    for applied in stack:
        if applied.strength == 0:
            continue
        for key, (down, up, scale) in applied.factors.items():
            parts.setdefault(key, []).append((down, up, applied.strength * scale))
    return parts


class LoraPatches:
    """The patched weights' factors of a LoRA stack, prepared for one placement of one model.

    Per patched weight: ``up = [c_1 B_1, c_2 B_2, ...]`` (``c_i = strength_i · scale_i``) and ``down = [A_1; A_2;
    ...]`` in the compute dtype, so ``W + up @ down`` is the weight with every LoRA of the stack applied; block
    factors live where the block weights are stored (pinned CPU memory when they stream), the others on the
    compute device. LoRAs at strength 0 are left out.
    """

    def __init__(self, stack: Sequence[AppliedLora], model: nn.Module):
        placement = model.placement or Placement(model.compute_device, model.compute_dtype, False, False)
        self.placement: Placement = placement
        parts = _stack_parts(stack)
        self.blocks: dict[int, BlockPatches] = {}
        self.outside: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        dtype = placement.dtype
        pin = placement.stream_blocks and placement.device.type == "cuda"
        for key, factors in parts.items():
            in_block = key.startswith(BLOCKS_PREFIX)
            device = placement.block_storage if in_block else placement.device
            up = torch.cat([(u.to(device, torch.float32) * c).to(dtype) for _, u, c in factors], dim=1)
            down = torch.cat([d.to(device, dtype) for d, _, _ in factors], dim=0)
            if pin and in_block:
                up, down = up.pin_memory(), down.pin_memory()
            if in_block:
                index, name = key[len(BLOCKS_PREFIX) :].split(".", 1)
                self.blocks.setdefault(int(index), {})[name] = (up, down)
            else:
                self.outside[key] = (up, down)
        self._block_weights: tuple[Any, BlockWeights] | None = None

    def __bool__(self) -> bool:
        return bool(self.blocks or self.outside)

    @property
    def nbytes(self) -> int:
        pairs = [*self.outside.values(), *(p for block in self.blocks.values() for p in block.values())]
        return sum(t.numel() * t.element_size() for pair in pairs for t in pair)

    def block_weights(self, model: nn.Module) -> BlockWeights:
        """The model's block materialiser with these patches (kept while the model's own one is unchanged)."""
        base = (model.block_weights, model.placement)
        if self._block_weights is None or self._block_weights[0] != base:
            self._block_weights = (base, block_weights_of(model).with_patches(self.blocks))
        return self._block_weights[1]

    def outside_weights(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The patched weights outside the blocks, as new tensors (the model's stay as they are)."""
        return {key: torch.addmm(model.get_parameter(key), up, down) for key, (up, down) in self.outside.items()}

    def forward(self, model: nn.Module, *args: Any) -> Any:
        """``model(*args)`` computed with the patched weights: blocks through :meth:`block_weights`, the weights
        outside the blocks swapped in for this call only (``torch.func.functional_call``)."""
        kwargs = {"block_weights": self.block_weights(model)}
        outside = self.outside_weights(model)
        if not outside:
            return model(*args, **kwargs)
        return torch.func.functional_call(model, outside, args, kwargs)


def merged_state_dict(model: nn.Module, stack: Sequence[AppliedLora]) -> dict[str, torch.Tensor]:
    """Every parameter as ``model`` computes with it under ``stack`` (compute dtype and device), made layer by layer
    the way a forward makes them. For tests and inspection: the result holds all patched weights at once."""
    patches = LoraPatches(stack, model)
    materialiser = patches.block_weights(model)
    out: dict[str, torch.Tensor] = {}
    for i in range(len(model.transformer_blocks)):
        for name, t in materialiser.fetch(i).items():
            out[f"{BLOCKS_PREFIX}{i}.{name}"] = t
    outside = patches.outside_weights(model)
    for name, p in model.named_parameters():
        if not name.startswith(BLOCKS_PREFIX):
            out[name] = outside.get(name, p.detach())
    return out


# -- fusing into the weights (for a caller that owns the model alone) -------------------------------------------------

# Bytes of float32 work per step of a fusion that needs a buffer (float8 storage; weights stored away from the compute
# device): that many rows of one weight at a time, half a 4096x4096 layer (64 MiB in float32), so the most a fusion
# holds is well under what ltx-core's (a bfloat16 copy of the layer and its change) does. Fewer, larger steps beat
# cache-sized ones on a CPU shared with other work, where each pass over a slice waits for all its threads to be
# scheduled (bench/lora.py: with 2 MiB slices the fusion took up to twice the reference's time on a busy machine).
FUSE_SLICE_BYTES = {"cpu": 2**25, "other": 2**26}


def fuse_loras_(model: nn.Module, stack: Sequence[AppliedLora]) -> int:
    """Add the LoRAs of ``stack`` into ``model``'s own weights, in place: ``W += strength · scale · B @ A`` for
    each, so the model then computes with them like a model without LoRAs (no per-forward cost). Returns how many
    weights changed.

    Destructive, unlike :class:`LoraPatches`: the change cannot be taken back exactly and everyone holding
    ``model`` sees it. Only for a caller that owns the model alone and knows its LoRAs when it loads it (the
    headless pipeline's ``loras``); a shared model (ComfyUI) must use :class:`LoraPatches`.

    Every weight stays where and how the model's placement stores it (resident, in CPU memory for block streaming,
    float8): the product is computed on the compute device and added into the stored tensor. Memory beyond the
    model is one weight's factors and, where a buffer is needed, a slice of its rows (:data:`FUSE_SLICE_BYTES`);
    never a second copy of a layer.

    * bfloat16 / float16 / float32 storage: one ``addmm_`` in the stored dtype per weight (per slice when the
      weight lives away from the compute device), so the sum is rounded once to the stored dtype. When every LoRA
      at a weight has the same strength · scale it is addmm's ``alpha`` and the factors are used as stored; else
      each ``B`` is multiplied by its own in float32 and rounded once to the stored dtype.
    * float8 storage, a slice of rows at a time: the stored values decoded to float32, the product (divided by the
      row scales when the weight has them, so the sum is in stored units) added in float32, the sum rounded back to
      float8 to nearest, ties to even (torch's cast). The fused weight is within half a float8 unit in the last
      place of the exact sum (plus float32's rounding of the sum, ~2^-24 relative). A row whose sum outgrows the
      format's range under its scale gets a larger scale (``max |row| / largest float8``; a weight stored without
      scales gets scales of 1 but for that row), so nothing saturates. ltx-core instead adds in bfloat16 before
      rounding on the CPU, stochastically on CUDA.
    """
    parts = _stack_parts(stack)
    placement = getattr(model, "placement", None)
    device = placement.device if placement is not None else model.compute_device
    block_weights = getattr(model, "block_weights", None)
    scales = block_weights.scales if block_weights is not None else None
    with torch.no_grad():
        for key, factors in parts.items():
            weight = model.get_parameter(key).detach()
            if weight.dtype in FLOAT8_DTYPES:
                _fuse_float8(weight, key, factors, device, scales)
            else:
                _fuse_float(weight, factors, device)
    if parts:
        log.info(
            "fused %s into %d weights of the transformer, in place (the weights are now the LoRA'd ones)",
            ", ".join(f"LoRA '{a.name}' at {a.strength:g}" for a in stack if a.strength != 0),
            len(parts),
        )
    return len(parts)


def _fuse_factors(
    factors: list[tuple[torch.Tensor, torch.Tensor, float]], device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(up [out, R], down [R, in], alpha) with ``alpha · up @ down`` the stack's change of one weight."""
    coefficients = {c for _, _, c in factors}
    as_dtype = (
        functools.partial(_as_float32, device=device) if dtype == torch.float32 else lambda t: t.to(device, dtype)
    )
    if len(coefficients) == 1:
        alpha = coefficients.pop()
        ups = [as_dtype(u) for _, u, _ in factors]
    else:
        alpha = 1.0
        ups = [(_as_float32(u, device) * c).to(dtype) for _, u, c in factors]
    downs = [as_dtype(d) for d, _, _ in factors]
    if len(factors) == 1:
        return ups[0], downs[0], alpha
    return torch.cat(ups, dim=1), torch.cat(downs, dim=0), alpha


def _slice_rows(in_features: int, device: torch.device) -> int:
    return max(1, FUSE_SLICE_BYTES["cpu" if device.type == "cpu" else "other"] // (4 * in_features))


def _fuse_float(weight: torch.Tensor, factors: list, device: torch.device) -> None:
    up, down, alpha = _fuse_factors(factors, device, weight.dtype)
    _prefault_for_writing(weight)
    if weight.device == device:
        weight.addmm_(up, down, alpha=alpha)
        return
    rows = _slice_rows(weight.shape[1], device)
    for start in range(0, weight.shape[0], rows):
        part = weight[start : start + rows]
        work = part.to(device, non_blocking=True)
        work.addmm_(up[start : start + rows], down, alpha=alpha)
        part.copy_(work)


def _fuse_float8(
    weight: torch.Tensor, key: str, factors: list, device: torch.device, scales: dict[str, torch.Tensor] | None
) -> None:
    largest = torch.finfo(weight.dtype).max
    scale = scales.get(key) if scales is not None else None
    up, down, alpha = _fuse_factors(factors, device, torch.float32)
    if scale is not None:
        # The sum is formed in stored units (W / row scale), so each row's change is divided by its scale here, on
        # the small factor, instead of scaling every slice up and back down.
        up = up / scale.to(device, torch.float32)
    # Without scales, a weight far enough inside the range cannot leave it: then no slice needs the check (the
    # margin covers float32's rounding of the sum).
    check = scale is not None or _float8_magnitude(weight) + _change_bound(up, down, alpha) >= largest * (1 - 2**-10)
    out_features, in_features = weight.shape
    rows = min(_slice_rows(in_features, device), out_features)
    work = torch.empty(rows, in_features, dtype=torch.float32, device=device)
    _prefault_for_writing(weight)
    for start in range(0, out_features, rows):
        stop = min(start + rows, out_features)
        part, slice_work = weight[start:stop], work[: stop - start]
        if device.type == "cpu":  # W times a power of two, which the product's beta (exact) takes back
            beta = 1 / _float8_to_float32(part, slice_work)
        else:
            slice_work.copy_(part.to(device, non_blocking=True))
            beta = 1.0
        slice_work.addmm_(up[start:stop], down, beta=beta, alpha=alpha)
        if check and _magnitude(slice_work) > largest:
            # Rows past the format's range get a larger scale (new max |row| = the largest float8). Row-wise amax
            # and amin: torch's row-wise aminmax is ~15x slower on the CPU.
            amax = torch.maximum(slice_work.amax(dim=1, keepdim=True), slice_work.amin(dim=1, keepdim=True).neg_())
            grow = amax.div_(largest).clamp_(min=1)
            if scale is None:
                if scales is None:
                    raise InputError(
                        f"fusing a LoRA into '{key}' takes some of its float8 values past {largest:g}, and the model "
                        "has no row scales to widen its range: place it with offload.place_weights(..., float8=True)"
                    )
                scale = scales[key] = torch.ones(out_features, 1, dtype=torch.float32, device=weight.device)
            scale[start:stop] *= grow.to(scale.device, scale.dtype)
            slice_work.div_(grow)
        # Round to nearest, ties to even. Nothing left is more than a float32 rounding past the largest float8, which
        # the cast rounds down to it (it makes NaN only from the next binade on).
        part.copy_(slice_work)


_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)  # Linux >= 5.14
_madvise: Any = None


def _prefault_for_writing(t: torch.Tensor) -> None:
    """Make the pages under CPU tensor ``t`` private and writable in one system call (Linux's MADV_POPULATE_WRITE).

    A loaded checkpoint's tensors are views of a private map of the file (:mod:`.checkpoint`): written in place,
    each page takes two faults, one to map it and one to copy it on the write, which cost several times the fusion
    itself (bench/lora.py's load cases: ~2 s against ~0.4 s for 830 MiB of bfloat16 weights). For memory that is
    already the process's own the call changes nothing. Best effort: skipped where the call is missing (another
    system, a kernel before 5.14) or refused."""
    global _madvise
    if t.device.type != "cpu" or not sys.platform.startswith("linux") or t.numel() == 0:
        return
    if _madvise is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            _madvise = libc.madvise
        except (OSError, AttributeError):
            _madvise = False
    if _madvise:
        start = t.data_ptr() // mmap.PAGESIZE * mmap.PAGESIZE
        _madvise(start, t.data_ptr() + t.numel() * t.element_size() - start, _MADV_POPULATE_WRITE)


def _float8_magnitude(q: torch.Tensor) -> float:
    """The largest |value| of float8 ``q`` (a NaN code counts as infinite), from its bytes: a float8's magnitude grows
    with its code less the sign bit, and the sign bit makes a code negative as int8 and at least 128 as uint8. On the
    CPU in numpy (one thread, see :func:`_all_finite`)."""
    codes = q.view(torch.uint8)
    if q.device.type == "cpu":
        top_positive, top_code = int(codes.numpy().view(np.int8).max()), int(codes.numpy().max())
    else:
        top_positive, top_code = int(codes.view(torch.int8).max()), int(codes.max())
    code = max(top_positive, top_code - 128)
    value = torch.tensor([code], dtype=torch.uint8).view(q.dtype).float().item()
    return value if math.isfinite(value) else math.inf


def _change_bound(up: torch.Tensor, down: torch.Tensor, alpha: float) -> float:
    """An upper bound of ``|alpha · up @ down|`` over all entries, from the factors alone."""
    if up.device.type == "cpu":
        reach = np.abs(down.numpy()).max(axis=1)
        return abs(alpha) * float((np.abs(up.numpy()) * reach).sum(axis=1).max())
    return abs(alpha) * (up.abs() * down.abs().amax(dim=1)).sum(dim=1).max().item()


def _magnitude(t: torch.Tensor) -> float:
    low, high = torch.aminmax(t)
    return max(high.item(), -low.item())


def _float8_to_float32(q: torch.Tensor, out: torch.Tensor) -> float:
    """Write float8 ``q``'s values (CPU) times the returned power of two into float32 ``out``, exactly (codes of
    NaN or infinity come out finite).

    Torch converts float8 on the CPU one element at a time (several ns each); as bits it takes three vectorised passes
    in ``out``'s own memory: each code sign-extended to int32, shifted so that its exponent and mantissa sit at the
    bottom of float32's exponent and the top of its mantissa, and the sign bits the shift smeared below bit 31
    cleared. Read as float32 that is the value times 2^-120 (e4m3fn, exponent bias 7) or 2^-112 (e5m2, bias 15):
    float32 has the same layout with bias 127, its denormals matching float8's subnormals."""
    bits = out.view(torch.int32)
    bits.copy_(q.view(torch.int8))
    if q.dtype == torch.float8_e5m2:
        bits.bitwise_left_shift_(21).bitwise_and_(~0x70000000 & ~0x1FFFFF)
        return 2.0**-112
    bits.bitwise_left_shift_(20).bitwise_and_(~0x78000000 & ~0xFFFFF)
    return 2.0**-120


def _first(items: Sequence[str], n: int) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


# -- checking a LoRA from its header alone ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearShapes:
    """What :func:`check_lora_fits` checks a LoRA against: a transformer's linear weights (module path -> shape
    ``[out, in]``) and its number of blocks; from a model (:meth:`of`, the meta device will do) or built by hand."""

    weights: dict[str, tuple[int, ...]]
    blocks: int

    @classmethod
    def of(cls, model: nn.Module) -> LinearShapes:
        weights = {n[: -len(".weight")]: tuple(p.shape) for n, p in model.named_parameters() if _is_linear_weight(n, p)}
        return cls(weights, len(model.transformer_blocks))


def check_lora_fits(lora: LoraFile, shapes: LinearShapes, variant: str) -> None:
    """Raise what :func:`bind_lora` raises for ``lora`` on a model of these ``shapes``, without reading a factor.

    A LoRA is checked before anything loads this way (the command line): only its header and the shapes are used,
    and a distilled LoRA holds gigabytes of factors that :func:`bind_lora` reads."""
    _match(lora, shapes, variant)


def _match(lora: LoraFile, shapes: LinearShapes, variant: str) -> tuple[dict[str, LoraLayer], tuple[str, ...]]:
    """(model module -> the LoRA's layer for it, text-connector modules left out), every layer and shape checked
    against ``shapes`` from the header alone; raises :class:`CheckpointError` naming the model the LoRA seems for."""
    weights = shapes.weights
    by_underscores = {m.replace(".", "_"): m for m in weights}
    targets: dict[str, LoraLayer] = {}
    unmatched: list[LoraLayer] = []
    left_out: list[str] = []
    for layer in lora.layers:
        module = by_underscores.get(layer.module, layer.module) if layer.underscored else layer.module
        if module.startswith(CONNECTOR_MODULES):
            left_out.append(module)
        elif module not in weights:
            unmatched.append(layer)
        else:
            targets[module] = layer
    if unmatched:
        names = [_shown_key(layer) for layer in unmatched]
        raise CheckpointError(
            f"'{lora.name}' does not fit this {variant} transformer: {len(unmatched)} of its {len(lora.layers)} "
            f"layers match no layer of the model ({_first(names, 4)}). {_seems_for(lora, variant, shapes.blocks)}"
        )
    for module, layer in targets.items():
        out_features, in_features = weights[module]
        if layer.up_shape[0] != out_features or layer.down_shape[1] != in_features:
            raise CheckpointError(
                f"'{lora.name}': layer '{module}' is {layer.up_shape[0]}x{layer.down_shape[1]} in this LoRA (up "
                f"{list(layer.up_shape)}, down {list(layer.down_shape)}) but {out_features}x{in_features} in the "
                f"{variant} model. {_seems_for(lora, variant, shapes.blocks)}"
            )
    if not targets and not left_out:
        raise CheckpointError(f"'{lora.name}' changes no layer of the model")
    return targets, tuple(left_out)
