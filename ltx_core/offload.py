"""Where the transformer's weights live, and how a block's weights reach the compute device when it runs.

The 48 blocks hold ~98% of the weights (19-22 B parameters), so three storage choices matter, all applied to an
already loaded :class:`.transformer.AudioVideoTransformer` by :func:`place_weights` (the model class is the same):

* resident (default): every weight on the compute device in the compute dtype;
* streamed blocks: block weights stay in (pinned) CPU memory and are copied to the compute device one block at a
  time, the next block's copy overlapping the current block's compute on a side CUDA stream; only two blocks are
  ever on the device, so a 19 B model runs on a GPU far smaller than its weights;
* float8 storage: every block's linear weight matrices are kept as ``float8_e4m3fn`` with one scale per output
  row (``max |row| / 448``) and upcast to the compute dtype one block at a time. Halves weight memory (and the
  bytes streamed) at a precision cost we state and test (``tests/test_offload.py``): on the tiny models the
  velocity's RMS error stays below 4% of its standard deviation and its largest error below 20%;
* float8 compute (an option of float8 storage, bfloat16 only): the float8 matrices are not upcast but multiplied
  as they are (:func:`.layers.float8_linear`, ``torch._scaled_mm`` with the row scales, the activations quantised
  per token), on cards with float8 tensor cores (compute capability 8.9+) twice bfloat16's matmul rate. Each layer
  gets its scales as a non-persistent ``weight_scale`` buffer on the compute device; matrices whose sides are not
  multiples of 16 (which ``_scaled_mm`` refuses on CUDA) are upcast as with storage alone.

Everything outside the blocks (patchify, AdaLN, output head, LTX-2's caption projection) stays resident.

A :class:`BlockWeights` may also carry LoRA patches (:mod:`.lora`): each patched weight is then materialised as
``W + up @ down`` in the compute dtype, after any float8 dequantisation, into a fresh tensor; the stored weight is
never written. :class:`Placement` records on the model how it is placed, so several holders of one model (a base
and its LoRA'd variants) agree on where its weights are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from .errors import InputError
from .layers import float8_linear

log = logging.getLogger("ltx_av.offload")

BLOCKS_PREFIX = "transformer_blocks."
FLOAT8 = torch.float8_e4m3fn
FLOAT8_MAX = torch.finfo(FLOAT8).max
_FLOAT8_TYPES = (torch.float8_e4m3fn, torch.float8_e5m2)


@dataclass(frozen=True)
class Placement:
    """How :func:`place_weights` last placed a model's weights (kept on the model as ``model.placement``)."""

    device: torch.device
    dtype: torch.dtype
    stream_blocks: bool
    float8: bool
    float8_compute: bool = False

    @property
    def block_storage(self) -> torch.device:
        """Where the block weights are kept: the CPU when they stream, else the compute device."""
        return torch.device("cpu") if self.stream_blocks else self.device


# One block's LoRA patches: parameter name inside the block -> (up [out, R], down [R, in]) in the compute dtype, on
# the block storage device; the weight the block computes with is ``W + up @ down``.
BlockPatches = dict[str, tuple[torch.Tensor, torch.Tensor]]


def _is_float8_candidate(name: str, p: torch.Tensor) -> bool:
    """Linear weight matrices inside the blocks (not the modulation tables, norms or biases)."""
    return name.startswith(BLOCKS_PREFIX) and p.ndim == 2 and name.endswith(".weight")


def quantize_float8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[out, in]`` weight -> (float8 tensor, float32 ``[out, 1]`` scales) with ``w ~= q.float() * scale``.

    One scale per output row (``max |row| / 448``) so that rows with small weights keep their precision."""
    w = w.detach().float()
    amax = w.abs().amax(dim=1, keepdim=True)
    scale = torch.where(amax > 0, amax / FLOAT8_MAX, torch.ones_like(amax))
    return (w / scale).clamp_(-FLOAT8_MAX, FLOAT8_MAX).to(FLOAT8), scale


def float8_compute_problem(device: torch.device | str) -> str | None:
    """Why float8 compute cannot run on ``device`` (None when it can): no ``torch._scaled_mm`` in this torch, a
    CUDA card without float8 tensor cores, or a trial product that fails."""
    device = torch.device(device)
    if not hasattr(torch, "_scaled_mm"):
        return f"torch {torch.__version__} has no torch._scaled_mm (float8 matmul)"
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if (major, minor) < (8, 9):
            name = torch.cuda.get_device_name(device)
            return f"{name} (compute capability {major}.{minor}) has no float8 matmul; it needs 8.9 or newer"
    try:
        w = torch.ones(16, 16, device=device, dtype=FLOAT8)
        float8_linear(torch.ones(16, 16, device=device, dtype=torch.bfloat16), w, torch.ones(16, 1, device=device))
    except (RuntimeError, NotImplementedError, TypeError) as e:
        return f"torch._scaled_mm with row scales fails on {device} (torch {torch.__version__}): {e}"
    return None


def _computes_in_float8(p: torch.Tensor) -> bool:
    """A float8 matrix ``_scaled_mm`` takes as it is: both sides multiples of 16."""
    return p.shape[0] % 16 == 0 and p.shape[1] % 16 == 0


def dequantize_float8(q: torch.Tensor, scale: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """float8 weight (on its compute device) -> ``dtype``, multiplied by its row scales when it has them."""
    if scale is None:
        return q.to(dtype)
    # float8 values are exact in any wider dtype, so scaling there costs no float32 copy of the matrix.
    return q.to(dtype).mul_(scale.to(q.device, dtype))


class BlockWeights:
    """Materialises one block's parameters on the compute device, in the compute dtype, right before it runs.

    :meth:`fetch` returns a ``{name: tensor}`` dict for ``torch.func.functional_call``. On CUDA the next block is
    copied on a side stream while the current one computes. ``patches``: block index -> :data:`BlockPatches`;
    a patched weight comes back as a new tensor ``W + up @ down`` (one ``addmm`` in the compute dtype, added to
    the dequantised value for float8 storage), every other parameter as it is stored when no conversion is needed.
    """

    def __init__(
        self,
        blocks: nn.ModuleList,
        device: torch.device,
        dtype: torch.dtype,
        scales: dict[str, torch.Tensor],
        prefetch: bool = True,
        patches: dict[int, BlockPatches] | None = None,
        float8_compute: frozenset[str] = frozenset(),
    ):
        self.blocks = blocks
        self.device = torch.device(device)
        self.dtype = dtype
        self.scales = scales  # full parameter name -> float8 row scales [out, 1] (float32, on the CPU)
        self.prefetch = prefetch
        self.patches = patches or {}
        self.float8_compute = float8_compute  # full names of the float8 weights handed over as they are
        self._side = torch.cuda.Stream(self.device) if prefetch and self.device.type == "cuda" else None
        self._pending: dict[int, tuple[dict[str, torch.Tensor], torch.cuda.Event]] = {}

    def with_patches(self, patches: dict[int, BlockPatches]) -> BlockWeights:
        """The same blocks and storage, materialised with ``patches`` (replacing any this one has)."""
        return BlockWeights(
            self.blocks, self.device, self.dtype, self.scales, self.prefetch, patches, self.float8_compute
        )

    def fetch(self, index: int) -> dict[str, torch.Tensor]:
        if index == 0:
            self._pending.clear()  # a previous forward may have stopped half-way
        if index in self._pending:
            weights, ready = self._pending.pop(index)
            current = torch.cuda.current_stream(self.device)
            current.wait_event(ready)
            for t in weights.values():
                # The copy was allocated on the side stream; keep its memory until this stream is done with it.
                t.record_stream(current)
        else:
            weights = self._materialise(index)
        if self._side is not None and index + 1 < len(self.blocks):
            with torch.cuda.stream(self._side):
                upcoming = self._materialise(index + 1)
                ready = torch.cuda.Event()
                ready.record(self._side)
            self._pending[index + 1] = (upcoming, ready)
        return weights

    def _materialise(self, index: int) -> dict[str, torch.Tensor]:
        prefix = f"{BLOCKS_PREFIX}{index}."
        patches = self.patches.get(index, {})
        out = {}
        for name, p in self.blocks[index].named_parameters():
            t = p.detach()
            fresh = False  # whether t is a copy of its own that may be written
            if t.device != self.device:
                t, fresh = t.to(self.device, non_blocking=True), True
            patch = patches.get(name)
            if t.dtype in _FLOAT8_TYPES:
                if patch is None and prefix + name in self.float8_compute:
                    out[name] = t  # multiplied as float8 (its scales are the layer's weight_scale buffer)
                    continue
                t, fresh = dequantize_float8(t, self.scales.get(prefix + name), self.dtype), True
            elif t.dtype != self.dtype:
                t, fresh = t.to(self.dtype), True
            if patch is not None:
                up, down = (f.to(self.device, self.dtype, non_blocking=True) for f in patch)
                t = t.addmm_(up, down) if fresh else torch.addmm(t, up, down)
            out[name] = t
        return out


def place_weights(
    model: nn.Module,
    device: torch.device | str,
    dtype: torch.dtype,
    *,
    stream_blocks: bool = False,
    float8: bool = False,
    prefetch: bool = True,
    float8_compute: bool = False,
) -> None:
    """Move/convert ``model``'s weights in place (one tensor at a time) for computing on ``device`` in ``dtype``.

    ``stream_blocks``: block weights stay on the CPU (pinned when ``device`` is CUDA) and stream per block.
    ``float8``: block linear weights are stored as float8 with a per-tensor scale. Calling again with other
    options re-places the weights (e.g. to park a model on the CPU between uses); float8 weights keep their
    scales, and are dequantised if ``float8`` is now False.
    ``float8_compute`` (implies ``float8``; ``dtype`` must be bfloat16): the float8 block matrices are multiplied
    as float8 (see the module notes); refused with the reason where the device or torch cannot
    (:func:`float8_compute_problem`).
    """
    device = torch.device(device)
    if float8_compute:
        if dtype != torch.bfloat16:
            raise InputError(f"float8 compute produces bfloat16; the compute dtype is {dtype}, expected bfloat16")
        problem = float8_compute_problem(device)
        if problem is not None:
            raise InputError(f"float8 compute is not available: {problem}. Use float8 storage instead")
        float8 = True
    storage = torch.device("cpu") if stream_blocks else device
    pin = stream_blocks and device.type == "cuda"
    old = getattr(model, "block_weights", None)
    scales: dict[str, torch.Tensor] = dict(old.scales) if old is not None else {}
    new_scales: dict[str, torch.Tensor] = {}
    for name, p in list(model.named_parameters()):
        if not name.startswith(BLOCKS_PREFIX):
            new = _convert(p, device, dtype, scales.get(name))
        elif float8 and _is_float8_candidate(name, p):
            if p.dtype in _FLOAT8_TYPES:  # already stored in float8 (by us, or by the file)
                new = p.detach().to(storage)
                if name in scales:
                    new_scales[name] = scales[name]
            else:
                new, new_scales[name] = quantize_float8(p)
                new = new.to(storage)
        else:
            new = _convert(p, storage, dtype, scales.get(name))
        if pin and not new.is_pinned():
            new = new.pin_memory()
        if new is not p:
            _set_parameter(model, name, new)
    computed = _set_float8_scales(model, new_scales if float8_compute else None, device)
    model.placement = Placement(device, dtype, stream_blocks, float8, float8_compute)
    model.block_weights = (
        BlockWeights(model.transformer_blocks, device, dtype, new_scales, prefetch, float8_compute=computed)
        if (stream_blocks or float8)
        else None
    )
    log.info(
        "transformer weights placed: compute on %s in %s, blocks %s%s",
        device,
        dtype,
        "streamed from CPU" if stream_blocks else "resident",
        ", computed in float8" if float8_compute else ", stored as float8" if float8 else "",
    )


def _set_float8_scales(
    model: nn.Module, scales: dict[str, torch.Tensor] | None, device: torch.device
) -> frozenset[str]:
    """Every block linear's ``weight_scale`` buffer: the row ``scales`` (on ``device``) of the float8 matrices that
    can be multiplied as they are, none elsewhere (none at all when ``scales`` is None: no float8 compute). Returns
    those weights' names."""
    computed = set()
    for name, p in model.named_parameters():
        if not name.startswith(BLOCKS_PREFIX) or not name.endswith(".weight"):
            continue
        module = model.get_submodule(name.rpartition(".")[0])
        module._buffers.pop("weight_scale", None)
        if scales is not None and p.dtype in _FLOAT8_TYPES and p.ndim == 2 and _computes_in_float8(p):
            scale = scales.get(name)
            if scale is None:  # a file's float8 matrix without scales
                scale = torch.ones(p.shape[0], 1)
            module.register_buffer("weight_scale", scale.to(device, torch.float32), persistent=False)
            computed.add(name)
    return frozenset(computed)


def block_weights_of(model: nn.Module) -> BlockWeights:
    """The model's :class:`BlockWeights`; for resident weights, one that hands each block's weights over as they
    are stored (so that patches can be added to them)."""
    if model.block_weights is not None:
        return model.block_weights
    placement = getattr(model, "placement", None)
    device = placement.device if placement is not None else model.compute_device
    dtype = placement.dtype if placement is not None else model.compute_dtype
    return BlockWeights(model.transformer_blocks, device, dtype, {}, prefetch=False)


def _convert(p: torch.Tensor, device: torch.device, dtype: torch.dtype, scale: torch.Tensor | None) -> torch.Tensor:
    if p.dtype in _FLOAT8_TYPES:
        return dequantize_float8(p.detach().to(device), scale, dtype)
    if p.device == device and (p.dtype == dtype or not p.is_floating_point()):
        return p
    return p.detach().to(device, dtype if p.is_floating_point() else p.dtype)


def _set_parameter(model: nn.Module, name: str, value: torch.Tensor) -> None:
    owner, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(owner), leaf, nn.Parameter(value, requires_grad=False))


def weight_bytes(model: nn.Module) -> dict[str, int]:
    """Bytes of parameters per device type, e.g. ``{"cuda": ..., "cpu": ...}``."""
    out: dict[str, int] = {}
    for p in model.parameters():
        out[p.device.type] = out.get(p.device.type, 0) + p.numel() * p.element_size()
    return out
