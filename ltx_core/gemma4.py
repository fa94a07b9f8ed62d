"""Gemma 4 "unified", the text encoder of LTX-2.5, as a plain PyTorch text stack (no ``transformers``).

Only what prompt encoding runs is built: token embeddings, the decoder layers and the final norm. The released
encoder (``gemma4-12b-with-proj-ltx-2.5``) is Google's 12B ``gemma4_unified`` fine-tuned by Lightricks; its vision
and audio embedders and the LM head are never used for encoding and never loaded.

What differs from Gemma 3 (``transformers``' ``gemma4_unified`` is the oracle for every point):

* RMS norms scale by ``weight`` (Gemma 3: ``1 + weight``), computed in float32; values get a weightless norm too.
* Layers alternate sliding-window and global attention (``layer_types``). Global layers have their own, wider head
  (``global_head_dim``) and, with ``attention_k_eq_v``, ``num_global_key_value_heads`` key heads whose raw
  projection is also the value (there is no ``v_proj``).
* RoPE per layer type: sliding layers rotate the whole head (``default``); global layers use ``proportional`` RoPE,
  which rotates the first ``partial_rotary_factor`` of the frequencies of a ``global_head_dim``-wide head and
  leaves the rest unrotated (zero frequency).
* Attention logits are not scaled (scale 1: the query/key norms set their size).
* Every layer ends by multiplying its output with a learned scalar (``layer_scalar``).

Parameter names are the official file's keys with the leading ``model.`` split off (``layers.0.self_attn...``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

SLIDING = "sliding_attention"
GLOBAL = "full_attention"

# transformers' defaults for keys a Gemma 4 unified text config may leave out (they are what the file means to the
# reference, which builds the model through transformers).
_DEFAULT_ROPE = {
    SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
    GLOBAL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
}
_DEFAULT_SLIDING_WINDOW = 1024
_DEFAULT_GLOBAL_HEAD_DIM = 512
_SLIDING_PATTERN = 6  # without layer_types: five sliding layers, then a global one

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RopeSpec:
    """One layer type's rotary embedding: ``theta``, the rotated share of the frequencies, a frequency divisor."""

    theta: float
    rotated_fraction: float = 1.0
    factor: float = 1.0


@dataclass(frozen=True)
class Gemma4TextConfig:
    """The text stack of a Gemma 4 unified config (``text_config`` of ``config.json`` / ``gemma_config``)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    num_global_key_value_heads: int
    head_dim: int
    global_head_dim: int
    intermediate_size: int
    vocab_size: int
    rms_norm_eps: float
    sliding_window: int
    layer_types: tuple[str, ...]
    attention_k_eq_v: bool
    attention_bias: bool
    sliding_rope: RopeSpec
    global_rope: RopeSpec

    @property
    def num_hidden_states(self) -> int:
        """Hidden states the text path reads: the embedding output plus one per layer."""
        return self.num_hidden_layers + 1

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], name: str = "the Gemma config") -> Gemma4TextConfig:
        """From a ``gemma4_unified`` config (its ``text_config``) or a ``gemma4_unified_text`` one. Sizes must be
        given; behaviour keys the file leaves out take transformers' defaults. Raises :class:`ConfigError`."""
        family = config.get("model_type")
        text = config.get("text_config") if family == "gemma4_unified" else config
        if family not in ("gemma4_unified", "gemma4_unified_text") or not isinstance(text, Mapping):
            raise ConfigError(f"{name}: model_type is {family!r}; the LTX-2.5 text encoder is 'gemma4_unified'")
        read = _Reader(text, name)
        heads = read.size("num_attention_heads")
        kv_heads = read.size("num_key_value_heads")
        global_kv = read.size("num_global_key_value_heads", kv_heads, allow_null=True)
        for key, count in (("num_key_value_heads", kv_heads), ("num_global_key_value_heads", global_kv)):
            if heads % count:
                raise ConfigError(f"{name}: text_config.{key} = {count} does not divide num_attention_heads {heads}")
        layers = read.size("num_hidden_layers")
        layer_types = read.layer_types(layers)
        for key, allowed in (
            ("hidden_activation", ("gelu_pytorch_tanh",)),
            ("num_kv_shared_layers", (0,)),
            # "vision" attends causally over text (bidirectionally only inside image blocks, which prompts lack).
            ("use_bidirectional_attention", (None, "vision")),
        ):
            value = text.get(key, allowed[0])
            if value not in allowed:
                raise ConfigError(
                    f"{name}: text_config.{key} = {value!r} is not supported (the LTX-2.5 encoder uses {allowed[-1]!r})"
                )
        rope = text.get("rope_parameters") or _DEFAULT_ROPE
        if not isinstance(rope, Mapping):
            raise ConfigError(f"{name}: text_config.rope_parameters should be an object per layer type")
        return cls(
            hidden_size=read.size("hidden_size"),
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            num_global_key_value_heads=global_kv,
            head_dim=read.size("head_dim"),
            # Absent: transformers' default; null: global layers keep the sliding layers' head width.
            global_head_dim=read.size("global_head_dim", _DEFAULT_GLOBAL_HEAD_DIM)
            if text.get("global_head_dim", _DEFAULT_GLOBAL_HEAD_DIM)
            else read.size("head_dim"),
            intermediate_size=read.size("intermediate_size"),
            vocab_size=read.size("vocab_size"),
            rms_norm_eps=read.number("rms_norm_eps", 1e-6),
            sliding_window=read.size("sliding_window", _DEFAULT_SLIDING_WINDOW),
            layer_types=layer_types,
            attention_k_eq_v=read.flag("attention_k_eq_v", False),
            attention_bias=read.flag("attention_bias", False),
            sliding_rope=_rope_spec(rope, SLIDING, name) if SLIDING in layer_types else RopeSpec(10_000.0),
            global_rope=_rope_spec(rope, GLOBAL, name),
        )


class _Reader:
    def __init__(self, values: Mapping[str, Any], name: str):
        self.values = values
        self.name = name

    def _fail(self, key: str, wanted: str) -> ConfigError:
        shown = repr(self.values.get(key))[:60]
        return ConfigError(f"{self.name}: text_config.{key} is {shown}; expected {wanted}")

    def size(self, key: str, default: int | None = None, allow_null: bool = False) -> int:
        value = self.values.get(key)
        if value is None and (allow_null or key not in self.values):
            value = default
        if value is None:
            raise ConfigError(f"{self.name}: text_config.{key} is missing; it sets the size of the model")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**20:
            raise self._fail(key, f"a whole number from 1 to {2**20}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise self._fail(key, "a positive number")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def layer_types(self, layers: int) -> tuple[str, ...]:
        types = self.values.get("layer_types")
        if types is None:
            types = [GLOBAL if (i + 1) % _SLIDING_PATTERN == 0 else SLIDING for i in range(layers)]
        if not isinstance(types, list) or len(types) != layers or any(t not in (SLIDING, GLOBAL) for t in types):
            raise self._fail("layer_types", f"{layers} entries, each {SLIDING!r} or {GLOBAL!r}")
        # transformers makes the last layer global whatever the list says (with a warning); so do we.
        return (*types[:-1], GLOBAL)


def _rope_spec(rope: Mapping[str, Any], layer_type: str, name: str) -> RopeSpec:
    spec = rope.get(layer_type)
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{name}: text_config.rope_parameters has no entry for {layer_type!r}")
    kind = spec.get("rope_type", "default")
    theta = spec.get("rope_theta")
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not 0 < theta < math.inf:
        raise ConfigError(f"{name}: rope_parameters.{layer_type}.rope_theta is {theta!r}; expected a positive number")
    if kind == "default":
        return RopeSpec(float(theta))
    if kind == "proportional":
        fraction = spec.get("partial_rotary_factor", 1.0)
        factor = spec.get("factor", 1.0)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (fraction, factor)) or not (
            0 <= fraction <= 1 and factor > 0
        ):
            raise ConfigError(
                f"{name}: rope_parameters.{layer_type} has partial_rotary_factor {fraction!r} and factor {factor!r}; "
                "expected a fraction from 0 to 1 and a positive factor"
            )
        return RopeSpec(float(theta), float(fraction), float(factor))
    raise ConfigError(
        f"{name}: rope_parameters.{layer_type}.rope_type is {kind!r}; the LTX-2.5 encoder uses 'default' (sliding "
        "layers) and 'proportional' (global layers)"
    )


# ---------------------------------------------------------------------------------------------------------------
# Building blocks


def rotary_frequencies(spec: RopeSpec, head_dim: int) -> torch.Tensor:
    """``[head_dim / 2]`` float32 angular frequencies: ``theta^(-2i / head_dim) / factor`` for the rotated share,
    zero (no rotation) for the rest."""
    rotated = int(spec.rotated_fraction * head_dim // 2)
    exponents = torch.arange(0, 2 * rotated, 2, dtype=torch.int64).float() / head_dim
    frequencies = torch.zeros(head_dim // 2, dtype=torch.float32)
    frequencies[:rotated] = 1.0 / spec.theta**exponents
    return frequencies / spec.factor


def rotary_tables(frequencies: torch.Tensor, positions: torch.Tensor, dtype: torch.dtype):
    """cos / sin ``[B, S, 1, head_dim]`` for ``positions`` ``[B, S]``: angles in float32, each frequency used for
    channel ``i`` and its partner ``i + head_dim/2``."""
    angles = positions.float()[..., None] * frequencies.to(positions.device)[None, None, :]
    angles = torch.cat([angles, angles], dim=-1)[:, :, None, :]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs ``(i, i + d/2)`` of ``x`` ``[B, S, H, d]`` by the tabled angles."""
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


class Gemma4RMSNorm(nn.Module):
    """RMS norm over the last dimension in float32, times ``weight`` when it has one."""

    def __init__(self, dim: int, eps: float, with_scale: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if with_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float()
        y = y * torch.pow(y.square().mean(-1, keepdim=True) + self.eps, -0.5)
        if self.weight is not None:
            y = y * self.weight.float()
        return y.to(x.dtype)


class Gemma4Attention(nn.Module):
    """Grouped-query self-attention with query/key/value norms and per-layer-type RoPE (``self_attn``)."""

    def __init__(self, config: Gemma4TextConfig, sliding: bool):
        super().__init__()
        self.sliding = sliding
        self.head_dim = config.head_dim if sliding else config.global_head_dim
        self.values_from_keys = config.attention_k_eq_v and not sliding
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_global_key_value_heads if self.values_from_keys else config.num_key_value_heads
        width, bias = config.hidden_size, config.attention_bias
        self.q_proj = nn.Linear(width, self.heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(width, self.kv_heads * self.head_dim, bias=bias)
        self.v_proj = None if self.values_from_keys else nn.Linear(width, self.kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, width, bias=bias)
        self.q_norm = Gemma4RMSNorm(self.head_dim, config.rms_norm_eps)
        self.k_norm = Gemma4RMSNorm(self.head_dim, config.rms_norm_eps)
        self.v_norm = Gemma4RMSNorm(self.head_dim, config.rms_norm_eps, with_scale=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, S, D]``; ``mask`` ``[B, 1, S, S]`` bool, True where a query may attend a key."""
        b, s, _ = x.shape
        q = rotate(self.q_norm(self.q_proj(x).view(b, s, self.heads, self.head_dim)), *rope)
        k = self.k_proj(x).view(b, s, self.kv_heads, self.head_dim)
        v = k if self.v_proj is None else self.v_proj(x).view(b, s, self.kv_heads, self.head_dim)
        k = rotate(self.k_norm(k), *rope)
        v = self.v_norm(v)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, heads, S, d]
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, self.heads * self.head_dim))


class Gemma4MLP(nn.Module):
    """Gated feed-forward: ``down(gelu_tanh(gate(x)) * up(x))``."""

    def __init__(self, config: Gemma4TextConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class Gemma4DecoderLayer(nn.Module):
    """Sandwich-normed attention and feed-forward, both residual, then the learned output scale."""

    def __init__(self, config: Gemma4TextConfig, index: int):
        super().__init__()
        self.sliding = config.layer_types[index] == SLIDING
        eps = config.rms_norm_eps
        self.self_attn = Gemma4Attention(config, self.sliding)
        self.mlp = Gemma4MLP(config)
        self.input_layernorm = Gemma4RMSNorm(config.hidden_size, eps)
        self.post_attention_layernorm = Gemma4RMSNorm(config.hidden_size, eps)
        self.pre_feedforward_layernorm = Gemma4RMSNorm(config.hidden_size, eps)
        self.post_feedforward_layernorm = Gemma4RMSNorm(config.hidden_size, eps)
        self.register_buffer("layer_scalar", torch.ones(1))

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), rope, mask))
        x = x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        return x * self.layer_scalar


def attention_masks(real: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(global, sliding) ``[B, 1, S, S]`` bool masks for tokens ``real`` ``[B, S]`` at consecutive positions.

    A query attends real keys at or before it; sliding layers only the last ``window`` of them (itself included).
    Every query also attends itself, so padding rows stay finite; real rows never attend padding, so padding
    changes nothing they compute.
    """
    s = real.shape[1]
    index = torch.arange(s, device=real.device)
    behind = index[:, None] - index[None, :]  # query - key
    causal = (behind >= 0)[None, None] & real[:, None, None, :]
    itself = torch.eye(s, dtype=torch.bool, device=real.device)[None, None]
    return causal | itself, (causal & (behind < window)[None, None]) | itself


class Gemma4TextModel(nn.Module):
    """Token ids -> every hidden state (``embed_tokens``, ``layers``, ``norm``; the file's ``model.*`` keys)."""

    def __init__(self, config: Gemma4TextConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Gemma4DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = Gemma4RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(
        self, input_ids: torch.Tensor, real: torch.Tensor, positions: torch.Tensor, progress: Progress | None = None
    ) -> torch.Tensor:
        """``input_ids`` / ``real`` (bool) / ``positions`` ``[B, S]`` -> ``[B, S, D, L + 1]``: the scaled embeddings,
        each layer's output, the last one after the final norm. ``positions`` must be consecutive per row (the
        token's index in the padded sequence). ``progress(done, total)`` after every layer."""
        weight = self.embed_tokens.weight
        # The embedding scale is rounded to the weights' dtype, as the reference does (sqrt(3840) is 62.0 in bf16).
        x = self.embed_tokens(input_ids) * torch.tensor(self.config.hidden_size**0.5, dtype=weight.dtype)
        b, s, d = x.shape
        states = x.new_empty(b, s, d, len(self.layers) + 1)
        states[..., 0] = x
        global_mask, sliding_mask = attention_masks(real, self.config.sliding_window)
        cfg = self.config
        tables = {  # keyed by "is sliding"
            True: rotary_tables(rotary_frequencies(cfg.sliding_rope, cfg.head_dim), positions, x.dtype),
            False: rotary_tables(rotary_frequencies(cfg.global_rope, cfg.global_head_dim), positions, x.dtype),
        }
        for i, layer in enumerate(self.layers):
            x = layer(x, tables[layer.sliding], sliding_mask if layer.sliding else global_mask)
            states[..., i + 1] = x if i + 1 < len(self.layers) else self.norm(x)
            if progress is not None:
                progress(i + 1, len(self.layers))
        return states
