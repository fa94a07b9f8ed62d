"""The LTX-2 / LTX-2.3 / LTX-2.5 asymmetric dual-stream diffusion transformer (video 32x128 wide, audio 32x64 wide).

The model predicts a rectified-flow velocity per token for both streams at once. Inputs per stream are a
:class:`StreamInput`: patchified latent tokens (see :mod:`.patchify`), a timestep per token (sigma, 0 for clean
conditioning tokens), RoPE bounds, and the text context from the text encoder. Either stream may be absent or
have no tokens (video-only or audio-only generation). ``x0 = latent - velocity * timestep``
(:func:`velocity_to_x0`).

LTX-2 (text path V1) projects the 3840-wide text features inside the transformer (``caption_projection``);
LTX-2.3 (V2) receives contexts already as wide as each stream, gates every attention per head, and modulates the
text cross-attention with the sample's sigma ("prompt AdaLN"). LTX-2.5 is LTX-2.3 with a bias-free video
feed-forward and a learned *keyframe embedding*: one vector added, right after the input projection, to every
video token that encodes a single standalone pixel frame (``StreamInput.keyframes``: the video's first latent
frame, which the causal VAE encodes alone, and generated keyframe slots; never appended image or reference
tokens). Its reference implementation (ltx-core 1.2.0) also drives the audio<->video AdaLN differently, see
:data:`AV_TIMESTEP_RULES`; :func:`default_av_timestep_rule` picks each release's own.

Memory: attention always goes through ``scaled_dot_product_attention`` and builds no T x T mask unless the input
has one; the blocks update the residual streams in place and put their intermediates in one
:class:`.layers.Workspace` per forward; AdaLN runs once per distinct timestep (:mod:`.modulation`); the feed-forward can be chunked over tokens
(``ffn_chunk_tokens``); with :func:`.offload.place_weights` the block weights can stay on the CPU (streamed block
by block) and/or be stored as float8 and upcast one block at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import parallel
from .config import LTX25, TransformerConfig
from .errors import InputError
from .layers import AdaLNSingle, Workspace
from .modulation import TimestepModulation
from .perturbations import Perturbations, Skip
from .rope import RopeTables, rope_tables
from .transformer_block import AVTransformerBlock, BlockSkips, StreamState, compiled_run_block, run_block

log = logging.getLogger("ltx_av.transformer")

# Which timesteps drive the AdaLN of the audio<->video cross-attention (architecture notes §5.7). The released
# code changed this twice and no checkpoint metadata records which one a file was trained with:
# * "cross_sigma" (ltx-core 1.0.0, the PyPI release that runs both LTX-2 and LTX-2.3): scale/shift and gate from
#   the *other* stream's per-sample sigma. diffusers calls this the LTX-2.3 behaviour (use_cross_timestep=True).
# * "per_token" (the first LTX-2 release, Jan 2026): scale/shift and gate from the stream's own per-token
#   timesteps. diffusers calls this the legacy LTX-2.0 behaviour (use_cross_timestep=False).
# * "per_token_cross_gate" (ltx-core 1.2.0): scale/shift from the own per-token timesteps, gate from the other
#   stream's sigma.
# All three agree when both streams share one sigma and no token is conditioned.
AV_TIMESTEP_RULES = ("cross_sigma", "per_token", "per_token_cross_gate")
DEFAULT_AV_TIMESTEP_RULE = "cross_sigma"


def default_av_timestep_rule(config: TransformerConfig) -> str:
    """The rule of the implementation a release was published with: LTX-2.5 runs only in ltx-core 1.2.0."""
    return "per_token_cross_gate" if config.variant == LTX25 else DEFAULT_AV_TIMESTEP_RULE


@dataclass(frozen=True)
class StreamInput:
    """One stream's input to :meth:`AudioVideoTransformer.forward`.

    ``latent``: ``[B, T, 128]`` patchified tokens (conditioning tokens appended after the generated ones).
    ``sigma``: the step's noise level per sample, ``[B]`` (or a float): drives prompt AdaLN and the other stream's
    cross-attention AdaLN. ``timesteps``: ``[B, T]`` (or ``[B, T, 1]``) per-token noise level in [0, 1]
    (= denoise mask x sigma; 0 keeps a token clean). ``positions``: ``[B, 3, T, 2]`` video bounds (seconds,
    pixels, pixels) or ``[B, 1, T, 2]`` audio bounds (seconds), see :mod:`.patchify`. ``context``: ``[B, L, C]``
    text context (C = ``caption_channels`` for LTX-2, the stream width for LTX-2.3). ``context_mask``: ``[B, L]``,
    1/True for real tokens. ``self_attention_mask``: ``[B, T, T]`` in [0, 1] (1 attends fully, 0 not at all).
    ``enabled``: False skips the stream's own layers (it still feeds the other stream); its output is then unused.
    ``keyframes``: video only, ``[B, T]`` (or ``[B, T, 1]``), nonzero for the tokens that encode one standalone
    pixel frame; models with a keyframe embedding (LTX-2.5) add it to them, others ignore it. ``None``: no token.
    """

    latent: torch.Tensor
    sigma: torch.Tensor | float
    timesteps: torch.Tensor
    positions: torch.Tensor
    context: torch.Tensor
    context_mask: torch.Tensor | None = None
    self_attention_mask: torch.Tensor | None = None
    enabled: bool = True
    keyframes: torch.Tensor | None = None

    @property
    def batch(self) -> int:
        return self.latent.shape[0]

    @property
    def tokens(self) -> int:
        return self.latent.shape[1]


def velocity_to_x0(latent: torch.Tensor, velocity: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """``x0 = latent - velocity * t`` per token in float32 (``[B, T, C]``, timesteps ``[B, T]`` or ``[B, T, 1]``),
    returned in the latent's dtype."""
    t = timesteps.float()
    if t.ndim == latent.ndim - 1:
        t = t.unsqueeze(-1)
    return (latent.float() - velocity.float() * t).to(latent.dtype)


class CaptionProjection(nn.Module):
    """LTX-2 only: text features (3840) -> stream width, Linear -> GELU(tanh) -> Linear."""

    def __init__(self, in_features: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.gelu(self.linear_1(x), approximate="tanh"))


@dataclass(frozen=True)
class _StreamSpec:
    """Static facts and modules of one stream (video or audio), to prepare both with one code path."""

    name: str
    dim: int
    heads: int
    axes: int
    max_pos: tuple[int, ...]
    context_width: int
    patchify_proj: nn.Linear
    adaln: AdaLNSingle
    prompt_adaln: AdaLNSingle | None
    caption_projection: CaptionProjection | None
    cross_scale_shift_adaln: AdaLNSingle
    cross_gate_adaln: AdaLNSingle
    scale_shift_table: nn.Parameter
    proj_out: nn.Linear


class AudioVideoTransformer(nn.Module):
    """The transformer; attribute names are the checkpoint keys (``model.diffusion_model.`` stripped).

    ``av_timestep_rule``: one of :data:`AV_TIMESTEP_RULES` (default: the release's own,
    :func:`default_av_timestep_rule`). ``ffn_chunk_tokens``: run the feed-forward over at most this many tokens at a
    time (same result, smaller peak). ``compile_blocks``: False (default), True or a ``torch.compile`` backend name:
    run the blocks through one compiled function (:func:`.transformer_block.compiled_run_block`, which compiles on
    the first call of each input shape). All three are plain attributes and may be changed between calls.
    """

    def __init__(
        self,
        config: TransformerConfig,
        *,
        av_timestep_rule: str | None = None,
        ffn_chunk_tokens: int | None = None,
    ):
        super().__init__()
        self.config = config
        self.av_timestep_rule = av_timestep_rule or default_av_timestep_rule(config)
        self.ffn_chunk_tokens = ffn_chunk_tokens
        self.compile_blocks: bool | str = False
        # Set by offload.place_weights: how the weights are placed, and the per-block materialiser when block
        # weights are streamed or stored in float8 (None: resident).
        self.placement: Any = None
        self.block_weights: Any = None
        v, a, rows = config.video_dim, config.audio_dim, config.adaln_coefficients
        v1 = config.text_path_version == 1

        prompt_adaln = config.cross_attention_adaln and config.use_prompt_adaln_single
        self.patchify_proj = nn.Linear(config.in_channels, v)
        self.keyframes_abs_pos_embedding = (
            nn.Parameter(torch.empty(1, v)) if config.use_keyframes_abs_pos_embedding else None
        )
        self.adaln_single = AdaLNSingle(v, rows)
        self.prompt_adaln_single = AdaLNSingle(v, 2) if prompt_adaln else None
        self.caption_projection = CaptionProjection(config.caption_channels, v) if v1 else None
        self.scale_shift_table = nn.Parameter(torch.empty(2, v))
        self.proj_out = nn.Linear(v, config.out_channels)

        self.audio_patchify_proj = nn.Linear(config.audio_in_channels, a)
        self.audio_adaln_single = AdaLNSingle(a, rows)
        self.audio_prompt_adaln_single = AdaLNSingle(a, 2) if prompt_adaln else None
        self.audio_caption_projection = CaptionProjection(config.caption_channels, a) if v1 else None
        self.audio_scale_shift_table = nn.Parameter(torch.empty(2, a))
        self.audio_proj_out = nn.Linear(a, config.audio_out_channels)

        self.av_ca_video_scale_shift_adaln_single = AdaLNSingle(v, 4)
        self.av_ca_audio_scale_shift_adaln_single = AdaLNSingle(a, 4)
        self.av_ca_a2v_gate_adaln_single = AdaLNSingle(v, 1)
        self.av_ca_v2a_gate_adaln_single = AdaLNSingle(a, 1)

        self.transformer_blocks = nn.ModuleList(AVTransformerBlock(config) for _ in range(config.num_layers))

    # -- public API ------------------------------------------------------------------------------------------

    @property
    def compute_dtype(self) -> torch.dtype:
        return self.patchify_proj.weight.dtype

    @property
    def compute_device(self) -> torch.device:
        return self.patchify_proj.weight.device

    @property
    def av_timestep_rule(self) -> str:
        return self._av_timestep_rule

    @av_timestep_rule.setter
    def av_timestep_rule(self, rule: str) -> None:
        if rule not in AV_TIMESTEP_RULES:
            raise InputError(f"av_timestep_rule is {rule!r}; expected one of {', '.join(AV_TIMESTEP_RULES)}")
        self._av_timestep_rule = rule

    def forward(
        self,
        video: StreamInput | None,
        audio: StreamInput | None,
        perturbations: Perturbations | None = None,
        *,
        block_weights: Any = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Velocities ``([B, T_v, 128] | None, [B, T_a, 128] | None)`` in float32 on the compute device.

        ``block_weights``: what materialises each block's weights for this call (an :class:`.offload.BlockWeights`,
        e.g. one carrying LoRA patches); default: the placement's own (``self.block_weights``)."""
        if video is None and audio is None:
            raise InputError("the transformer needs a video or an audio stream; both are None")
        specs = {"video": self._spec("video"), "audio": self._spec("audio")}
        inputs = {"video": video, "audio": audio}
        batch = next(s.batch for s in inputs.values() if s is not None)
        for name, stream in inputs.items():
            if stream is not None:
                _check_stream(name, stream, specs[name], batch)
        if perturbations is not None:
            perturbations.check(batch, len(self.transformer_blocks))

        live = {n: s for n, s in inputs.items() if s is not None and s.tokens > 0}
        mesh = parallel.current()
        shard = None
        if mesh is not None and "video" in live:
            # Sequence parallelism: this process runs its share of the video tokens (audio and text replicated).
            shard = mesh.token_shard(live["video"].tokens, self.config.num_attention_heads)
            if shard is not None:
                live["video"] = parallel.shard_input(live["video"], shard)
        states = {n: self._prepare(specs[n], s) for n, s in live.items()}
        if len(states) == 2:
            self._prepare_cross(specs, live, states)
        if shard is not None:
            states["video"].sequence = shard

        vs, as_ = states.get("video"), states.get("audio")
        device = self.compute_device
        if block_weights is None:
            block_weights = self.block_weights
        # One set of activation buffers for every block of this call (freed when it returns); compiled blocks get
        # fresh tensors, whose memory the compiler plans.
        workspace = Workspace(reuse=False) if self.compile_blocks else Workspace.for_call()
        run = run_block
        if self.compile_blocks:
            run = compiled_run_block(self.compile_blocks if isinstance(self.compile_blocks, str) else "inductor")
        for i, block in enumerate(self.transformer_blocks):
            skips = _block_skips(perturbations, i, device)
            weights = None if block_weights is None else block_weights.fetch(i)
            vx, ax = run(block, weights, vs, as_, skips, workspace)
            if vs is not None:
                vs.x = vx
            if as_ is not None:
                as_.x = ax
            # Drop this block's streamed weights before the next fetch, so at most two blocks are on the device.
            del weights
        reuse = workspace.reuse
        del workspace  # the blocks' buffers go before the output heads allocate theirs

        outputs = []
        for name, stream in inputs.items():
            if stream is None:
                outputs.append(None)
            elif name not in states:
                outputs.append(torch.zeros(batch, 0, specs[name].proj_out.out_features, device=device))
            else:
                out = self._output(specs[name], states[name], reuse)
                outputs.append(out if states[name].sequence is None else states[name].sequence.gather(out))
        return outputs[0], outputs[1]

    # -- preparation -----------------------------------------------------------------------------------------

    def _spec(self, name: str) -> _StreamSpec:
        c = self.config
        if name == "video":
            return _StreamSpec(
                name,
                c.video_dim,
                c.num_attention_heads,
                3,
                c.positional_embedding_max_pos,
                c.caption_channels if self.caption_projection is not None else c.cross_attention_dim,
                self.patchify_proj,
                self.adaln_single,
                self.prompt_adaln_single,
                self.caption_projection,
                self.av_ca_video_scale_shift_adaln_single,
                self.av_ca_a2v_gate_adaln_single,
                self.scale_shift_table,
                self.proj_out,
            )
        return _StreamSpec(
            name,
            c.audio_dim,
            c.audio_num_attention_heads,
            1,
            c.audio_positional_embedding_max_pos,
            c.caption_channels if self.audio_caption_projection is not None else c.audio_cross_attention_dim,
            self.audio_patchify_proj,
            self.audio_adaln_single,
            self.audio_prompt_adaln_single,
            self.audio_caption_projection,
            self.av_ca_audio_scale_shift_adaln_single,
            self.av_ca_v2a_gate_adaln_single,
            self.audio_scale_shift_table,
            self.audio_proj_out,
        )

    def _rope(self, positions: torch.Tensor, dim: int, heads: int, max_pos: tuple[int, ...]) -> RopeTables:
        c = self.config
        return rope_tables(
            positions.float(),
            dim=dim,
            heads=heads,
            max_pos=max_pos,
            theta=c.positional_embedding_theta,
            layout=c.rope_type,
            float64=c.rope_float64,
        )

    def _prepare(self, spec: _StreamSpec, s: StreamInput) -> StreamState:
        device, dtype, scale = self.compute_device, self.compute_dtype, self.config.timestep_scale_multiplier
        b = s.batch
        x = spec.patchify_proj(s.latent.to(device, dtype))
        if spec.name == "video":
            x = self._add_keyframe_embedding(x, s.keyframes)
        x = x.float()
        modulation = TimestepModulation(spec.adaln, _timesteps(s, device) * scale, dtype)
        prompt_modulation = None
        if spec.prompt_adaln is not None:
            values, _ = spec.prompt_adaln(_sigma(s, device) * scale, dtype)
            prompt_modulation = values.view(b, 1, 2, spec.dim)
        context, context_mask = _drop_padding(s.context.to(device, dtype), s.context_mask)
        if spec.caption_projection is not None:
            context = spec.caption_projection(context)
        return StreamState(
            x=x,
            modulation=modulation,
            context=context,
            rope=self._rope(s.positions.to(device), spec.dim, spec.heads, spec.max_pos),
            update=s.enabled,
            context_bias=_context_bias(context_mask, device, dtype),
            self_bias=_self_attention_bias(s.self_attention_mask, device, dtype),
            prompt_modulation=prompt_modulation,
            ffn_chunk_tokens=self.ffn_chunk_tokens,
        )

    def _add_keyframe_embedding(self, x: torch.Tensor, keyframes: torch.Tensor | None) -> torch.Tensor:
        """``x + marked * embedding`` in the compute dtype (the reference adds it before anything else runs)."""
        embedding = self.keyframes_abs_pos_embedding
        if embedding is None or keyframes is None:
            return x
        marked = (keyframes.to(x.device).reshape(x.shape[:2]) != 0).to(x.dtype)
        return x + marked.unsqueeze(-1) * embedding.to(x.dtype)

    def _prepare_cross(
        self, specs: dict[str, _StreamSpec], inputs: dict[str, StreamInput], states: dict[str, StreamState]
    ) -> None:
        """RoPE on the time axis and the audio<->video AdaLN inputs, per the selected timestep rule."""
        c, device, dtype = self.config, self.compute_device, self.compute_dtype
        scale = c.timestep_scale_multiplier
        gate_factor = c.av_ca_timestep_scale_multiplier / scale
        for name, other in (("video", "audio"), ("audio", "video")):
            spec, s, state = specs[name], inputs[name], states[name]
            own = _timesteps(s, device) * scale
            other_sigma = _sigma(inputs[other], device).view(-1, 1) * scale
            ss_input = other_sigma if self.av_timestep_rule == "cross_sigma" else own
            gate_input = own if self.av_timestep_rule == "per_token" else other_sigma
            state.cross_modulation = TimestepModulation(spec.cross_scale_shift_adaln, ss_input, dtype)
            state.cross_gate = TimestepModulation(spec.cross_gate_adaln, gate_input * gate_factor, dtype)
            state.cross_rope = self._cross_rope(s.positions, spec.heads)

    def _cross_rope(self, positions: torch.Tensor, heads: int) -> RopeTables:
        """RoPE of the audio<->video attention: the time axis only, in the audio attention's width."""
        c = self.config
        max_pos = (max(c.positional_embedding_max_pos[0], c.audio_positional_embedding_max_pos[0]),)
        positions = positions.to(self.compute_device)[:, :1]
        return self._rope(positions, c.audio_cross_attention_dim, heads, max_pos)

    def _output(self, spec: _StreamSpec, state: StreamState, in_place: bool = False) -> torch.Tensor:
        h = F.layer_norm(state.x, (spec.dim,), eps=self.config.norm_eps)
        table = spec.scale_shift_table.float()
        if not in_place:
            shift, scale = (table[:, None] + state.modulation.embedded_tokens()[:, None].float()).unbind(1)
            return spec.proj_out((h * (1 + scale) + shift).to(self.compute_dtype)).float()
        # Per run of tokens sharing a timestep, on the normalised stream itself: no token-sized rows or products.
        for tokens, embedded in state.modulation.embedded_runs():
            part = h[:, tokens]
            torch.addcmul(table[0] + embedded, part, 1 + (table[1] + embedded), out=part)
        return spec.proj_out(h.to(self.compute_dtype)).float()


# -- input handling ---------------------------------------------------------------------------------------------


def _timesteps(s: StreamInput, device: torch.device) -> torch.Tensor:
    t = s.timesteps.to(device, torch.float32)
    return t.squeeze(-1) if t.ndim == 3 else t


def _sigma(s: StreamInput, device: torch.device) -> torch.Tensor:
    sigma = torch.as_tensor(s.sigma, dtype=torch.float32, device=device).reshape(-1)
    return sigma.expand(s.batch) if sigma.numel() == 1 else sigma


def _drop_padding(context: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Text tokens that are padding in every batch item removed, and no mask left when the rest are all real.

    A padded key gets zero attention weight either way, but a mask is a ``[B, 1, 1, L]`` tensor that keeps SDPA
    off its flash / memory-efficient kernels on CUDA, and padding is work. A token counts as real where the mask
    is 1 (True); anything else is masked out, as the additive bias would do."""
    if mask is None:
        return context, None
    real = mask.to(context.device) == 1
    used = real.any(0)
    if not bool(used.any()):  # nothing real anywhere: leave it to the mask (the result is the reference's)
        return context, mask
    if not bool(used.all()):
        context, real = context[:, used], real[:, used]
    return (context, None) if bool(real.all()) else (context, real)


def _context_bias(mask: torch.Tensor | None, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
    """``[B, L]`` keep-mask -> additive ``[B, 1, 1, L]`` (a huge negative number on padding)."""
    if mask is None:
        return None
    keep = mask.to(device=device, dtype=dtype)
    return ((keep - 1) * torch.finfo(dtype).max).view(mask.shape[0], 1, 1, mask.shape[-1])


def _self_attention_bias(mask: torch.Tensor | None, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
    """``[B, T, T]`` attention strengths in [0, 1] -> additive log-strength ``[B, 1, T, T]`` (0 blocks fully)."""
    if mask is None:
        return None
    m = mask.to(device)
    if bool((m == 1).all()):  # full strength everywhere: the bias would be all zeros
        return None
    finfo = torch.finfo(dtype)
    log_strength = torch.log(m.clamp(min=finfo.tiny)).to(dtype)
    return torch.where(m > 0, log_strength, torch.full_like(log_strength, finfo.min)).unsqueeze(1)


def _block_skips(perturbations: Perturbations | None, block: int, device: torch.device) -> BlockSkips:
    if perturbations is None:
        return BlockSkips()
    return BlockSkips(
        video_self=perturbations.select(Skip.VIDEO_SELF_ATTENTION, block, device),
        audio_self=perturbations.select(Skip.AUDIO_SELF_ATTENTION, block, device),
        audio_to_video=perturbations.select(Skip.AUDIO_TO_VIDEO, block, device),
        video_to_audio=perturbations.select(Skip.VIDEO_TO_AUDIO, block, device),
    )


def _check_stream(name: str, s: StreamInput, spec: _StreamSpec, batch: int) -> None:
    """Shapes of one StreamInput, with errors that name the field."""

    def fail(field: str, got: Any, wanted: str) -> InputError:
        return InputError(f"{name} stream: {field} has shape {list(got)}; expected {wanted}")

    channels = spec.patchify_proj.in_features
    if s.latent.ndim != 3 or s.latent.shape[-1] != channels:
        raise fail("latent", s.latent.shape, f"[B, T, {channels}] patchified tokens")
    b, t = s.latent.shape[:2]
    if b != batch:
        raise InputError(f"{name} stream has batch {b} but the other stream has {batch}")
    ts = s.timesteps
    if tuple(ts.shape) not in ((b, t), (b, t, 1)):
        raise fail("timesteps", ts.shape, f"[{b}, {t}] (one sigma per token)")
    sigma = torch.as_tensor(s.sigma)
    if sigma.numel() not in (1, b):
        raise fail("sigma", sigma.shape, f"a float or [{b}]")
    if tuple(s.positions.shape) != (b, spec.axes, t, 2):
        raise fail("positions", s.positions.shape, f"[{b}, {spec.axes}, {t}, 2] [start, end) bounds")
    ctx = s.context
    if ctx.ndim != 3 or ctx.shape[0] != b or ctx.shape[-1] != spec.context_width:
        raise fail("context", ctx.shape, f"[{b}, L, {spec.context_width}] text context")
    if s.context_mask is not None and tuple(s.context_mask.shape) != (b, ctx.shape[1]):
        raise fail("context_mask", s.context_mask.shape, f"[{b}, {ctx.shape[1]}]")
    if s.self_attention_mask is not None and tuple(s.self_attention_mask.shape) != (b, t, t):
        raise fail("self_attention_mask", s.self_attention_mask.shape, f"[{b}, {t}, {t}]")
    if s.keyframes is not None:
        if spec.name != "video":
            raise InputError(f"{name} stream: keyframes marks video tokens; the audio stream has none")
        if tuple(s.keyframes.shape) not in ((b, t), (b, t, 1)):
            raise fail("keyframes", s.keyframes.shape, f"[{b}, {t}] (nonzero: a token of one standalone frame)")
