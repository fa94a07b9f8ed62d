"""One video on several processes (GPUs): guidance parallelism and sequence parallelism on ``torch.distributed``.

A :class:`Mesh` splits the processes of an initialised default process group into a grid of ``guidance x sequence``
ranks (rank = guidance index x sequence + sequence index, so a sequence group is a run of neighbouring ranks: on
GPUs the heavier all-to-all traffic stays among the closest devices). Inside ``with use(mesh):`` the sampler and
the transformer pick it up; with no mesh active nothing here runs and results are bit for bit those of one
process.

* Guidance parallelism (:func:`.sampling.denoise`): a step's passes (cond, uncond, perturbed, isolated) are dealt
  round-robin over the guidance ranks; each computes its own, then :meth:`Mesh.share_predictions` all-gathers the
  x0 predictions so every rank combines all of them the same way and takes the same Euler step. The loop's states
  stay replicated on every rank. A run with fewer passes than guidance groups (an unguided stage) samples with
  every rank in one sequence group instead (:meth:`Mesh.for_passes`).
* Sequence parallelism (Ulysses, inside :class:`.transformer.AudioVideoTransformer`): the video tokens of a
  forward are split over the sequence ranks (:class:`TokenShard`; uneven sizes when the count does not divide, no
  padding enters any arithmetic). Everything per token (AdaLN, q/k RMSNorm over the full inner width, RoPE, the
  feed-forward, text cross-attention, audio->video cross-attention against the replicated audio) runs on the
  shard as it is. The video self-attention swaps token shards for head groups with one all-to-all of q, k and v,
  attends over all tokens with ``H / P`` heads, and swaps back; when the heads do not divide, the keys and values
  are all-gathered instead and each rank attends its own queries. In video->audio cross-attention the replicated
  audio queries attend to each rank's video keys and the partial softmaxes are merged (only audio-sized results
  travel), and the velocities are all-gathered at the end, so the caller sees the full result on every rank.

Every collective goes through this module and adds the bytes it sends to other ranks to :data:`TRAFFIC` (an
all-gather as a ring sends ``(P - 1)`` chunks; an all-to-all sends everything not addressed to itself), which is
what ``bench/parallel.py`` compares with the arithmetic in the README.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist

from .errors import InputError

log = logging.getLogger("ltx_av.parallel")

_ACTIVE: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar("ltx_av_parallel_mesh", default=None)


@dataclass
class Traffic:
    """Bytes this process sent to other ranks (see the module notes), by what they were for."""

    sequence_bytes: int = 0
    guidance_bytes: int = 0
    calls: int = 0

    def reset(self) -> None:
        self.sequence_bytes = self.guidance_bytes = self.calls = 0

    @property
    def total_bytes(self) -> int:
        return self.sequence_bytes + self.guidance_bytes


TRAFFIC = Traffic()


class Mesh:
    """``guidance x sequence`` ranks over the default process group (which must be initialised and hold exactly
    that many processes). ``sequence`` default: the world size divided by ``guidance``.

    Every process must build its meshes in the same order (``new_group`` is collective)."""

    def __init__(self, guidance: int = 1, sequence: int | None = None):
        if not dist.is_available() or not dist.is_initialized():
            raise InputError(
                "a parallel Mesh needs torch.distributed initialised first (torch.distributed.init_process_group, "
                "or start the command with torchrun); without it sampling runs in this one process"
            )
        world = dist.get_world_size()
        if not isinstance(guidance, int) or guidance < 1 or world % guidance:
            raise InputError(
                f"guidance parallelism is {guidance!r}; it must be a whole divisor of the {world} processes"
            )
        if sequence is None:
            sequence = world // guidance
        if not isinstance(sequence, int) or sequence < 1 or guidance * sequence != world:
            raise InputError(
                f"guidance x sequence parallelism is {guidance} x {sequence!r}; the product must be the {world} "
                "processes started"
            )
        self.world, self.rank = world, dist.get_rank()
        self.guidance, self.sequence = guidance, sequence
        self.guidance_index, self.sequence_index = divmod(self.rank, sequence)
        # new_group is collective over the whole world: every rank creates every group, in the same order.
        self.sequence_group = self.guidance_group = None
        if sequence > 1:
            for g in range(guidance):
                group = dist.new_group(list(range(g * sequence, (g + 1) * sequence)))
                if g == self.guidance_index:
                    self.sequence_group = group
        if guidance > 1:
            for s in range(sequence):
                group = dist.new_group([g * sequence + s for g in range(guidance)])
                if s == self.sequence_index:
                    self.guidance_group = group

    def __repr__(self) -> str:
        return f"Mesh(rank {self.rank} of {self.world}: guidance {self.guidance} x sequence {self.sequence})"

    def for_passes(self, count: int) -> Mesh:
        """The mesh a run of ``count`` passes a step samples on: this one, or, with fewer passes than guidance
        groups (an unguided stage on a guidance-parallel mesh), every process in one sequence group, so that none
        sits idle."""
        if count >= self.guidance:
            return self
        flat = object.__new__(Mesh)
        flat.world, flat.rank = self.world, self.rank
        flat.guidance, flat.sequence = 1, self.world
        flat.guidance_index, flat.sequence_index = 0, self.rank
        flat.guidance_group = flat.sequence_group = None  # None: the default group, every process
        return flat

    # -- guidance ------------------------------------------------------------------------------------------------

    def own_passes(self, count: int) -> list[int]:
        """Indices of the ``count`` passes of a step this rank computes (round-robin over the guidance ranks)."""
        return list(range(self.guidance_index, count, self.guidance))

    def share_predictions(
        self,
        count: int,
        mine: dict[int, tuple[torch.Tensor, torch.Tensor | None]],
        like: tuple[torch.Tensor, torch.Tensor | None],
    ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """All ``count`` passes' ``(video x0, audio x0 | None)`` on every rank, from each rank's own ``mine``
        (pass index -> prediction, for the indices :meth:`own_passes` gave; shapes those of ``like``). One
        all-gather of float32 slots per step; a rank with fewer passes than another sends zeros in their place."""
        if self.guidance == 1:
            return [mine[j] for j in range(count)]
        shapes = [t.shape for t in like if t is not None]
        sizes = [s.numel() for s in shapes]
        device = like[0].device
        slots = -(-count // self.guidance)
        packed = torch.zeros(slots, sum(sizes), dtype=torch.float32, device=device)
        for j, prediction in mine.items():
            packed[j // self.guidance] = torch.cat([t.reshape(-1).float() for t in prediction if t is not None])
        parts = [torch.empty_like(packed) for _ in range(self.guidance)]
        _count("guidance", packed, self.guidance - 1)
        dist.all_gather(parts, packed, group=self.guidance_group)
        out = []
        for j in range(count):
            flat = parts[j % self.guidance][j // self.guidance]
            pieces = [p.view(shape) for p, shape in zip(flat.split(sizes), shapes, strict=True)]
            out.append((pieces[0], pieces[1] if len(pieces) > 1 else None))
        return out

    # -- sequence ------------------------------------------------------------------------------------------------

    def token_shard(self, tokens: int, heads: int) -> TokenShard | None:
        """How a forward's ``tokens`` video tokens split over this rank's sequence group; None when there is no
        split (no sequence parallelism, or fewer tokens than ranks: every rank then runs them all)."""
        if self.sequence == 1 or tokens < self.sequence:
            return None
        base, extra = divmod(tokens, self.sequence)
        sizes = [base + (r < extra) for r in range(self.sequence)]
        start = sum(sizes[: self.sequence_index])
        return TokenShard(
            self.sequence_group, self.sequence_index, tuple(sizes), start, start + sizes[self.sequence_index], heads
        )


@dataclass(frozen=True)
class TokenShard:
    """This rank's run ``[start, stop)`` of a stream's tokens; ``sizes``: every rank's count, in rank order.
    ``heads``: the self-attention's head count (Ulysses when the ranks divide it, else a key/value all-gather)."""

    group: object
    index: int
    sizes: tuple[int, ...]
    start: int
    stop: int
    heads: int

    @property
    def ranks(self) -> int:
        return len(self.sizes)

    @property
    def tokens(self) -> int:
        return sum(self.sizes)

    @property
    def ulysses(self) -> bool:
        return self.heads % self.ranks == 0

    def take(self, t: torch.Tensor | None, dim: int = 1) -> torch.Tensor | None:
        """This rank's tokens of a full-length tensor (along ``dim``)."""
        return None if t is None else t.narrow(dim, self.start, self.stop - self.start)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, own tokens, C]`` from every rank -> ``[B, all tokens, C]`` on every rank (a padded all-gather: the
        ranks' counts may differ by one)."""
        b, _, c = x.shape
        longest = max(self.sizes)
        padded = x.new_zeros(b, longest, c)
        padded[:, : x.shape[1]] = x
        parts = [torch.empty_like(padded) for _ in range(self.ranks)]
        _count("sequence", padded, self.ranks - 1)
        dist.all_gather(parts, padded, group=self.group)
        return torch.cat([p[:, :n] for p, n in zip(parts, self.sizes, strict=True)], dim=1)

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None,
        kernel: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, int], torch.Tensor],
    ) -> torch.Tensor:
        """Self-attention of the sharded tokens: ``q, k, v`` ``[B, own tokens, H*D]`` -> ``[B, own tokens, H*D]``,
        the rows full attention over all tokens gives. ``mask``: additive, over all tokens (``[B, 1|H, T, T]``).
        ``kernel(q, k, v, mask, heads)`` is the attention itself on ``[B, *, heads*D]`` tensors."""
        if not self.ulysses:
            # Heads that do not split: every rank attends its own queries to all keys and values.
            k, v = self.gather(k), self.gather(v)
            if mask is not None and mask.shape[-2] == self.tokens:
                mask = mask.narrow(-2, self.start, self.stop - self.start)
            return kernel(q, k, v, mask, self.heads)
        heads = self.heads // self.ranks
        if mask is not None and mask.shape[1] == self.heads:
            mask = mask.narrow(1, self.index * heads, heads)
        q, k, v = self._tokens_to_heads(torch.stack((q, k, v)))
        return self._heads_to_tokens(kernel(q, k, v, mask, heads))

    def attend_to_shards(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, heads: int
    ) -> torch.Tensor:
        """Every query (``q`` ``[B, Tq, H*D]``, the same on every rank) against keys and values split over the
        ranks (``k, v``: this rank's share): ``[B, Tq, H*D]``, attention over all keys.

        Each rank attends to its own keys and keeps the softmax's running maximum and sum; those partial results
        are all-gathered and merged exactly (log-sum-exp). What travels is ``Tq x (H*D + 2H)`` float32 values per
        rank, not the keys: for video->audio that is the few audio tokens instead of the many video ones.
        ``mask``: additive over all keys (``[B, 1|H, Tq, S]``)."""
        b, tq, width = q.shape
        d = width // heads
        qh, kh, vh = (t.reshape(b, -1, heads, d).transpose(1, 2).float() for t in (q, k, v))
        scores = torch.matmul(qh, kh.transpose(-1, -2)).mul_(d**-0.5)  # [B, H, Tq, own keys]
        if mask is not None:
            scores += mask.narrow(-1, self.start, self.stop - self.start).float()
        peak = scores.amax(-1, keepdim=True)
        weights = scores.sub_(peak).exp_()
        partial = torch.cat([torch.matmul(weights, vh), peak, weights.sum(-1, keepdim=True)], dim=-1)
        parts = [torch.empty_like(partial) for _ in range(self.ranks)]
        _count("sequence", partial, self.ranks - 1)
        dist.all_gather(parts, partial, group=self.group)
        stacked = torch.stack(parts)  # [P, B, H, Tq, D + 2]
        out, peaks, sums = stacked[..., :d], stacked[..., d : d + 1], stacked[..., d + 1 :]
        scale = (peaks - peaks.amax(0, keepdim=True)).exp_()
        merged = (out * scale).sum(0) / (sums * scale).sum(0)
        return merged.transpose(1, 2).reshape(b, tq, width).to(q.dtype)

    def _tokens_to_heads(self, qkv: torch.Tensor) -> torch.Tensor:
        """``[3, B, own tokens, H*D]`` -> ``[3, B, all tokens, H/P*D]`` (this rank's head group)."""
        n, b, t, width = qkv.shape
        p = self.ranks
        # destination rank outermost, so each rank's part is one contiguous block of rows
        send = qkv.view(n, b, t, p, width // p).permute(3, 0, 1, 2, 4).contiguous()
        recv = qkv.new_empty(n * b * self.tokens, width // p)
        _all_to_all(recv, send.view(p * n * b * t, -1), [n * b * s for s in self.sizes], [n * b * t] * p, self)
        parts = [
            r.view(n, b, s, -1) for r, s in zip(recv.split([n * b * s for s in self.sizes]), self.sizes, strict=True)
        ]
        return torch.cat(parts, dim=2)

    def _heads_to_tokens(self, out: torch.Tensor) -> torch.Tensor:
        """``[B, all tokens, H/P*D]`` -> ``[B, own tokens, H*D]``."""
        b, _, width = out.shape
        p, own = self.ranks, self.stop - self.start
        send = torch.cat([c.reshape(-1, width) for c in out.split(list(self.sizes), dim=1)])
        recv = out.new_empty(p * b * own, width)
        _all_to_all(recv, send, [b * own] * p, [b * s for s in self.sizes], self)
        return recv.view(p, b, own, width).permute(1, 2, 0, 3).reshape(b, own, p * width)


def _all_to_all(
    recv: torch.Tensor, send: torch.Tensor, recv_rows: list[int], send_rows: list[int], shard: TokenShard
) -> None:
    row = send.shape[1] * send.element_size()
    TRAFFIC.sequence_bytes += row * (sum(send_rows) - send_rows[shard.index])
    TRAFFIC.calls += 1
    dist.all_to_all_single(recv, send, recv_rows, send_rows, group=shard.group)


def _count(kind: str, chunk: torch.Tensor, others: int) -> None:
    sent = chunk.numel() * chunk.element_size() * others
    if kind == "sequence":
        TRAFFIC.sequence_bytes += sent
    else:
        TRAFFIC.guidance_bytes += sent
    TRAFFIC.calls += 1


# -- selecting a mesh ------------------------------------------------------------------------------------------------


def current() -> Mesh | None:
    """The mesh of the enclosing :func:`use`, or None (one process)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def use(mesh: Mesh | None) -> Iterator[Mesh | None]:
    """Sample (and run the transformer) on ``mesh`` inside the block; None leaves one-process behaviour."""
    token = _ACTIVE.set(mesh)
    try:
        yield mesh
    finally:
        _ACTIVE.reset(token)


def is_writer() -> bool:
    """Whether this process writes results: the only process, or rank 0 of a started group."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


# -- launching under torchrun ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """What torchrun (or any launcher setting its variables) asked of this process."""

    rank: int
    world: int
    local_rank: int


def launched() -> Launch | None:
    """The launch this process is part of when started by torchrun with more than one process, else None."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise InputError(f"WORLD_SIZE is {os.environ['WORLD_SIZE']!r}; expected a whole number") from None
    if world <= 1:
        return None
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise InputError(
            f"WORLD_SIZE is {world} but {', '.join(missing)} is not set: start several processes with torchrun "
            "(torchrun --nproc-per-node N -m ltx_av generate ...)"
        )
    return Launch(int(os.environ["RANK"]), world, int(os.environ["LOCAL_RANK"]))


def guidance_groups(world: int, requested: int | None, passes: int) -> int:
    """How many guidance groups ``world`` processes form: ``requested`` when it divides them, else (None) the
    largest divisor of ``world`` no larger than ``passes``, the forwards a step needs."""
    if requested is None:
        return max(g for g in range(1, world + 1) if world % g == 0 and g <= max(passes, 1))
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1 or world % requested:
        divisors = [g for g in range(1, world + 1) if world % g == 0]
        raise InputError(
            f"is {requested!r}; the {world} processes split into {', '.join(map(str, divisors))} guidance group(s)"
        )
    return requested


def start(launch: Launch, device: str, guidance: int, passes: int) -> tuple[Mesh, str]:
    """Join the process group torchrun set up (nccl on CUDA, one GPU per local rank; gloo on the CPU) and build
    the mesh of ``guidance`` groups (:func:`guidance_groups`) that split the video over the rest. Returns the mesh
    and this rank's device."""
    cuda = device.startswith("cuda")
    if cuda:
        count = torch.cuda.device_count()
        if launch.local_rank >= count:
            raise InputError(
                f"local rank {launch.local_rank} has no GPU: this machine has {count}; start at most {count} processes "
                "per node (--nproc-per-node)"
            )
        device = f"cuda:{launch.local_rank}"
        torch.cuda.set_device(launch.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", rank=launch.rank, world_size=launch.world)
    mesh = Mesh(guidance=guidance)
    if mesh.guidance > passes:
        log.info(
            "%d guidance groups but a step has %d pass(es): every process splits the video tokens instead",
            mesh.guidance,
            passes,
        )
    return mesh, device


def stop() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def describe(mesh: Mesh, passes: Sequence[object] | int) -> str:
    count = passes if isinstance(passes, int) else len(passes)
    return (
        f"{mesh.world} processes: guidance {mesh.guidance} x sequence {mesh.sequence} ({count} pass(es) per step; "
        "video tokens split over the sequence ranks)"
    )


def shard_input(stream, shard: TokenShard):
    """A :class:`.transformer.StreamInput` cut to the shard's tokens (the full self-attention mask stays: the
    attention sees all tokens)."""
    return replace(
        stream,
        latent=shard.take(stream.latent),
        timesteps=shard.take(stream.timesteps),
        positions=shard.take(stream.positions, 2),
        keyframes=shard.take(stream.keyframes),
    )
