"""The LTX text path: Gemma hidden states -> the video and audio text contexts the transformer attends to.

Two stages. LTX-2 and LTX-2.3 keep both in the checkpoint (component ``text_encoder``); LTX-2.5 ships the
projection with its Gemma 4 text encoder and the connectors in its transformer file (:func:`load_ltx25_text_path`).

* ``text_embedding_projection``: every Gemma hidden state (embedding output + one per layer) is normalised and the
  stack is flattened per token to ``D * L`` features (index ``d * L + l``) and projected. Version 1 (LTX-2)
  normalises each layer by the mean and range over the prompt's real tokens and feeds one bias-free projection to
  both streams; version 2 (LTX-2.3, LTX-2.5) normalises each token by its RMS and has one biased projection per
  stream, its input rescaled by ``sqrt(out_width / gemma_width)``.
* ``video_embeddings_connector`` / ``audio_embeddings_connector``: a small pre-norm transformer over the whole
  token sequence. Padding never reaches it: the prompt's real tokens are packed to the front and every later
  position ``i`` holds learnable register ``i mod 128``, so attention needs no mask. Positions are the token
  indices ``0..T-1`` divided by ``connector_positional_embedding_max_pos``.

Because padding is replaced by registers, only the real tokens' hidden states matter. The path therefore takes
hidden states of any length ``S <= T`` (the real tokens, left-padded to the longest prompt of the batch) plus the
sequence length ``T`` the contexts must have (the tokenizer's 1024); feeding all ``T`` positions gives the same
result. Batches of prompts of different lengths give, per item, what a batch of one gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import checks
from .attention import Attention
from .config import ConnectorConfig, TextEncoderConfig
from .errors import ConfigError, InputError
from .layers import FeedForward, rms_norm
from .rope import RopeTables, rope_tables

# Normalisation constants of the feature extractors (fixed by the trained projections).
_V1_SCALE = 8.0
_EPS = 1e-6


@dataclass
class GemmaHiddenStates:
    """What the text path consumes: hidden states of the prompt tokens and the context length to produce.

    ``states``: ``[B, S, D, L]`` (token, Gemma width, hidden state index), real tokens right-aligned within
    ``S`` (left padding); ``mask``: ``[B, S]`` bool, True on real tokens; ``length``: ``T >= S``, the padded
    sequence length of the tokenizer (1024 for LTX-2 / LTX-2.3).
    """

    states: torch.Tensor
    mask: torch.Tensor
    length: int

    @property
    def lengths(self) -> torch.Tensor:
        """``[B]`` number of real tokens per prompt."""
        return self.mask.sum(dim=1)


@dataclass
class TextContexts:
    """The text conditioning of one batch of prompts: ``video`` ``[B, T, Dv]`` and ``audio`` ``[B, T, Da]``."""

    video: torch.Tensor
    audio: torch.Tensor


# ---------------------------------------------------------------------------------------------------------------
# Feature extraction: normalise all hidden states, flatten per token


def mean_range_features(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Version 1: ``[B, S, D, L] -> [B, S, D*L]``, each (prompt, layer) shifted by its mean and scaled by 8/range
    over the real tokens; padding rows are zero. Statistics in float32, result in the input dtype."""
    x = states.float()
    b, s, d, layers = x.shape
    valid = mask.view(b, s, 1, 1)
    count = mask.sum(dim=1).view(b, 1, 1, 1).float() * d
    mean = torch.where(valid, x, 0.0).sum(dim=(1, 2), keepdim=True) / (count + _EPS)
    low = torch.where(valid, x, math.inf).amin(dim=(1, 2), keepdim=True)
    high = torch.where(valid, x, -math.inf).amax(dim=(1, 2), keepdim=True)
    normed = _V1_SCALE * (x - mean) / (high - low + _EPS)
    normed = torch.where(valid, normed, 0.0)
    return normed.reshape(b, s, d * layers).to(states.dtype)


def token_rms_features(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Version 2: ``[B, S, D, L] -> [B, S, D*L]``, every (token, layer) vector divided by its RMS over ``D``;
    padding rows are zero. Computed in float32, result in the input dtype."""
    x = states.float()
    b, s, d, layers = x.shape
    normed = x * torch.rsqrt(x.square().mean(dim=2, keepdim=True) + _EPS)
    normed = torch.where(mask.view(b, s, 1, 1), normed, 0.0)
    return normed.reshape(b, s, d * layers).to(states.dtype)


class TextEmbeddingProjection(nn.Module):
    """Normalised Gemma features -> per-stream connector inputs (``text_embedding_projection.*``)."""

    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        if config.gemma_hidden_size is None or config.gemma_num_hidden_states is None:
            raise ConfigError("the checkpoint has no text projection, so its Gemma feature size is unknown")
        self.version = config.version
        self.gemma_hidden_size = config.gemma_hidden_size
        self.gemma_num_hidden_states = config.gemma_num_hidden_states
        flat = config.gemma_hidden_size * config.gemma_num_hidden_states
        if config.version == 1:
            self.aggregate_embed = nn.Linear(flat, config.video_dim, bias=False)
        else:
            self.video_aggregate_embed = nn.Linear(flat, config.video_dim)
            self.audio_aggregate_embed = nn.Linear(flat, config.audio_dim)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, S, D, L]``, ``[B, S]`` -> (video ``[B, S, Dv]``, audio ``[B, S, Da]``) features."""
        if self.version == 1:
            shared = self.aggregate_embed(mean_range_features(states, mask).to(self.aggregate_embed.weight.dtype))
            return shared, shared
        normed = token_rms_features(states, mask).to(self.video_aggregate_embed.weight.dtype)
        outputs = []
        for projection in (self.video_aggregate_embed, self.audio_aggregate_embed):
            # The projections were trained on RMS-1 inputs rescaled to their own output width.
            outputs.append(projection(normed * math.sqrt(projection.out_features / self.gemma_hidden_size)))
        return outputs[0], outputs[1]


# ---------------------------------------------------------------------------------------------------------------
# Embeddings connector


class ConnectorBlock(nn.Module):
    """Pre-norm self-attention (RoPE over token index) then feed-forward, both residual."""

    def __init__(self, config: ConnectorConfig):
        super().__init__()
        self.attn1 = Attention(
            config.dim, config.num_attention_heads, config.attention_head_dim, gated=config.apply_gated_attention
        )
        self.ff = FeedForward(config.dim)

    def forward(self, x: torch.Tensor, rope: RopeTables) -> torch.Tensor:
        x = x + self.attn1(rms_norm(x), rope=rope)
        return x + self.ff(rms_norm(x))


def pack_with_registers(
    features: torch.Tensor, mask: torch.Tensor, registers: torch.Tensor, length: int
) -> torch.Tensor:
    """``[B, S, W]`` features with real tokens anywhere -> ``[B, T, W]``: the real tokens first, in order, then
    register ``i mod R`` at every position ``i`` past them.

    A stable sort of the padding flag moves each prompt's real tokens to the front without reordering them, so a
    batch gives each item what it would get alone.
    """
    b, s, w = features.shape
    count = registers.shape[0]
    if length % count:
        raise InputError(f"text sequence length must be a multiple of the {count} connector registers, got {length}")
    if s > length:
        raise InputError(f"{s} text tokens do not fit the text sequence length {length}")
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    packed = features.gather(1, order.unsqueeze(-1).expand(b, s, w))
    if s < length:
        packed = torch.cat([packed, packed.new_zeros(b, length - s, w)], dim=1)
    filler = registers.to(features.dtype).repeat(length // count, 1)  # [T, W]
    real = torch.arange(length, device=features.device)[None, :] < mask.sum(dim=1, keepdim=True)
    return torch.where(real.unsqueeze(-1), packed, filler)


class EmbeddingsConnector(nn.Module):
    """Connector features ``[B, S, W]`` -> contexts ``[B, T, W]`` (``*_embeddings_connector.*``)."""

    def __init__(self, config: ConnectorConfig):
        super().__init__()
        self.config = config
        self.transformer_1d_blocks = nn.ModuleList(ConnectorBlock(config) for _ in range(config.num_layers))
        self.learnable_registers = nn.Parameter(torch.empty(config.num_registers, config.dim))
        if not self.learnable_registers.is_meta:
            nn.init.uniform_(self.learnable_registers, -1.0, 1.0)

    def forward(self, features: torch.Tensor, mask: torch.Tensor, length: int) -> torch.Tensor:
        cfg = self.config
        x = pack_with_registers(features, mask, self.learnable_registers, length)
        # Token indices are points, not [start, end) bounds: no midpoint.
        positions = torch.arange(length, dtype=torch.float32, device=x.device)[None, None, :]
        rope = rope_tables(
            positions,
            dim=cfg.dim,
            heads=cfg.num_attention_heads,
            max_pos=cfg.positional_embedding_max_pos,
            theta=cfg.positional_embedding_theta,
            layout=cfg.rope_type,
            float64=cfg.rope_float64,
            midpoint=False,
            dtype=x.dtype,
        )
        # Every prompt has the same positions: compute one table and broadcast it over the batch.
        batch = x.shape[0]
        rope = RopeTables(
            rope.cos.expand(batch, *rope.cos.shape[1:]), rope.sin.expand(batch, *rope.sin.shape[1:]), rope.layout
        )
        for block in self.transformer_1d_blocks:
            x = block(x, rope)
        return rms_norm(x)


# ---------------------------------------------------------------------------------------------------------------
# The component


class TextPath(nn.Module):
    """The ``text_encoder`` component of an LTX checkpoint: Gemma hidden states -> :class:`TextContexts`."""

    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.config = config
        self.text_embedding_projection = TextEmbeddingProjection(config)
        self.video_embeddings_connector = EmbeddingsConnector(config.video_connector)
        self.audio_embeddings_connector = EmbeddingsConnector(config.audio_connector)

    @property
    def gemma_hidden_size(self) -> int:
        return self.text_embedding_projection.gemma_hidden_size

    @property
    def gemma_num_hidden_states(self) -> int:
        return self.text_embedding_projection.gemma_num_hidden_states

    def forward(self, hidden: GemmaHiddenStates) -> TextContexts:
        states, mask = hidden.states, hidden.mask.bool()
        if states.ndim != 4 or mask.shape != states.shape[:2]:
            raise InputError(
                f"Gemma hidden states must be [B, S, D, L] with a [B, S] mask; got {list(states.shape)} and "
                f"{list(mask.shape)}"
            )
        check_gemma_fits(self.config, states.shape[2], states.shape[3], "the hidden states given")
        param = next(self.text_embedding_projection.parameters())
        states, mask = states.to(param.device), mask.to(param.device)
        video, audio = self.text_embedding_projection(states, mask)
        return TextContexts(
            video=self.video_embeddings_connector(video, mask, hidden.length),
            audio=self.audio_embeddings_connector(audio, mask, hidden.length),
        )


def check_gemma_fits(config: TextEncoderConfig, hidden_size: int, num_hidden_states: int, gemma_name: str) -> None:
    """Raise :class:`InputError` naming both sides if a Gemma's width or depth differs from what the checkpoint's
    text projection was trained on (``num_hidden_states`` = layers + 1)."""
    want_width, want_states = config.gemma_hidden_size, config.gemma_num_hidden_states
    if (hidden_size, num_hidden_states) == (want_width, want_states):
        return
    raise InputError(
        f"Gemma mismatch: {gemma_name} has hidden size {hidden_size} and {num_hidden_states} hidden states "
        f"({num_hidden_states - 1} layers), but the LTX checkpoint's text projection expects hidden size "
        f"{want_width} and {want_states} hidden states ({(want_states or 1) - 1} layers). LTX-2 and LTX-2.3 use "
        "Gemma 3 12B (hidden size 3840, 48 layers), e.g. google/gemma-3-12b-it-qat-q4_0-unquantized; LTX-2.5 the "
        "Gemma 4 released with it (gemma4-12b-with-proj-ltx-2.5)."
    )


def encode_prompts(gemma, text_path: TextPath, prompts, *, progress=None) -> TextContexts:
    """Prompts -> :class:`TextContexts` ``[B, T, Dv]`` / ``[B, T, Da]`` with a loaded
    :class:`~.gemma.GemmaEncoder` and the checkpoint's :class:`TextPath`. ``progress(done, total)`` per Gemma layer."""
    check_gemma_fits(text_path.config, gemma.hidden_size, gemma.num_hidden_states, f"Gemma '{gemma.source.name}'")
    if isinstance(prompts, str):
        prompts = [prompts]
    for i, prompt in enumerate(prompts):
        checks.text(prompt, "prompt" if len(prompts) == 1 else f"prompt {i + 1}")
    hidden = gemma.encode(prompts, progress=progress)
    with torch.no_grad():
        return text_path(hidden)


def load_text_path(
    checkpoint,
    *,
    dtype: torch.dtype | None = torch.bfloat16,
    device: torch.device | str | None = None,
    progress=None,
) -> TextPath:
    """Build the text path of an LTX checkpoint (path, :class:`~.checkpoint.Checkpoint`, or the
    :class:`~.checkpoint.JoinedComponent` of LTX-2.5's files) through our strict loader. ``progress(done, total)``
    is called per tensor."""
    from .checkpoint import Checkpoint, JoinedComponent, build_component, open_checkpoint
    from .errors import CheckpointError

    ckpt = checkpoint if isinstance(checkpoint, (Checkpoint, JoinedComponent)) else open_checkpoint(checkpoint)
    if ckpt.component_config("text_encoder").gemma_hidden_size is None:
        raise CheckpointError(
            f"'{ckpt.name}' ({ckpt.variant_name}) has text connectors but no text_embedding_projection.* tensors, so "
            "it cannot turn Gemma hidden states into text contexts; use the full official checkpoint"
        )
    return build_component(ckpt, "text_encoder", TextPath, dtype=dtype, device=device, progress=progress)


# ---------------------------------------------------------------------------------------------------------------
# LTX-2.5: the text path from its two files


def load_ltx25_text_path(
    transformer,
    text_encoder,
    *,
    dtype: torch.dtype | None = torch.bfloat16,
    device: torch.device | str | None = None,
    progress=None,
) -> TextPath:
    """LTX-2.5's text path: the connectors and their config from the ``transformer`` file (path or
    :class:`~.checkpoint.Checkpoint`), the projection from the ``text_encoder`` (its file or folder path, or a
    :class:`~.gemma4_encoder.Gemma4Source` / :class:`~.gemma4_encoder.Gemma4Encoder`), or from the transformer
    file when it holds it (a single-file checkpoint beside a Gemma folder); the Gemma width comes from the Gemma 4
    config. A text encoder the transformer was not trained with is refused first
    (:func:`~.gemma4_encoder.check_gemma_version`), then the joined parts load strictly. ``progress(done, total)``
    per tensor."""
    from .checkpoint import Checkpoint, ModelFiles, open_checkpoint
    from .errors import CheckpointError
    from .gemma4_encoder import Gemma4Source, check_gemma_version, inspect_gemma4

    source = getattr(text_encoder, "source", text_encoder)
    if not isinstance(source, Gemma4Source):
        source = inspect_gemma4(text_encoder)
    model = transformer if isinstance(transformer, Checkpoint) else open_checkpoint(transformer)
    check_gemma_version(
        model.metadata,
        gemma_model_type=source.model_type,
        gemma_version=source.gemma_version,
        checkpoint_name=model.name,
        gemma_name=source.name,
    )
    if source.projection_file is not None:
        files = ModelFiles({"transformer": model, "text_encoder": open_checkpoint(source.projection_file)})
        parts = files.source("text_encoder")
    elif "text_encoder" in model.components and model.component_config("text_encoder").gemma_hidden_size:
        parts = model  # a single-file checkpoint with the projection inside, beside a Gemma folder
    else:
        raise CheckpointError(
            f"'{source.name}' has no text_embedding_projection.* tensors and neither has '{model.name}'; the LTX-2.5 "
            "text encoder release bundles them (gemma4-12b-with-proj-ltx-2.5-bf16.safetensors)"
        )
    text_path = load_text_path(parts, dtype=dtype, device=device, progress=progress)
    gemma = f"Gemma '{source.name}'"
    check_gemma_fits(text_path.config, source.config.hidden_size, source.config.num_hidden_states, gemma)
    return text_path
