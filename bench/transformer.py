"""One transformer forward: ours against ltx-core 1.0.0 on the same weights and inputs.

CPU cases (``--device cpu``, the default): an LTX-2.3-layout file with full widths (video 32x128, audio 32x64,
text contexts 4096 / 2048, FFN x4) and 2 layers, stored in bfloat16 and loaded by each side's own loader in the
case's dtype; one forward at 512x768x49 (2,688 video tokens with the first latent frame conditioned at timestep 0,
51 audio tokens, 1,024 text tokens). Both sides report per-layer times (forward hooks on the blocks), so the
48-layer figure extrapolates as ``other + 48 x per_layer``.

The CPU cases build both sides in one process and time their calls in turns (``interleave``): on a shared 2-core
machine a call's time drifts by +-30 % with the other tenants' load, which falls on both sides alike this way.

``python -m bench.transformer profile [--dtype bfloat16] [--calls 3]``: where one block's time goes, ours and
ltx-core's, on a 1-layer file of the same widths and tokens (see :func:`profile`).

GPU cases (``--device cuda``): the full 48-layer LTX-2 model with random bfloat16 weights at 768x512x121
(6,144 video + 126 audio tokens): resident (ours and ltx-core) and, ours only, with block streaming from pinned
CPU memory, float8 block storage, float8 compute (``torch._scaled_mm``) and compiled blocks (``torch.compile``;
its first call, the warm-up, compiles). ``--quick`` shrinks widths and layers for a smoke run.

Every line's ``extra`` carries the case's matmul FLOPs per forward (:func:`forward_flops`: linear layers and the
attention products, 2 per multiply-add), the TFLOP/s reached (median forward) and, on a card whose dense bfloat16
peak is known (:data:`PEAK_BF16_TFLOPS`), the model FLOPs utilisation ``mfu`` against that peak (also for the
float8 cases, whose own peak is twice it).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time

import torch

from .runner import Case, release_heads

VIDEO_GRID = {"cpu": (7, 16, 24), "cuda": (16, 16, 24)}  # latent frames, rows, columns
AUDIO_TOKENS = {"cpu": 51, "cuda": 126}
TEXT_TOKENS = 1024
FPS = 24.0


def transformer_config(variant: str, layers: int, heads: int) -> dict:
    import tiny_models

    t = dict(tiny_models.tiny_config(variant)["transformer"])
    t.update(num_layers=layers, caption_channels=3840, **release_heads(heads))
    return t


def _reference_class(config: dict):
    from reference import transformer_cfg

    return transformer_cfg.LTXModelConfigurator.from_config({"transformer": config})


def write_checkpoint(path: str, config: dict) -> None:
    """A transformer-only file in the official layout with seeded bfloat16 weights."""
    from safetensors.torch import save_file

    with torch.device("meta"):
        model = _reference_class(config)
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for name, t in model.state_dict().items():
        std = 1 / math.sqrt(t.shape[-1]) if t.ndim == 2 and "table" not in name else 0.1
        value = torch.randn(t.shape, generator=g) * std
        if name.endswith("norm.weight"):
            value += 1.0
        tensors["model.diffusion_model." + name] = value.to(torch.bfloat16)
    save_file(tensors, path, metadata={"config": json.dumps({"transformer": config}), "model_version": "2.3.0"})


def _context_widths(config: dict) -> tuple[int, int]:
    """Text context widths: the stream widths for LTX-2.3, Gemma's 3840 features for LTX-2."""
    if config.get("caption_proj_before_connector"):
        return config["cross_attention_dim"], config["audio_cross_attention_dim"]
    return config["caption_channels"], config["caption_channels"]


def _inputs(config: dict, device: str, dtype: torch.dtype, size: str | None = None) -> dict:
    """The case's inputs; ``size`` ("cpu" / "cuda", default: the device's) picks the token counts."""
    from ltx_av.ltx_core import patchify

    kind = size or device.split(":")[0]
    g = torch.Generator().manual_seed(1)
    f, h, w = VIDEO_GRID[kind]
    audio_tokens = AUDIO_TOKENS[kind]
    n = f * h * w
    video_ctx, audio_ctx = _context_widths(config)
    timesteps = torch.full((1, n), 0.8)
    timesteps[:, : h * w] = 0.0  # image-to-video: the first latent frame is the clean conditioning image
    tensors = {
        "video_latent": torch.randn(1, n, 128, generator=g),
        "video_t": timesteps,
        "video_pos": patchify.video_positions(1, f, h, w, FPS),
        "video_ctx": torch.randn(1, TEXT_TOKENS, video_ctx, generator=g),
        "audio_latent": torch.randn(1, audio_tokens, 128, generator=g),
        "audio_t": torch.full((1, audio_tokens), 0.8),
        "audio_pos": patchify.audio_positions(1, audio_tokens),
        "audio_ctx": torch.randn(1, TEXT_TOKENS, audio_ctx, generator=g),
        "sigma": torch.tensor([0.8]),
    }
    out = {k: v.to(device) for k, v in tensors.items()}
    for k in ("video_latent", "audio_latent", "video_ctx", "audio_ctx"):
        out[k] = out[k].to(dtype)
    return out


# Dense (no sparsity) bfloat16 tensor-core peaks, TFLOP/s, by a substring of torch.cuda.get_device_name(); the
# first match counts, so the more specific names come first.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("H20", 148.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("RTX 4090", 165.0),
)


def peak_bf16_tflops(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)


def forward_flops(model, video_tokens: int, audio_tokens: int, text_tokens: int, batch: int = 1) -> int:
    """Matmul FLOPs of one forward of ``model`` (ours, any device including meta): every linear layer on the tokens
    it sees and the attention's two products (q k^T and the weighted sum of v), 2 FLOPs per multiply-add.
    Elementwise work (norms, modulation, RoPE, softmax) is left out, as MFU figures usually do."""

    def linear(tokens: int, layer) -> int:
        return 2 * tokens * layer.in_features * layer.out_features

    def attention(a, queries: int, keys: int) -> int:
        flops = linear(queries, a.to_q) + linear(keys, a.to_k) + linear(keys, a.to_v) + linear(queries, a.to_out[0])
        if a.to_gate_logits is not None:
            flops += linear(queries, a.to_gate_logits)
        return flops + 4 * queries * keys * a.heads * a.head_dim

    def feed_forward(ff, tokens: int) -> int:
        return linear(tokens, ff.net[0].proj) + linear(tokens, ff.net[2])

    tv, ta, tt = video_tokens, audio_tokens, text_tokens
    b = model.transformer_blocks[0]
    block = (
        attention(b.attn1, tv, tv)
        + attention(b.attn2, tv, tt)
        + attention(b.audio_attn1, ta, ta)
        + attention(b.audio_attn2, ta, tt)
        + attention(b.audio_to_video_attn, tv, ta)
        + attention(b.video_to_audio_attn, ta, tv)
        + feed_forward(b.ff, tv)
        + feed_forward(b.audio_ff, ta)
    )
    outside = linear(tv, model.patchify_proj) + linear(tv, model.proj_out)
    outside += linear(ta, model.audio_patchify_proj) + linear(ta, model.audio_proj_out)
    for projection in (model.caption_projection, model.audio_caption_projection):
        if projection is not None:  # LTX-2 projects the text features inside the transformer
            outside += linear(tt, projection.linear_1) + linear(tt, projection.linear_2)
    return batch * (len(model.transformer_blocks) * block + outside)


def case_flops(config: dict, size: str) -> int:
    """:func:`forward_flops` of the case's model (built on the meta device from its config) at its token counts."""
    from ltx_av.ltx_core.config import TransformerConfig
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    with torch.device("meta"):
        model = AudioVideoTransformer(TransformerConfig.from_dict(config))
    f, h, w = VIDEO_GRID[size]
    return forward_flops(model, f * h * w, AUDIO_TOKENS[size], TEXT_TOKENS)


class _LayerClock:
    """Times each transformer block (forward hooks), synchronising CUDA so the times are real. Reports medians
    over the calls after the first (the runner's warm-up). ``per_layer=False`` times whole forwards only (hooks
    would split a compiled block's graph); ``flops``: the forward's, for the TFLOP/s and MFU fields."""

    def __init__(self, blocks, device: str, flops: int | None = None, per_layer: bool = True):
        self.cuda = device.startswith("cuda")
        self.device = device
        self.flops = flops
        self.times: list[float] = [0.0] * len(blocks) if per_layer else []
        self.calls: list[tuple[float, list[float]]] = []
        if per_layer:
            for i, block in enumerate(blocks):
                block.register_forward_pre_hook(self._start(i))
                block.register_forward_hook(self._stop(i))

    def _sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def _start(self, i):
        def hook(module, args):
            self._sync()
            self._t0 = time.perf_counter()

        return hook

    def _stop(self, i):
        def hook(module, args, output):
            self._sync()
            self.times[i] = time.perf_counter() - self._t0

        return hook

    def timed(self, fn):
        def step():
            self._sync()
            start = time.perf_counter()
            fn()
            self._sync()
            self.calls.append((time.perf_counter() - start, list(self.times)))

        step.extra = self.report
        return step

    def report(self) -> dict:
        calls = self.calls[1:] or self.calls
        out = {}
        if self.times:
            layers = [statistics.median(c[1][i] for c in calls) for i in range(len(self.times))]
            per_layer = sum(layers) / len(layers)
            other = statistics.median(total - sum(times) for total, times in calls)
            out = {
                "per_layer_s": [round(t, 4) for t in layers],
                "mean_layer_s": round(per_layer, 4),
                "outside_blocks_s": round(other, 4),
                "extrapolated_48_layers_s": round(other + 48 * per_layer, 3),
            }
        if self.flops:
            forward = statistics.median(total for total, _ in calls)
            out["flops_per_forward"] = self.flops
            out["achieved_tflops"] = float(f"{self.flops / forward / 1e12:.4g}")
            peak = peak_bf16_tflops(self.device)
            if peak is not None:
                out["peak_bf16_tflops"] = peak
                out["mfu"] = round(self.flops / forward / 1e12 / peak, 4)
        if self.cuda:
            out["peak_allocated_total_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return out


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


# -- CPU: both sides load the same file --------------------------------------------------------------------------


def _config_of(path: str) -> dict:
    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return json.loads(header["__metadata__"]["config"])["transformer"]


def ours_from_file(path: str, dtype: str, device: str = "cpu"):
    from ltx_av.ltx_core.checkpoint import build_component
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    model = build_component(path, "transformer", AudioVideoTransformer, dtype=_dtype(dtype), device=device)
    return _ours_step(model, _config_of(path), device, _dtype(dtype))


def _ours_step(model, config: dict, device: str, dtype: torch.dtype, size: str | None = None):
    from ltx_av.ltx_core.transformer import StreamInput

    x = _inputs(config, device, dtype, size)
    video = StreamInput(x["video_latent"], x["sigma"], x["video_t"], x["video_pos"], x["video_ctx"])
    audio = StreamInput(x["audio_latent"], x["sigma"], x["audio_t"], x["audio_pos"], x["audio_ctx"])
    flops = case_flops(config, size or device.split(":")[0])
    clock = _LayerClock(model.transformer_blocks, device, flops, per_layer=not getattr(model, "compile_blocks", False))

    def forward():
        with torch.inference_mode():
            model(video, audio)

    return clock.timed(forward)


def ref_from_file(path: str, dtype: str, device: str = "cpu"):
    from ltx_core.model.transformer.modality import Modality

    from reference import SingleGPUModelBuilder, transformer_cfg

    builder = SingleGPUModelBuilder(
        model_class_configurator=transformer_cfg.LTXModelConfigurator,
        model_path=path,
        model_sd_ops=transformer_cfg.LTXV_MODEL_COMFY_RENAMING_MAP,
    )
    model = builder.build(device=torch.device(device), dtype=_dtype(dtype)).eval()
    return _ref_step(model, _config_of(path), device, _dtype(dtype), Modality)


def _ref_step(model, config: dict, device: str, dtype: torch.dtype, modality, size: str | None = None):
    from ltx_core.guidance.perturbations import BatchedPerturbationConfig

    x = _inputs(config, device, dtype, size)
    video = modality(x["video_latent"], x["sigma"], x["video_t"], x["video_pos"], x["video_ctx"])
    audio = modality(x["audio_latent"], x["sigma"], x["audio_t"], x["audio_pos"], x["audio_ctx"])
    perturbations = BatchedPerturbationConfig.empty(1)
    clock = _LayerClock(model.transformer_blocks, device, case_flops(config, size or device.split(":")[0]))

    def forward():
        with torch.inference_mode():
            model(video, audio, perturbations)

    return clock.timed(forward)


# -- CUDA: random weights, built on the GPU --------------------------------------------------------------------


def _random_fill(model: torch.nn.Module, device: str, storage: str) -> None:
    """Materialise a meta-built model with random bfloat16 weights (generated on ``device``, kept on ``storage``)."""
    for name, p in list(model.named_parameters()):
        std = 1 / math.sqrt(p.shape[-1]) if p.ndim == 2 and "table" not in name else 0.05
        value = torch.randn(p.shape, device=device, dtype=torch.bfloat16) * std
        if name.endswith("norm.weight"):
            value += 1.0
        owner, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(owner), leaf, torch.nn.Parameter(value.to(storage), requires_grad=False))


CUDA_MODES = ("resident", "streamed", "float8", "float8_compute", "compiled")


def ours_random(layers: int, heads: int, mode: str, device: str = "cuda"):
    from ltx_av.ltx_core.config import TransformerConfig
    from ltx_av.ltx_core.offload import place_weights
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    raw = transformer_config("LTX-2", layers, heads)
    with torch.device("meta"):
        model = AudioVideoTransformer(TransformerConfig.from_dict(raw))
    if mode not in CUDA_MODES:
        raise ValueError(f"mode is {mode!r}; expected one of {', '.join(CUDA_MODES)}")
    stream = mode == "streamed"
    _random_fill(model, device, "cpu" if stream else device)
    place_weights(
        model,
        device,
        torch.bfloat16,
        stream_blocks=stream,
        float8=mode == "float8",
        float8_compute=mode == "float8_compute",
    )
    model.compile_blocks = mode == "compiled"
    return _ours_step(model, raw, device, torch.bfloat16)


def ref_random(layers: int, heads: int, device: str = "cuda"):
    from ltx_core.model.transformer.modality import Modality

    config = transformer_config("LTX-2", layers, heads)
    with torch.device("meta"):
        model = _reference_class(config)
    _random_fill(model, device, device)
    return _ref_step(model.eval(), config, device, torch.bfloat16, Modality)


def cases(quick: bool, device: str, workdir: str) -> list[Case]:
    if device.startswith("cuda"):
        layers, heads = (4, 8) if quick else (48, 32)
        shape = f"{layers} layers, 768x512x121: 6144 video + 126 audio + 1024 text tokens, LTX-2, random weights"
        args = {"layers": layers, "heads": heads, "device": device}
        return [
            Case(
                "transformer.cuda.resident",
                shape,
                "bfloat16",
                "bench.transformer:ours_random",
                "bench.transformer:ref_random",
                {**args, "mode": "resident"},
                args,
                device=device,
            ),
            *(
                Case(
                    f"transformer.cuda.{mode}",
                    shape,
                    "bfloat16",
                    "bench.transformer:ours_random",
                    None,
                    {**args, "mode": mode},
                    device=device,
                    notes="ours only: ltx-core has no block streaming / float8 block storage / float8 compute / "
                    "compiled blocks",
                )
                for mode in CUDA_MODES[1:]
            ),
        ]
    layers, heads = (1, 8) if quick else (2, 32)
    path = os.path.join(workdir, "ltx-2.3-transformer-wide.safetensors")
    write_checkpoint(path, transformer_config("LTX-2.3", layers, heads))
    shape = (
        f"LTX-2.3 {layers} layers, video {heads}x128 / audio {heads}x64, 512x768x49: 2688 video (first frame "
        "conditioned) + 51 audio + 1024 text tokens"
    )
    return [
        Case(
            f"transformer.cpu.{dtype}",
            shape,
            dtype,
            "bench.transformer:ours_from_file",
            "bench.transformer:ref_from_file",
            {"path": path, "dtype": dtype},
            runs=5,
            timeout=7200,
            interleave=True,
        )
        for dtype in ("float32", "bfloat16")
    ]


# -- where a block's time goes -----------------------------------------------------------------------------------

# Sub-modules of a block, by the checkpoint names both implementations share.
PARTS = (
    ("attn1", "video self-attention"),
    ("attn2", "video text cross-attention"),
    ("audio_attn1", "audio self-attention"),
    ("audio_attn2", "audio text cross-attention"),
    ("audio_to_video_attn", "audio->video attention"),
    ("video_to_audio_attn", "video->audio attention"),
    ("ff", "video feed-forward"),
    ("audio_ff", "audio feed-forward"),
)

# Operator kinds, by ATen name (self time, so nested calls count once).
KINDS = (
    ("GEMM (linear layers)", ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear")),
    ("attention kernel (SDPA)", ("scaled_dot_product",)),
    ("dtype casts and copies", ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous")),
    ("GELU", ("aten::gelu",)),
    ("gathers, concatenation", ("aten::index", "aten::cat", "aten::stack")),
)
ELEMENTWISE = "norms, modulation, RoPE, residual (elementwise)"


def _kind(name: str) -> str:
    for kind, prefixes in KINDS:
        if any(name.startswith(p) or (p.startswith("scaled") and p in name) for p in prefixes):
            return kind
    return ELEMENTWISE


class _PartClock:
    """Wall time of each named sub-module and of the block around them, per call (forward hooks)."""

    def __init__(self, block):
        self.block_times: list[float] = []
        self.part_times: dict[str, list[float]] = {name: [] for name, _ in PARTS}
        self._start: dict[str, float] = {}
        self._hooks = []
        self._watch(block, "block")
        for name, _ in PARTS:
            if hasattr(block, name):
                self._watch(getattr(block, name), name)

    def _watch(self, module, name: str) -> None:
        def pre(*_):
            self._start[name] = time.perf_counter()

        def post(*_):
            elapsed = time.perf_counter() - self._start[name]
            (self.block_times if name == "block" else self.part_times[name]).append(elapsed)

        self._hooks += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()


class _KindClock:
    """Self CPU time per operator kind inside the block, per profiled call: the block runs inside a
    record_function range and each op counts where that range encloses it."""

    NAME = "ltx_block"

    def __init__(self, block):
        self.block = block
        self.calls: list[dict[str, float]] = []

    def profiled(self, step):
        marks = {}

        def enter(*_):
            marks["range"] = torch.autograd.profiler.record_function(self.NAME)
            marks["range"].__enter__()

        def leave(*_):
            marks.pop("range").__exit__(None, None, None)

        hooks = [self.block.register_forward_pre_hook(enter), self.block.register_forward_hook(leave)]
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step()
        for h in hooks:
            h.remove()
        kinds: dict[str, float] = {}
        for event in prof.events():
            parent = event.cpu_parent
            while parent is not None and parent.name != self.NAME:
                parent = parent.cpu_parent
            if parent is not None:
                kind = _kind(event.name)
                kinds[kind] = kinds.get(kind, 0.0) + event.self_cpu_time_total / 1e6
        self.calls.append(kinds)


def _profile_sides(steps: dict, blocks: dict, calls: int) -> dict:
    """Both sides' calls in turns (the machine's drift falls on both alike): ``calls`` timed, then ``calls``
    profiled; medians."""
    for step in steps.values():
        step()  # warm-up
    clocks = {side: _PartClock(blocks[side]) for side in steps}
    for _ in range(calls):
        for step in steps.values():
            step()
    for clock in clocks.values():
        clock.remove()
    kinds = {side: _KindClock(blocks[side]) for side in steps}
    for _ in range(calls):
        for side, step in steps.items():
            kinds[side].profiled(step)
    out = {}
    for side, clock in clocks.items():
        used = {name: t for name, t in clock.part_times.items() if t}
        names = sorted({k for call in kinds[side].calls for k in call})
        out[side] = {
            "block_s": statistics.median(clock.block_times),
            "parts": {name: statistics.median(t) for name, t in used.items()},
            "glue_s": statistics.median(b - sum(t[i] for t in used.values()) for i, b in enumerate(clock.block_times)),
            "kinds": {k: statistics.median(call.get(k, 0.0) for call in kinds[side].calls) for k in names},
        }
    return out


def profile(
    dtype: str = "bfloat16", calls: int = 3, sides: tuple[str, ...] = ("ours", "ref"), size: str = "cpu"
) -> dict:
    """One full-width LTX-2.3 block (the CPU case's widths and tokens), each side's own loader on the same file,
    both in this process with their calls in turns: median wall time per sub-module (the block's own code, norms /
    AdaLN modulation / residual updates, is the remainder), and the median operator kinds of profiled calls
    (torch.profiler self CPU time, which the profiler itself inflates a little). Prints Markdown tables and returns
    the figures. ``size``: "cpu" (the CPU case's 2,688 + 51 tokens) or "cuda" (768x512x121: 6,144 + 126)."""
    import importlib
    import tempfile

    from ltx_av.ltx_core.checkpoint import build_component
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    steps, blocks = {}, {}
    with tempfile.TemporaryDirectory(prefix="ltx_av_profile_") as workdir:
        path = os.path.join(workdir, "one-layer.safetensors")
        config = transformer_config("LTX-2.3", 1, 32)
        write_checkpoint(path, config)
        for side in sides:
            if side == "ours":
                model = build_component(path, "transformer", AudioVideoTransformer, dtype=_dtype(dtype))
                steps[side] = _ours_step(model, config, "cpu", _dtype(dtype), size)
            elif side.startswith("before:"):
                # another checkout of the pack importable under the package name after the colon (e.g. a git
                # worktree of an earlier commit symlinked as ltx_av_before on PYTHONPATH): the same code path
                package = side.split(":", 1)[1]
                build = importlib.import_module(f"{package}.ltx_core.checkpoint").build_component
                factory = importlib.import_module(f"{package}.ltx_core.transformer").AudioVideoTransformer
                model = build(path, "transformer", factory, dtype=_dtype(dtype))
                steps[side] = _ours_step(model, config, "cpu", _dtype(dtype), size)
            else:
                from ltx_core.model.transformer.modality import Modality

                from reference import SingleGPUModelBuilder, transformer_cfg

                builder = SingleGPUModelBuilder(
                    model_class_configurator=transformer_cfg.LTXModelConfigurator,
                    model_path=path,
                    model_sd_ops=transformer_cfg.LTXV_MODEL_COMFY_RENAMING_MAP,
                )
                model = builder.build(device=torch.device("cpu"), dtype=_dtype(dtype)).eval()
                steps[side] = _ref_step(model, config, "cpu", _dtype(dtype), Modality, size)
            blocks[side] = model.transformer_blocks[0]
    out = _profile_sides(steps, blocks, calls)
    _print_profile(out, dtype, size)
    return out


def _print_profile(out: dict, dtype: str, size: str = "cpu") -> None:
    sides = list(out)
    head = "| | " + " | ".join(f"{s} s | {s} %" for s in sides) + " |"
    rule = "|---|" + "---:|---:|" * len(sides)
    f, h, w = VIDEO_GRID[size]
    tokens = f"{f * h * w} video + {AUDIO_TOKENS[size]} audio + {TEXT_TOKENS} text tokens"
    print(f"\nOne LTX-2.3 block, {dtype}, {tokens} (median wall time):\n")
    print(head.replace("| |", "| part |", 1))
    print(rule)
    for name, title in (*PARTS, ("glue", "norms, AdaLN modulation, residual (block code)")):
        cells = []
        for s in sides:
            t = out[s]["glue_s"] if name == "glue" else out[s]["parts"].get(name, 0.0)
            cells.append(f"{t:.3f} | {100 * t / out[s]['block_s']:.1f}")
        print(f"| {title} | " + " | ".join(cells) + " |")
    print("| **block** | " + " | ".join(f"**{out[s]['block_s']:.3f}** | 100" for s in sides) + " |")
    print("\nOperator kinds inside the block (profiled calls, median self CPU time):\n")
    print(head.replace("| |", "| kind |", 1))
    print(rule)
    kinds = [k for k, _ in KINDS] + [ELEMENTWISE]
    for kind in kinds:
        cells = []
        for s in sides:
            total = sum(out[s]["kinds"].values())
            t = out[s]["kinds"].get(kind, 0.0)
            cells.append(f"{t:.3f} | {100 * t / total:.1f}")
        print(f"| {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.transformer")
    parser.add_argument("what", choices=["profile"])
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--sides", default="ours,ref")
    parser.add_argument("--size", default="cpu", choices=sorted(VIDEO_GRID), help="cuda: 768x512x121's tokens")
    args = parser.parse_args()
    profile(args.dtype, args.calls, tuple(args.sides.split(",")), args.size)
