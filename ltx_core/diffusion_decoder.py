"""The diffusion video decoder of LTX-2.5 (``CausalDiffusionVAE``'s decoder): latents -> pixels by a few denoising steps.

Stages 1-4 turn the latent into a context volume: neighbourhood-attention transformer blocks at each resolution,
each stage closed by a linear pixel-shuffle upsampler (space x2, time x2, all x2, all x2). Stage 5 is a small
diffusion transformer over 4x4 pixel patches: from noise at t = 1 it predicts the velocity (or the clean pixels)
of the video, every block first adding its own projection of the context, the timestep entering through a shared
AdaLN (scale and shift, no gates). The released decoder takes a single step that predicts the clean pixels.

This module holds the network and the decode of one tile of the stage-4 grid (:meth:`DiffusionDecoder.decode_tile`);
the official decode's padding, tiling and noise live in ``diffusion_tiling``. Attention runs in slabs of rows so
that its working memory is a fraction of one activation (``NeighborhoodSelfAttention``); residual updates are in
place. The architecture comes from :class:`DiffusionDecoderConfig`.

Module keys are the official file's (``det_stages.0.0.attn.qkv.weight``, ``t_embedder.mlp.0.weight``,
``diff_blocks.0.context_proj.weight``, ...); a file may add static per-channel gates (``gate_msa``, ``gate_mlp``,
``gate_ctx``) that scale a block's three residual branches.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import _Section
from .errors import ConfigError
from .layers import sinusoidal_embedding
from .neighborhood_attention import attend, window_start

Kernel = tuple[int, int, int]

NORM_EPS = 1e-6
ROPE_BASE = 10000.0
# The VAE grid the official decode assumes: 8 frames and 32x32 pixels per latent cell.
TIME_SCALE, SPACE_SCALE = 8, 32
PREDICTIONS = ("v", "x0")
# Bytes of normalised rows one attention slab may hold (its queries, keys and values take about four times this).
_SLAB_BYTES = 192 * 2**20
# Tokens per pass of the feed-forward and projections (bounds their [tokens, hidden] temporaries).
_TOKEN_CHUNK = 16384
_ADALN_CHUNKS = 7  # scale/shift/gate for attention and MLP, and a context gate; the gates are unused


def rope_split(head_dim: int) -> Kernel:
    """How a head's channels are shared among the (time, height, width) rotary embeddings (even counts)."""
    d_t = (head_dim // 4) // 2 * 2
    d_hw = (head_dim - d_t) // 2
    if d_hw % 2:
        d_t -= 2
        d_hw = (head_dim - d_t) // 2
    return d_t, d_hw, d_hw


@dataclass(frozen=True)
class DiffusionDecoderConfig:
    """The diffusion decoder (``config["vae"]["decoder"]`` of a ``CausalDiffusionVAE`` file).

    ``upsamples``: per stage boundary, the (time, height, width) stride and the channel reduction. ``steps``,
    ``timestep_scale`` and ``prediction`` are ``default_num_inference_steps``, ``timestep_scale_multiplier`` and
    ``vae.model_output_type``. ``static_gates``: the file stores per-channel gates on the diffusion blocks.
    """

    latent_channels: int
    out_channels: int
    patch_size: int
    head_dim: int
    stage_channels: tuple[int, ...]
    stage_depths: tuple[int, ...]
    stage_kernels: tuple[Kernel, ...]
    upsamples: tuple[tuple[Kernel, int], ...]
    stage5_kernel: Kernel
    stage5_channels: int
    t_emb_dim: int
    steps: int
    timestep_scale: float
    prediction: str
    static_gates: bool = False

    @classmethod
    def from_vae_config(cls, vae: Mapping[str, Any], static_gates: bool = False) -> DiffusionDecoderConfig:
        """From the ``vae`` section. Absent keys take ltx-core 1.2.0's values, except those that size the network
        (stage channels, depths, kernels, upsamplers, head width), which a file must give."""
        top = _Section("vae", vae)
        nested = top.values.get("decoder", top.values)
        s = _Section("vae.decoder" if "decoder" in top.values else "vae", nested)
        for key in ("stage_channels", "stage_depths", "stage_kernels", "upsamples", "stage5_kernel"):
            if not s.has(key):
                raise ConfigError(f"config key '{s.name}.{key}' is missing; it sizes the diffusion decoder")
        head_key = "head_dim" if s.has("head_dim") or not s.has("na_head_dim") else "na_head_dim"
        channels = s.ints("stage_channels", length=5)
        depths = s.ints("stage_depths", length=5, minimum=0)
        kernels = s.int_lists("stage_kernels", ())
        if len(kernels) != 5 or any(len(k) != 3 for k in kernels):
            raise s._fail("stage_kernels", s.values["stage_kernels"], "5 lists of 3 window sizes (time, height, width)")
        stage5_kernel = s.ints("stage5_kernel", length=3)
        config = cls(
            latent_channels=s.int("in_channels", top.int("latent_channels", 128)),
            out_channels=s.int("out_channels", 3),
            patch_size=s.int("patch_size", 4),
            head_dim=s.int(head_key),
            stage_channels=channels,
            stage_depths=depths,
            stage_kernels=tuple(tuple(k) for k in kernels),  # type: ignore[misc]
            upsamples=_upsamples(s),
            stage5_kernel=stage5_kernel,  # type: ignore[arg-type]
            stage5_channels=s.int("stage5_channels", channels[-1]),
            t_emb_dim=s.int("t_emb_dim", 384),
            steps=s.int("default_num_inference_steps", 2),
            timestep_scale=s.float("timestep_scale_multiplier", 1.0),
            prediction=top.choice("model_output_type", "v", PREDICTIONS),
            static_gates=static_gates,
        )
        config.validate(s.name)
        return config

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], static_gates: bool = False) -> DiffusionDecoderConfig:
        """From a file's safetensors metadata (the ``config`` entry, JSON with a ``vae`` section)."""
        try:
            config = json.loads(metadata.get("config") or "{}")
        except ValueError as e:
            raise ConfigError(f"metadata 'config' is not valid JSON ({e})") from e
        vae = config.get("vae") if isinstance(config, dict) else None
        if not isinstance(vae, Mapping):
            raise ConfigError("metadata 'config' has no 'vae' section")
        return cls.from_vae_config(vae, static_gates)

    def validate(self, where: str = "vae.decoder") -> None:
        """Raise :class:`ConfigError` unless the stages fit together and upsample a latent cell to 8x32x32."""
        c = self.stage_channels
        for i, (stride, reduction) in enumerate(self.upsamples):
            if c[i] % reduction or c[i] // reduction != c[i + 1]:
                raise ConfigError(
                    f"config '{where}': upsampler {i} divides {c[i]} channels by {reduction}, but stage {i + 1} has "
                    f"{c[i + 1]}"
                )
            if stride[0] not in (1, 2) or stride[1] != stride[2] or stride[1] not in (1, 2):
                raise ConfigError(f"config key '{where}.upsamples[{i}]' has stride {list(stride)}; expected 1 or 2")
        time = math.prod(s[0] for s, _ in self.upsamples)
        space = math.prod(s[1] for s, _ in self.upsamples) * self.patch_size
        if (time, space) != (TIME_SCALE, SPACE_SCALE):
            raise ConfigError(
                f"config '{where}': the upsamplers and patch size scale a latent cell by {time}x{space}x{space}; "
                f"the LTX video grid is {TIME_SCALE}x{SPACE_SCALE}x{SPACE_SCALE}"
            )
        widths = {"stage_channels": c, "stage5_channels": (self.stage5_channels,)}
        for key, values in widths.items():
            if any(v % self.head_dim for v in values):
                raise ConfigError(f"config key '{where}.{key}' is {list(values)}; each must be a multiple of head_dim")
        d_t, d_h, d_w = rope_split(self.head_dim)
        if self.head_dim % 8 or d_t <= 0 or d_h <= 0:
            raise ConfigError(f"config key '{where}.head_dim' is {self.head_dim}; expected a multiple of 8 from 16")

    # -- geometry of the official decode -------------------------------------------------------------------------

    @property
    def trailing_latent_frames(self) -> int:
        """Copies of the last latent frame added through stages 1-4, so the last frames are not at the border of
        the stage-1 time window (NATTEN shifts windows inward there)."""
        return (self.stage_kernels[0][0] // 2) * 2

    @property
    def min_latent(self) -> Kernel:
        """Smallest latent (frames, height, width) every stage's window fits in; smaller latents are padded."""
        mins = [1, 1, 1]
        strides = (1, 1, 1)
        windows = [*self.stage_kernels[:4], self.stage5_kernel]
        for i, window in enumerate(windows):
            for axis in range(3):
                mins[axis] = max(mins[axis], -(-window[axis] // strides[axis]))
            if i < 4:
                strides = tuple(a * b for a, b in zip(strides, self.upsamples[i][0], strict=True))
        return tuple(mins)  # type: ignore[return-value]

    @property
    def tile_min(self) -> Kernel:
        """Smallest stage-4 tile (stage-4 cells): stages 4 and 5 must both fit their windows."""
        stride = self.upsamples[3][0]
        return tuple(max(self.stage_kernels[3][a], -(-self.stage5_kernel[a] // stride[a])) for a in range(3))  # type: ignore[return-value]

    @property
    def pixel_scale(self) -> Kernel:
        """Output frames / pixels per stage-4 cell."""
        st, sh, sw = self.upsamples[3][0]
        return st, sh * self.patch_size, sw * self.patch_size

    @property
    def min_overlaps(self) -> tuple[int, int]:
        """Smallest tile overlaps (frames, pixels) the official decode accepts: the reach of stages 4 and 5's
        attention, rounded up to the VAE grid."""
        stride = self.upsamples[3][0]
        halo4 = [self.stage_depths[3] * (self.stage_kernels[3][a] // 2) for a in range(3)]
        halo5 = [-(-(self.stage_depths[4] * (self.stage5_kernel[a] // 2)) // stride[a]) for a in range(3)]
        reach = [max(a, b) for a, b in zip(halo4, halo5, strict=True)]
        frames = -(-reach[0] * self.pixel_scale[0] // TIME_SCALE) * TIME_SCALE
        pixels = -(-max(reach[1], reach[2]) * self.pixel_scale[1] // SPACE_SCALE) * SPACE_SCALE
        return frames, pixels

    def timesteps(self) -> torch.Tensor:
        """The decode's timesteps, 1 down to 1/steps (float32)."""
        return torch.linspace(1.0, 1.0 / self.steps, self.steps)


def _upsamples(s: _Section) -> tuple[tuple[Kernel, int], ...]:
    raw = s.values.get("upsamples")
    wanted = "4 entries [[time, height, width] stride, channel reduction]"
    if not isinstance(raw, (list, tuple)) or len(raw) != 4:
        raise s._fail("upsamples", raw, wanted)
    out = []
    for entry in raw:
        ok = isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], (list, tuple))
        values = list(entry[0]) + [entry[1]] if ok else []
        if not ok or len(values) != 4 or not all(type(v) is int and 1 <= v <= 64 for v in values):
            raise s._fail("upsamples", raw, wanted)
        out.append((tuple(values[:3]), values[3]))
    return tuple(out)  # type: ignore[return-value]


# -- building blocks ------------------------------------------------------------------------------------------------


def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.shape[-1],), weight, NORM_EPS)


def _inverse_frequencies(dim: int) -> torch.Tensor:
    exponents = torch.arange(0, dim, 2, dtype=torch.float64) / dim
    return (1.0 / torch.pow(torch.tensor(ROPE_BASE, dtype=torch.float64), exponents)).float()


def apply_rope(x: torch.Tensor, positions: tuple[torch.Tensor, torch.Tensor, torch.Tensor], split: Kernel) -> None:
    """Rotate ``x [B, T, H, W, heads, d]`` in place by its absolute (t, h, w) positions (float32 vectors), each
    axis on its share of the head's channels, pairs of neighbouring channels rotated together."""
    start = 0
    for axis, (pos, width) in enumerate(zip(positions, split, strict=True)):
        angle = pos.to(torch.float32)[:, None] * _inverse_frequencies(width).to(pos.device)[None, :]
        shape = [1, 1, 1, 1, 1, width // 2]
        shape[axis + 1] = pos.shape[0]
        cos, sin = angle.cos().view(shape), angle.sin().view(shape)
        pairs = x[..., start : start + width].unflatten(-1, (width // 2, 2))
        even, odd = pairs[..., 0].float(), pairs[..., 1].float()
        rotated_even = even * cos - odd * sin
        rotated_odd = even * sin + odd * cos
        pairs[..., 0] = rotated_even
        pairs[..., 1] = rotated_odd
        start += width


def _positions(start: int, stop: int, device: torch.device) -> torch.Tensor:
    return torch.arange(start, stop, dtype=torch.float32, device=device)


class NeighborhoodSelfAttention(nn.Module):
    """Multi-head self-attention over 3-D windows (keys ``qkv``, ``proj``, ``q_norm``, ``k_norm``): queries and keys
    RMS-normalised per head, then rotated by their absolute positions (rotary embeddings split over t, h, w)."""

    def __init__(self, dim: int, head_dim: int, kernel: Kernel):
        super().__init__()
        self.dim, self.head_dim, self.heads = dim, head_dim, dim // head_dim
        self.kernel = tuple(kernel)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.q_norm = nn.RMSNorm(head_dim, eps=NORM_EPS)
        self.k_norm = nn.RMSNorm(head_dim, eps=NORM_EPS)

    def residual_(
        self,
        x: torch.Tensor,
        prepare: Callable[[torch.Tensor], torch.Tensor],
        gate: torch.Tensor | None = None,
        width_pad: int = 0,
    ) -> torch.Tensor:
        """``x [B, T, H, W, C] += gate * proj(attention(prepare(x)))`` in place; returns ``x``.

        ``prepare`` maps tokens to the attention input (the block's norm and modulation). ``width_pad``: attend as
        if the input were padded along the width by that many copies of its edge columns (ltx-pipelines' chunked
        decode); 0 keeps NATTEN's shifted windows there too. Runs in slabs of rows, keeping a copy of the rows a
        later slab still needs before they are updated.
        """
        b, t, h, w, c = x.shape
        kt, kh, kw = self.kernel
        if t < kt or h < kh or w + 2 * width_pad < kw:
            raise ValueError(f"a {t}x{h}x{w} volume is smaller than the {self.kernel} attention window")
        padded = w + 2 * width_pad
        row_bytes = b * t * padded * c * x.element_size()
        rows = max(1, min(h, _SLAB_BYTES // row_bytes - 2 * (kh // 2)))
        weight, bias = self.proj.weight, self.proj.bias
        if gate is not None:
            weight, bias = weight * gate[:, None], bias * gate
        kept = x[:, :, :0]  # original rows [kept_start, h0) that slabs still to come need
        kept_start = 0
        for h0 in range(0, h, rows):
            h1 = min(h, h0 + rows)
            r0, r1 = window_start(h0, h, kh), window_start(h1 - 1, h, kh) + kh

            def original(a: int, z: int, h0: int = h0, kept: torch.Tensor = kept, kept_start: int = kept_start):
                """Rows [a, z) of x as it was before this residual (rows below h0 are updated already)."""
                parts = [kept[:, :, a - kept_start : h0 - kept_start]] if a < h0 else []
                return [*parts, x[:, :, max(a, h0) : z]] if z > max(a, h0) else parts

            parts = original(r0, r1)
            if width_pad == 0 and len(parts) == 1:
                y = prepare(parts[0])
            else:
                y = x.new_empty((b, t, r1 - r0, padded, c))
                row = 0
                for part in parts:
                    y[:, :, row : row + part.shape[2], width_pad : width_pad + w] = prepare(part)
                    row += part.shape[2]
                if width_pad:
                    y[:, :, :, :width_pad] = y[:, :, :, width_pad : width_pad + 1]
                    y[:, :, :, width_pad + w :] = y[:, :, :, width_pad + w - 1 : width_pad + w]
            del parts
            out = self._attend(y, (h0 - r0, h1 - r0), (r0, r1), h, width_pad)
            del y
            if h1 < h:
                next_start = window_start(h1, h, kh)
                kept, kept_start = torch.cat(original(next_start, h1), dim=2), next_start
            target = x[:, :, h0:h1]
            step = max(1, _TOKEN_CHUNK // max(1, (h1 - h0) * w))
            for f0 in range(0, t, step):
                target[:, f0 : f0 + step].add_(F.linear(out[:, f0 : f0 + step], weight, bias))
            del out
        return x

    def _attend(
        self, y: torch.Tensor, query_rows: tuple[int, int], key_rows: tuple[int, int], height: int, width_pad: int
    ) -> torch.Tensor:
        """Attention output ``[B, T, rows, W, C]`` of the query rows of a slab ``y`` (keys: all of its rows)."""
        b, t, r, padded, c = y.shape
        w = padded - 2 * width_pad
        heads, d = self.heads, self.head_dim
        split = rope_split(d)
        device = y.device
        wq, bq = self.qkv.weight[:c], self.qkv.bias[:c]
        wk, bk = self.qkv.weight[c : 2 * c], self.qkv.bias[c : 2 * c]
        wv, bv = self.qkv.weight[2 * c :], self.qkv.bias[2 * c :]
        q0, q1 = query_rows
        t_pos = _positions(0, t, device)

        def head_major(z: torch.Tensor) -> torch.Tensor:  # [B, T, R, W, heads, d] -> [B, heads, T, R, W, d]
            return z.permute(0, 4, 1, 2, 3, 5).contiguous()

        q = F.linear(y[:, :, q0:q1, width_pad : width_pad + w], wq, bq).unflatten(-1, (heads, d))
        q = F.rms_norm(q, (d,), self.q_norm.weight, NORM_EPS).mul_(d**-0.5)
        apply_rope(q, (t_pos, _positions(key_rows[0] + q0, key_rows[0] + q1, device), _positions(0, w, device)), split)
        q = head_major(q)
        k = F.rms_norm(F.linear(y, wk, bk).unflatten(-1, (heads, d)), (d,), self.k_norm.weight, NORM_EPS)
        apply_rope(k, (t_pos, _positions(*key_rows, device), _positions(-width_pad, w + width_pad, device)), split)
        k = head_major(k)
        v = head_major(F.linear(y, wv, bv).unflatten(-1, (heads, d)))
        extent = (t, height, padded)
        o = attend(q, k, v, self.kernel, extent, (0, key_rows[0] + q0, width_pad), (0, key_rows[0], 0))
        del q, k, v
        return o.permute(0, 2, 3, 4, 1, 5).reshape(b, t, q1 - q0, w, c)


class SwiGLU(nn.Module):
    """Gated feed-forward ``w_down(silu(w_gate(x)) * w_up(x))``, no biases."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w_up = nn.Linear(dim, hidden, bias=False)
        self.w_gate = nn.Linear(dim, hidden, bias=False)
        self.w_down = nn.Linear(hidden, dim, bias=False)

    def residual_(
        self,
        x: torch.Tensor,
        prepare: Callable[[torch.Tensor, int], torch.Tensor],
        gate: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x [B, ..., C] += gate * mlp(prepare(x))`` in place, a chunk of tokens of one sample at a time;
        ``prepare(tokens, sample)`` is the block's norm (and modulation)."""
        down = self.w_down.weight if gate is None else self.w_down.weight * gate[:, None]
        for i, sample in enumerate(x.view(x.shape[0], -1, x.shape[-1])):
            for s0 in range(0, sample.shape[0], _TOKEN_CHUNK):
                part = sample[s0 : s0 + _TOKEN_CHUNK]
                y = prepare(part, i)
                hidden = F.silu(F.linear(y, self.w_gate.weight), inplace=True)
                hidden.mul_(F.linear(y, self.w_up.weight))
                del y
                part.add_(F.linear(hidden, down))
        return x


def _hidden_width(dim: int) -> int:
    """The feed-forward width: 4x, rounded up to a multiple of 16."""
    return (dim * 4 + 15) // 16 * 16


class NABlock(nn.Module):
    """Pre-norm transformer block of stages 1-4: neighbourhood attention, then the gated feed-forward."""

    def __init__(self, dim: int, head_dim: int, kernel: Kernel):
        super().__init__()
        self.norm1 = nn.RMSNorm(dim, eps=NORM_EPS)
        self.attn = NeighborhoodSelfAttention(dim, head_dim, kernel)
        self.norm2 = nn.RMSNorm(dim, eps=NORM_EPS)
        self.mlp = SwiGLU(dim, _hidden_width(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T, H, W, C]``, updated in place."""
        self.attn.residual_(x, lambda z: rms_norm(z, self.norm1.weight))
        return self.mlp.residual_(x, lambda z, _: rms_norm(z, self.norm2.weight))


class DiffusionBlock(nn.Module):
    """Stage-5 block: adds its projection of the context, then attention and feed-forward on AdaLN-modulated
    inputs (``scale_shift_table`` + the shared timestep modulation). Optional static gates scale the branches."""

    def __init__(self, dim: int, context_channels: int, head_dim: int, kernel: Kernel, gates: bool):
        super().__init__()
        self.context_proj = nn.Linear(context_channels, dim)
        self.scale_shift_table = nn.Parameter(torch.zeros(_ADALN_CHUNKS, dim))
        self.norm1 = nn.RMSNorm(dim, eps=NORM_EPS)
        self.attn = NeighborhoodSelfAttention(dim, head_dim, kernel)
        self.norm2 = nn.RMSNorm(dim, eps=NORM_EPS)
        self.mlp = SwiGLU(dim, _hidden_width(dim))
        if gates:
            self.gate_msa = nn.Parameter(torch.ones(dim))
            self.gate_mlp = nn.Parameter(torch.ones(dim))
            self.gate_ctx = nn.Parameter(torch.ones(dim))
        else:
            self.gate_msa = self.gate_mlp = self.gate_ctx = None

    def context_weights(self, upsample: nn.Linear, stride: Kernel) -> tuple[torch.Tensor, torch.Tensor]:
        """One linear map from stage-4 features to this block's context term, laid out like ``upsample``'s output
        (the context projection applied to every pixel-shuffle position): the full-resolution context is then
        never stored."""
        w, b = self.context_proj.weight.float(), self.context_proj.bias.float()
        if self.gate_ctx is not None:
            g = self.gate_ctx.float()
            w, b = w * g[:, None], b * g
        positions = math.prod(stride)
        up_w = upsample.weight.float().view(-1, positions, upsample.in_features)
        up_b = upsample.bias.float().view(-1, positions)
        fused_w = torch.einsum("oc,cpi->opi", w, up_w).reshape(-1, upsample.in_features)
        fused_b = (w @ up_b + b[:, None]).reshape(-1)
        dtype = self.context_proj.weight.dtype
        return fused_w.to(dtype), fused_b.to(dtype)

    def forward(
        self,
        x: torch.Tensor,
        inject_context: Callable[[torch.Tensor], None],
        modulation: torch.Tensor,
        width_pad: int,
    ) -> torch.Tensor:
        """``x [B, F, H, W, C]`` updated in place; ``modulation [B, 7, C]`` (the shared AdaLN output)."""
        table = modulation + self.scale_shift_table.to(modulation.dtype)[None]
        scale_msa, shift_msa, scale_mlp, shift_mlp = (table[:, i] for i in (0, 1, 3, 4))
        inject_context(x)
        per_sample = (x.shape[0], 1, 1, 1, x.shape[-1])
        scale_msa, shift_msa = (1.0 + scale_msa).view(per_sample), shift_msa.view(per_sample)

        def attention_input(z: torch.Tensor) -> torch.Tensor:  # a slab of every sample
            return rms_norm(z, self.norm1.weight).mul_(scale_msa).add_(shift_msa)

        self.attn.residual_(x, attention_input, self.gate_msa, width_pad)

        def mlp_input(z: torch.Tensor, sample: int) -> torch.Tensor:
            return rms_norm(z, self.norm2.weight).mul_(1.0 + scale_mlp[sample]).add_(shift_mlp[sample])

        return self.mlp.residual_(x, mlp_input, self.gate_mlp)


class PixelShuffleUpsample(nn.Module):
    """Linear channel expansion then depth-to-space by ``stride`` (key ``proj``); with a time stride of 2 the first
    output frame (the causal copy of frame 0) is dropped when the input starts at the video's first frame."""

    def __init__(self, channels: int, stride: Kernel, reduction: int):
        super().__init__()
        self.stride = tuple(stride)
        self.out_channels = channels // reduction
        self.proj = nn.Linear(channels, math.prod(stride) * self.out_channels)

    def forward(self, x: torch.Tensor, origin: bool = True) -> torch.Tensor:
        b, t, h, w, _ = x.shape
        st, sh, sw = self.stride
        drop = 1 if st == 2 and origin else 0
        out = x.new_empty((b, t * st - drop, h * sh, w * sw, self.out_channels))
        chunk = max(1, _TOKEN_CHUNK // max(1, h * w))
        for f0 in range(0, t, chunk):
            f1 = min(t, f0 + chunk)
            y = shuffle(self.proj(x[:, f0:f1]), self.stride, self.out_channels)
            lo = f0 * st - drop
            out[:, max(lo, 0) : f1 * st - drop] = y[:, max(0, -lo) :]
        return out


def shuffle(y: torch.Tensor, stride: Kernel, channels: int) -> torch.Tensor:
    """``[B, T, H, W, C*st*sh*sw]`` (channels ordered c, st, sh, sw) -> ``[B, T*st, H*sh, W*sw, C]``."""
    b, t, h, w, _ = y.shape
    st, sh, sw = stride
    y = y.view(b, t, h, w, channels, st, sh, sw).permute(0, 1, 5, 2, 6, 3, 7, 4)
    return y.reshape(b, t * st, h * sh, w * sw, channels)


class TimestepEmbedder(nn.Module):
    """256 sinusoidal features of the scaled timestep through ``mlp`` (Linear, SiLU, Linear)."""

    def __init__(self, dim: int, features: int = 256):
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(features, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t, self.features).to(dtype))


class AdaLN(nn.Module):
    """The timestep embedding to 7 modulation vectors per sample (key ``proj``)."""

    def __init__(self, dim: int, t_emb_dim: int):
        super().__init__()
        self.proj = nn.Linear(t_emb_dim, _ADALN_CHUNKS * dim)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.proj(F.silu(embedding)).unflatten(-1, (_ADALN_CHUNKS, -1))


# -- patches -----------------------------------------------------------------------------------------------------


def patchify(pixels: torch.Tensor, patch: int) -> torch.Tensor:
    """``[B, C, F, H, W]`` -> channels-last patches ``[B, F, H/p, W/p, C*p*p]`` (channels ordered c, x, y)."""
    b, c, f, h, w = pixels.shape
    x = pixels.view(b, c, f, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 3, 5, 1, 6, 4).reshape(b, f, h // patch, w // patch, c * patch * patch)


def unpatchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Inverse of :func:`patchify`."""
    b, f, h, w, cpp = x.shape
    c = cpp // (patch * patch)
    v = x.view(b, f, h, w, c, patch, patch)
    return v.permute(0, 4, 1, 2, 6, 3, 5).reshape(b, c, f, h * patch, w * patch)


# -- the decoder -------------------------------------------------------------------------------------------------


class DiffusionDecoder(nn.Module):
    """Un-normalised latents -> pixels ``[B, C, 8(F'-1)+1, 32H', 32W']`` (about [-1, 1], not clamped)."""

    def __init__(self, config: DiffusionDecoderConfig):
        super().__init__()
        config.validate()
        self.config = config
        c = config.stage_channels
        self.conv_in = nn.Linear(config.latent_channels, c[0])
        self.det_stages = nn.ModuleList(
            nn.ModuleList(
                NABlock(c[i], config.head_dim, config.stage_kernels[i]) for _ in range(config.stage_depths[i])
            )
            for i in range(4)
        )
        self.upsamples = nn.ModuleList(
            PixelShuffleUpsample(c[i], stride, reduction) for i, (stride, reduction) in enumerate(config.upsamples)
        )
        self.t_embedder = TimestepEmbedder(config.t_emb_dim)
        width, patch_channels = config.stage5_channels, config.out_channels * config.patch_size**2
        self.conv_in_x_t = nn.Linear(patch_channels, width)
        self.shared_adaln = AdaLN(width, config.t_emb_dim)
        self.diff_blocks = nn.ModuleList(
            DiffusionBlock(width, c[-1], config.head_dim, config.stage5_kernel, config.static_gates)
            for _ in range(config.stage_depths[4])
        )
        self.norm_out = nn.RMSNorm(width, eps=NORM_EPS)
        self.conv_out = nn.Linear(width, patch_channels)

    def stage_features(self, latent: torch.Tensor) -> torch.Tensor:
        """Stages 1-3 on a whole (padded) un-normalised latent ``[B, C, T, H, W]`` -> stage-4 input ``[B, T4, H4,
        W4, C4]`` (channels-last)."""
        x = self.conv_in(latent.permute(0, 2, 3, 4, 1))
        for stage in range(3):
            for block in self.det_stages[stage]:
                x = block(x)
            x = self.upsamples[stage](x, origin=True)
        return x

    def decode_tile(
        self,
        features: torch.Tensor,
        noise: torch.Tensor,
        *,
        origin: bool,
        trailing: bool,
        width_pad: bool = True,
    ) -> torch.Tensor:
        """Stages 4-5 on one stage-4 tile ``[B, T4, H4, W4, C4]`` (its own tensor: updated in place) from the
        initial ``noise`` ``[B, C, F, H, W]`` -> pixels of the same shape.

        ``origin``: the tile starts at the video's first frame. ``trailing``: it ends at the last and includes the
        copies of the last latent frame, whose frames are cut from the context. ``width_pad``: stage 5's attention
        sees edge copies beyond the width (ltx-pipelines' default chunked decode) instead of shifted windows.
        """
        config = self.config
        for block in self.det_stages[3]:
            features = block(features)
        upsample = self.upsamples[3]
        stride = upsample.stride
        frames = features.shape[1] * stride[0] - (1 if stride[0] == 2 and origin else 0)
        if trailing and config.trailing_latent_frames:
            ghost = config.trailing_latent_frames * TIME_SCALE
            frames = min(frames, max(frames - ghost, 1, config.stage5_kernel[0]))
        p = config.patch_size
        expected = (frames, features.shape[2] * stride[1] * p, features.shape[3] * stride[2] * p)
        if tuple(noise.shape[2:]) != expected:
            raise ValueError(f"noise for this tile must be {list(expected)} (frames, height, width); got {noise.shape}")
        fused = [block.context_weights(upsample.proj, stride) for block in self.diff_blocks]
        pad = config.stage5_kernel[2] // 2 if width_pad else 0
        timesteps = config.timesteps().to(noise.device)
        x_t = noise
        for i, t in enumerate(timesteps):
            t_batch = t.expand(noise.shape[0])
            prediction = self._step(x_t, features, fused, t_batch, origin, pad).float()
            t_next = timesteps[i + 1] if i + 1 < len(timesteps) else torch.zeros_like(t)
            if config.prediction == "x0":
                if i + 1 == len(timesteps):
                    return prediction.to(noise.dtype)
                velocity = (x_t.float() - prediction) / t
            else:
                velocity = prediction
            x_t = (x_t.float() - (t - t_next) * velocity).to(noise.dtype)
        return x_t

    def _step(
        self,
        x_t: torch.Tensor,
        features: torch.Tensor,
        fused: list[tuple[torch.Tensor, torch.Tensor]],
        t: torch.Tensor,
        origin: bool,
        width_pad: int,
    ) -> torch.Tensor:
        """One evaluation of stage 5: the model output for ``x_t`` at timesteps ``t [B]``, as pixels."""
        config = self.config
        x = self.conv_in_x_t(patchify(x_t, config.patch_size))
        embedding = self.t_embedder(config.timestep_scale * t.float(), x.dtype)
        modulation = self.shared_adaln(embedding)
        stride = self.upsamples[3].stride
        for block, (weight, bias) in zip(self.diff_blocks, fused, strict=True):

            def inject(x: torch.Tensor, weight: torch.Tensor = weight, bias: torch.Tensor = bias) -> None:
                _add_context(x, features, weight, bias, stride, origin)

            block(x, inject, modulation, width_pad)
        x = self.conv_out(rms_norm(x, self.norm_out.weight))
        return unpatchify(x, config.patch_size)


def _add_context(
    x: torch.Tensor, features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: Kernel, origin: bool
) -> None:
    """``x [B, F, H, W, C] +=`` the block's context term from the stage-4 features, frames beyond ``F`` (the cut
    copies of the last latent frame) left out."""
    b, t4, h4, w4, _ = features.shape
    st = stride[0]
    drop = 1 if st == 2 and origin else 0
    frames, channels = x.shape[1], x.shape[-1]
    chunk = max(1, _TOKEN_CHUNK // max(1, h4 * w4 * math.prod(stride)) * 4)
    for f0 in range(0, t4, chunk):
        lo = f0 * st - drop
        if lo >= frames:
            break
        f1 = min(t4, f0 + chunk)
        y = shuffle(F.linear(features[:, f0:f1], weight, bias), stride, channels)
        k0, k1 = max(0, -lo), min(y.shape[1], frames - lo)
        x[:, lo + k0 : lo + k1].add_(y[:, k0:k1])


__all__ = [
    "DiffusionBlock",
    "DiffusionDecoder",
    "DiffusionDecoderConfig",
    "NABlock",
    "NeighborhoodSelfAttention",
    "PixelShuffleUpsample",
    "apply_rope",
    "patchify",
    "rope_split",
    "unpatchify",
]
