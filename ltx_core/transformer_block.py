"""One layer of the dual-stream audio-video DiT.

A block updates both streams in the paper's order: video self-attention and text cross-attention, the same for
audio, then audio->video and video->audio cross-attention (both read the states left by the text step), then each
stream's feed-forward. Every sub-layer is pre-normalised with a parameter-free RMSNorm and modulated per token
(AdaLN: ``norm(x) * (1 + scale) + shift``, output times ``gate``). The residual stream stays in float32 whatever
the weights' dtype; only the sub-layer inputs are cast to the compute dtype.

Where the time goes at full width is the GEMMs and the attention kernel; everything else is token-sized passes over
memory, so the block keeps those few and allocation-free (:class:`.layers.Workspace`): the norm is a per-token
factor from one reduction, the AdaLN rows are applied per run of tokens that share a timestep (no per-token rows),
float32 work happens in a float32 buffer with one cast at the end (mixed-dtype elementwise ops are slow on the
CPU), and the residual streams are updated in place. Without a reusing workspace (autograd on) the same arithmetic
runs on fresh tensors.

Modulation rows per stream (``scale_shift_table`` + the timestep's AdaLN output): 0 shift / 1 scale / 2 gate of
self-attention, 3-5 the same for the feed-forward, and with prompt AdaLN (LTX-2.3, LTX-2.5) 6-8 for the text query.
The text keys/values are modulated by the block's 2-row prompt table, plus the sample's sigma through the model's
prompt AdaLN unless the config drops it (``use_prompt_adaln_single: false``: the keys/values then no longer depend
on the step). LTX-2.5 feed-forwards may have no biases (``ff_bias`` / ``audio_ff_bias``).
The audio<->video tables have 5 rows: 0 scale / 1 shift of the A2V side, 2 scale / 3 shift of the V2A side
(computed from the cross-modal AdaLN) and 4 the output gate (from its own AdaLN).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .attention import Attention
from .config import TransformerConfig
from .layers import FeedForward, Workspace, rms_factor
from .modulation import TimestepModulation
from .parallel import TokenShard
from .rope import RopeTables


@dataclass
class StreamState:
    """What every block needs from one stream; prepared once per forward by the model.

    ``x``: ``[B, T, D]`` float32 residual stream. ``context``: ``[B, L, D]`` text context in the compute dtype.
    ``context_bias`` ``[B, 1, 1, L]`` / ``self_bias`` ``[B, 1, T, T]``: additive attention masks or ``None``.
    ``prompt_modulation``: ``[B, 1, 2, D]`` prompt-AdaLN output (LTX-2.3) for the text keys/values, ``None`` when
    only the block's prompt table modulates them.
    ``cross_*``: the audio<->video cross-attention inputs (only when both streams have tokens).
    ``update``: False leaves the stream unchanged (it still feeds the other stream's cross-attention).
    ``sequence``: this process holds only its share of the stream's tokens (:mod:`.parallel`).
    """

    x: torch.Tensor
    modulation: TimestepModulation
    context: torch.Tensor
    rope: RopeTables
    update: bool = True
    context_bias: torch.Tensor | None = None
    self_bias: torch.Tensor | None = None
    prompt_modulation: torch.Tensor | None = None
    cross_rope: RopeTables | None = None
    cross_modulation: TimestepModulation | None = None
    cross_gate: TimestepModulation | None = None
    ffn_chunk_tokens: int | None = None
    sequence: TokenShard | None = None

    @property
    def dtype(self) -> torch.dtype:
        return self.context.dtype


# Per attention path: None (no batch item skips it here), True (all do) or a [B] 0/1 float tensor (1 = skips).
SkipSelection = bool | torch.Tensor | None


@dataclass(frozen=True)
class BlockSkips:
    video_self: SkipSelection = None
    audio_self: SkipSelection = None
    audio_to_video: SkipSelection = None
    video_to_audio: SkipSelection = None


Runs = list[tuple[slice, torch.Tensor]]  # (token slice, [B, 1, D] row) pairs, see TimestepModulation.runs


def _modulate(
    ws: Workspace, role: str, x: torch.Tensor, r: torch.Tensor, shift: Runs, scale: Runs | None, dtype: torch.dtype
) -> torch.Tensor:
    """``(x * r) * (1 + scale) + shift`` in float32 (``r``: :func:`.layers.rms_factor` of ``x``; ``scale`` rows
    already hold the 1), cast to the compute dtype, in the workspace's ``role`` buffer. ``scale`` None: the plain
    norm (no shift either)."""
    if not ws.reuse:
        h = x * r
        if scale is not None:
            h = torch.cat([torch.addcmul(b, h[:, t], a) for (t, b), (_, a) in zip(shift, scale, strict=True)], 1)
        return h.to(dtype)
    out = ws.like(role, x, dtype)
    # float32 arithmetic in a float32 buffer, one cast at the end: mixed-dtype elementwise ops take PyTorch's slow
    # scalar path on the CPU
    work = out if dtype == torch.float32 else ws.like("f32", x)
    torch.mul(x, r, out=work)
    if scale is not None:
        for (tokens, b), (_, a) in zip(shift, scale, strict=True):
            part = work[:, tokens]
            torch.addcmul(b, part, a, out=part)
    if work is not out:
        out.copy_(work)
    return out


def _residual(ws: Workspace, x: torch.Tensor, out: torch.Tensor, gate: Runs | None) -> torch.Tensor:
    """``x + out * gate`` in float32 whatever ``out``'s dtype; in place on ``x`` when the workspace reuses."""
    if not ws.reuse:
        out = out.float()
        if gate is None:
            return x + out
        return torch.cat([torch.addcmul(x[:, t], out[:, t], g) for t, g in gate], 1)
    if out.dtype != x.dtype:
        out = ws.like("f32", x).copy_(out)
    if gate is None:
        return x.add_(out)
    for tokens, g in gate:
        x[:, tokens].addcmul_(out[:, tokens], g)
    return x


def _make_feed_forward(dim: int, bias: bool) -> FeedForward:
    """The 4x GELU feed-forward, without biases where the config says so (LTX-2.5's video stream)."""
    ff = FeedForward(dim)
    if not bias:
        # Same keys minus the two biases: swap in bias-free projections of the same shapes.
        ff.net[0].proj = nn.Linear(dim, 4 * dim, bias=False)
        ff.net[2] = nn.Linear(4 * dim, dim, bias=False)
    return ff


def _keep(skip: SkipSelection, out: torch.Tensor) -> torch.Tensor:
    """Zero the rows of the batch items that skip this path."""
    if isinstance(skip, torch.Tensor):
        return out * (1 - skip).to(out.dtype).view(-1, 1, 1)
    return out


class AVTransformerBlock(nn.Module):
    """Attribute names are the checkpoint keys under ``transformer_blocks.N.``."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        gated, v, a = config.apply_gated_attention, config.video_dim, config.audio_dim
        vh, vd = config.num_attention_heads, config.attention_head_dim
        ah, ad = config.audio_num_attention_heads, config.audio_attention_head_dim
        rows = config.adaln_coefficients
        self.eps = config.norm_eps

        self.attn1 = Attention(v, vh, vd, gated=gated, eps=self.eps)
        self.attn2 = Attention(v, vh, vd, context_dim=config.cross_attention_dim, gated=gated, eps=self.eps)
        self.ff = _make_feed_forward(v, config.ff_bias)
        self.scale_shift_table = nn.Parameter(torch.empty(rows, v))

        self.audio_attn1 = Attention(a, ah, ad, gated=gated, eps=self.eps)
        self.audio_attn2 = Attention(a, ah, ad, context_dim=config.audio_cross_attention_dim, gated=gated, eps=self.eps)
        self.audio_ff = _make_feed_forward(a, config.audio_ff_bias)
        self.audio_scale_shift_table = nn.Parameter(torch.empty(rows, a))

        # Both directions attend with the audio stream's head layout.
        self.audio_to_video_attn = Attention(v, ah, ad, context_dim=a, gated=gated, eps=self.eps)
        self.video_to_audio_attn = Attention(a, ah, ad, context_dim=v, gated=gated, eps=self.eps)
        self.scale_shift_table_a2v_ca_video = nn.Parameter(torch.empty(5, v))
        self.scale_shift_table_a2v_ca_audio = nn.Parameter(torch.empty(5, a))

        prompt_adaln = config.cross_attention_adaln
        self.prompt_scale_shift_table = nn.Parameter(torch.empty(2, v)) if prompt_adaln else None
        self.audio_prompt_scale_shift_table = nn.Parameter(torch.empty(2, a)) if prompt_adaln else None

    def forward(
        self,
        video: StreamState | None,
        audio: StreamState | None,
        skips: BlockSkips,
        workspace: Workspace | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Returns the new residual streams ``(video x, audio x)``; a stream that is ``None`` stays ``None``.

        With a reusing ``workspace`` (default: one for this call unless autograd records) the streams are updated
        in place and the returned tensors are the inputs' ``x``."""
        ws = workspace if workspace is not None else Workspace.for_call()
        vx = None if video is None else video.x
        ax = None if audio is None else audio.x
        run_video = video is not None and video.update
        run_audio = audio is not None and audio.update

        if run_video:
            vx = self._self_and_text_attention(
                ws,
                video,
                vx,
                self.attn1,
                self.attn2,
                self.scale_shift_table,
                self.prompt_scale_shift_table,
                skips.video_self,
            )
        if run_audio:
            ax = self._self_and_text_attention(
                ws,
                audio,
                ax,
                self.audio_attn1,
                self.audio_attn2,
                self.audio_scale_shift_table,
                self.audio_prompt_scale_shift_table,
                skips.audio_self,
            )
        if video is not None and audio is not None and (run_video or run_audio):
            vx, ax = self._audio_video_attention(ws, video, audio, vx, ax, run_video, run_audio, skips)
        if run_video:
            vx = self._feed_forward(ws, video, vx, self.ff, self.scale_shift_table)
        if run_audio:
            ax = self._feed_forward(ws, audio, ax, self.audio_ff, self.audio_scale_shift_table)
        return vx, ax

    def _self_and_text_attention(
        self,
        ws: Workspace,
        s: StreamState,
        x: torch.Tensor,
        self_attn: Attention,
        text_attn: Attention,
        table: torch.Tensor,
        prompt_table: torch.Tensor | None,
        skip: SkipSelection,
    ) -> torch.Tensor:
        m, dtype = s.modulation, s.dtype
        h = _modulate(ws, "h", x, rms_factor(x, self.eps), m.runs(table, 0), m.runs(table, 1, plus=1), dtype)
        out = self_attn(h, mask=s.self_bias, rope=s.rope, passthrough=skip, workspace=ws, sequence=s.sequence)
        x = _residual(ws, x, out, m.runs(table, 2))
        if prompt_table is None:
            h = _modulate(ws, "h", x, rms_factor(x, self.eps), [], None, dtype)
            return _residual(ws, x, text_attn(h, s.context, mask=s.context_bias, workspace=ws), None)
        # Prompt AdaLN: the text keys/values are modulated by the sample's sigma (or only by the table), the query
        # by its token's timestep.
        kv = prompt_table.float() if s.prompt_modulation is None else prompt_table.float() + s.prompt_modulation.float()
        kv_shift, kv_scale = kv.unbind(-2)
        context = _modulate_context(ws, s.context, kv_shift, 1 + kv_scale)
        h = _modulate(ws, "h", x, rms_factor(x, self.eps), m.runs(table, 6), m.runs(table, 7, plus=1), dtype)
        return _residual(ws, x, text_attn(h, context, mask=s.context_bias, workspace=ws), m.runs(table, 8))

    def _audio_video_attention(
        self,
        ws: Workspace,
        video: StreamState,
        audio: StreamState,
        vx: torch.Tensor,
        ax: torch.Tensor,
        run_video: bool,
        run_audio: bool,
        skips: BlockSkips,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Both directions read the streams as the text step left them: the norms now, and the video side of the
        # video->audio keys before the audio->video update changes the video stream (in place).
        rv, ra = rms_factor(vx, self.eps), rms_factor(ax, self.eps)
        tv, ta = self.scale_shift_table_a2v_ca_video, self.scale_shift_table_a2v_ca_audio
        vm, am = video.cross_modulation, audio.cross_modulation
        a2v = run_video and skips.audio_to_video is not True
        v2a = run_audio and skips.video_to_audio is not True
        if v2a:
            v2a_kv = _modulate(ws, "v2a.kv", vx, rv, vm.runs(tv, 3), vm.runs(tv, 2, plus=1), audio.dtype)
        if a2v:
            q = _modulate(ws, "h", vx, rv, vm.runs(tv, 1), vm.runs(tv, 0, plus=1), video.dtype)
            kv = _modulate(ws, "h2", ax, ra, am.runs(ta, 1), am.runs(ta, 0, plus=1), video.dtype)
            out = self.audio_to_video_attn(q, kv, rope=video.cross_rope, k_rope=audio.cross_rope, workspace=ws)
            vx = _residual(ws, vx, _keep(skips.audio_to_video, out), video.cross_gate.runs(tv[4:], 0))
        if v2a:
            q = _modulate(ws, "h", ax, ra, am.runs(ta, 3), am.runs(ta, 2, plus=1), audio.dtype)
            # with the video tokens split over processes, the (replicated) audio attends to every rank's share
            out = self.video_to_audio_attn(
                q, v2a_kv, rope=audio.cross_rope, k_rope=video.cross_rope, workspace=ws, context_shard=video.sequence
            )
            ax = _residual(ws, ax, _keep(skips.video_to_audio, out), audio.cross_gate.runs(ta[4:], 0))
        return vx, ax

    def _feed_forward(
        self, ws: Workspace, s: StreamState, x: torch.Tensor, ff: FeedForward, table: torch.Tensor
    ) -> torch.Tensor:
        m = s.modulation
        h = _modulate(ws, "h", x, rms_factor(x, self.eps), m.runs(table, 3), m.runs(table, 4, plus=1), s.dtype)
        return _residual(ws, x, ff(h, chunk_tokens=s.ffn_chunk_tokens, workspace=ws), m.runs(table, 5))


def run_block(
    block: AVTransformerBlock,
    weights: dict[str, torch.Tensor] | None,
    video: StreamState | None,
    audio: StreamState | None,
    skips: BlockSkips,
    workspace: Workspace,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """One block's forward, with ``weights`` (name -> tensor, e.g. streamed or float8 ones) in place of its own
    parameters when given."""
    if weights is None:
        return block(video, audio, skips, workspace)
    return torch.func.functional_call(block, weights, (video, audio, skips, workspace))


@functools.cache
def compiled_run_block(backend: str = "inductor", fullgraph: bool = False) -> Any:
    """:func:`run_block` through ``torch.compile`` (one compiled function for every block of every model).

    The block's hot path traces into one graph without breaks (``tests/test_fast_paths.py``), and all blocks share
    it: their parameters are inputs of the graph, not constants, so 48 blocks compile once per input shape and
    skip pattern. Call it with a non-reusing :class:`.layers.Workspace`: the compiler plans the intermediates' memory
    itself, and buffers handed out by a Python object across calls would only add guards and copies."""
    return torch.compile(run_block, backend=backend, fullgraph=fullgraph, dynamic=False)


def _modulate_context(ws: Workspace, context: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Text keys/values input ``context * scale + shift`` (``[B, 1, D]`` rows) in float32, in ``context``'s dtype."""
    if not ws.reuse:
        return torch.addcmul(shift, context, scale).to(context.dtype)
    out = ws.like("ctx", context)
    work = out if context.dtype == torch.float32 else ws.like("f32", context, torch.float32).copy_(context)
    torch.addcmul(shift, context if work is out else work, scale, out=work)
    if work is not out:
        out.copy_(work)
    return out
