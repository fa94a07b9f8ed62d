"""End-to-end sampling: seconds per step, and the share of time spent outside model forwards, ours against
ltx-pipelines 1.0.0 (``denoise_audio_video`` + ``euler_denoising_loop`` + ``MultiModalGuider`` on the reference
transformer) with the same weights, inputs and guidance.

Every case runs the LTX-2 scheduler with full multimodal guidance on both streams (CFG, STG at block 0, modality,
rescale: 4 forwards per step) and the first latent frame replaced by a conditioning latent. Each side's model is
wrapped in a clock (CUDA synchronised) so ``extra`` reports ``per_step_s``, ``forward_s`` (per step) and
``outside_forward_share`` = (total - forwards) / total: the loop's own cost (noise, states, guidance, Euler).

``sampler.step.*`` cases time one guided step of ours alone (CFG + STG + modality on both streams, 4 passes) with
the passes batched into one forward (the "ours" side) against one forward per pass (the "ref" side: ours again,
``batch_passes=False``), in float32 and bfloat16: the time and the peak memory of stacking the passes.

CPU cases (``--device cpu``): ``tiny`` is the tiny LTX-2.3 test monolith (video 4x16, audio 4x8, 2 layers) at
96x64x17; ``mid`` is an LTX-2.3-layout transformer with video 8x128 / audio 8x64 widths and 2 layers at 768x512x9
(768 video + 9 audio tokens, 128 text tokens). GPU cases (``--device cuda``): the full 48-layer LTX-2 transformer
with random bfloat16 weights at 768x512x121 (6,144 video + 126 audio tokens, 1,024 text tokens), 2 steps.

Every case's ``extra`` carries the matmul FLOPs of one forward (``bench.transformer.forward_flops``), the TFLOP/s
the forwards reached and, on a card whose dense bfloat16 peak is known, the model FLOPs utilisation ``mfu``.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

from .runner import Case

FPS = 24.0
SIZES = {  # name: (frames, height, width, text tokens, steps)
    "tiny": (17, 64, 96, 16, 4),
    "mid": (9, 512, 768, 128, 3),
    "cuda": (121, 512, 768, 1024, 2),
    "cuda_quick": (25, 256, 384, 128, 2),
}


def _flops_per_forward(config, size: str) -> int:
    """Matmul FLOPs of one forward at ``size`` (batch 1) of a model of ``config`` (ours, built on the meta device)."""
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    from .transformer import forward_flops

    frames, height, width, text, _ = SIZES[size]
    video = (1 + (frames - 1) // 8) * (height // 32) * (width // 32)
    with torch.device("meta"):
        model = AudioVideoTransformer(config)
    return forward_flops(model, video, round(frames / FPS * 25), text)


def _throughput(flops: int, seconds: float, device: str) -> dict:
    from .transformer import peak_bf16_tflops

    out = {"achieved_tflops": float(f"{flops / seconds / 1e12:.4g}")}
    peak = peak_bf16_tflops(device)
    if peak is not None:
        out.update(peak_bf16_tflops=peak, mfu=round(flops / seconds / 1e12 / peak, 4))
    return out


class _Clock:
    """Accumulates the time spent inside the wrapped model's calls (CUDA synchronised)."""

    def __init__(self, device: str, flops: int | None = None):
        self.device = device
        self.flops = flops  # per forward
        self.cuda = device.startswith("cuda")
        self.inside = 0.0
        self.calls = 0
        self.runs: list[tuple[float, float, int]] = []

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def wrap(self, fn):
        def timed(*args, **kwargs):
            self.sync()
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            self.sync()
            self.inside += time.perf_counter() - start
            self.calls += 1
            return out

        return timed

    def run(self, loop, steps: int):
        def step():
            self.inside, self.calls = 0.0, 0
            self.sync()
            start = time.perf_counter()
            loop()
            self.sync()
            self.runs.append((time.perf_counter() - start, self.inside, self.calls))

        def report() -> dict:
            runs = self.runs[1:] or self.runs  # the first call is the runner's warm-up
            total = statistics.median(r[0] for r in runs)
            inside = statistics.median(r[1] for r in runs)
            out = {
                "steps": steps,
                "forwards_per_step": runs[-1][2] / steps,
                "per_step_s": round(total / steps, 4),
                "forward_s_per_step": round(inside / steps, 4),
                "outside_forward_share": round(statistics.median((r[0] - r[1]) / r[0] for r in runs), 4),
            }
            if self.flops:  # over the forwards' own time
                out["flops_per_forward"] = self.flops
                out.update(_throughput(self.flops * runs[-1][2], inside, self.device))
            if self.cuda:
                out["peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            return out

        step.extra = report
        return step


def _inputs(size: str, widths: tuple[int, int]):
    """Contexts (positive, negative), the conditioning latent of the first frame, and the latent sizes."""
    frames, height, width, text, steps = SIZES[size]
    g = torch.Generator().manual_seed(0)
    contexts = [
        (torch.randn(1, text, widths[0], generator=g), torch.randn(1, text, widths[1], generator=g)) for _ in "pn"
    ]
    latent_grid = (1 + (frames - 1) // 8, height // 32, width // 32)
    first = torch.randn(1, 128, 1, *latent_grid[1:], generator=g)
    audio_t = round(frames / FPS * 25)
    return contexts, first, latent_grid, audio_t, steps


def _widths(config) -> tuple[int, int]:
    if config.text_path_version == 1:
        return config.caption_channels, config.caption_channels
    return config.cross_attention_dim, config.audio_cross_attention_dim


def _guidance():
    """Full guidance on both streams, LTX-2's official values: (video, audio)."""
    from ltx_av.ltx_core.guidance import GuidanceParams

    return GuidanceParams(3.0, 1.0, (0,), 3.0, 0.7), GuidanceParams(7.0, 1.0, (0,), 3.0, 0.7)


def _sample_guided(model, inputs, guidance, sigmas: torch.Tensor, device: str, **options) -> None:
    """Our sampler from zeros on ``inputs`` (of :func:`_inputs`), the first frame conditioned."""
    from ltx_av.ltx_core.conditioning import FrameCondition
    from ltx_av.ltx_core.sampling import sample
    from ltx_av.ltx_core.text_encoder import TextContexts

    (pos, neg), first, grid, audio_t, _ = inputs
    with torch.inference_mode():
        sample(
            model,
            torch.zeros(1, 128, *grid),
            frame_rate=FPS,
            positive=TextContexts(*pos),
            negative=TextContexts(*neg),
            sigmas=sigmas,
            seed=0,
            video_guidance=guidance[0],
            audio_guidance=guidance[1],
            audio_latent=torch.zeros(1, 8, audio_t, 16),
            conditions=[FrameCondition(first)],
            device=device,
            **options,
        )


def _ours(model, size: str, device: str):
    from ltx_av.ltx_core.schedules import ltx2_sigmas

    inputs = _inputs(size, _widths(model.config))
    steps = inputs[-1]
    clock = _Clock(device, _flops_per_forward(model.config, size))
    timed = clock.wrap(model)
    guidance = _guidance()
    return clock.run(lambda: _sample_guided(timed, inputs, guidance, ltx2_sigmas(steps), device), steps)


def _ref(velocity_model, widths: tuple[int, int], size: str, device: str, dtype: torch.dtype, flops: int | None = None):
    from ltx_core.components.diffusion_steps import EulerDiffusionStep
    from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
    from ltx_core.components.noisers import GaussianNoiser
    from ltx_core.components.schedulers import LTX2Scheduler
    from ltx_core.conditioning import VideoConditionByLatentIndex
    from ltx_core.model.transformer import X0Model
    from ltx_core.types import VideoPixelShape
    from ltx_pipelines.utils.helpers import denoise_audio_video, multi_modal_guider_denoising_func
    from ltx_pipelines.utils.samplers import euler_denoising_loop
    from ltx_pipelines.utils.types import PipelineComponents

    (pos, neg), first, grid, audio_t, steps = _inputs(size, widths)
    frames, height, width = SIZES[size][:3]
    clock = _Clock(device, flops)

    class Timed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = velocity_model
            self.call = clock.wrap(velocity_model)

        def forward(self, video, audio, perturbations):
            return self.call(video, audio, perturbations)

    x0 = X0Model(Timed())
    dev = torch.device(device)
    pos = [c.to(dev, dtype) for c in pos]
    neg = [c.to(dev, dtype) for c in neg]
    video_params = MultiModalGuiderParams(3.0, 1.0, [0], 0.7, 3.0)
    audio_params = MultiModalGuiderParams(7.0, 1.0, [0], 0.7, 3.0)
    sigmas = LTX2Scheduler().execute(steps=steps).to(dev)

    def stage(s, video, audio, stepper):
        guiders = MultiModalGuider(video_params, neg[0]), MultiModalGuider(audio_params, neg[1])
        return euler_denoising_loop(s, video, audio, stepper, multi_modal_guider_denoising_func(*guiders, *pos, x0))

    def loop():
        with torch.inference_mode():
            denoise_audio_video(
                VideoPixelShape(1, frames, height, width, FPS),
                [VideoConditionByLatentIndex(first.to(dev, dtype), 1.0, 0)],
                GaussianNoiser(torch.Generator(dev).manual_seed(0)),
                sigmas,
                EulerDiffusionStep(),
                stage,
                PipelineComponents(dtype, dev),
                dtype,
                dev,
            )

    return clock.run(loop, steps)


def _guided_step(model, size: str, device: str, batch_passes: bool):
    """One step of the LTX-2 schedule with full guidance on both streams (4 passes), first frame conditioned."""
    from ltx_av.ltx_core.sampling import plan_passes
    from ltx_av.ltx_core.schedules import ltx2_sigmas

    inputs = _inputs(size, _widths(model.config))
    guidance = _guidance()
    sigmas = ltx2_sigmas(inputs[-1])[:2]
    passes = len(plan_passes(*guidance))
    flops = passes * _flops_per_forward(model.config, size)
    times = []

    def step():
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        _sample_guided(model, inputs, guidance, sigmas, device, batch_passes=batch_passes)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)

    def report() -> dict:
        # the whole step's time (guidance and Euler included) against the forwards' FLOPs
        seconds = statistics.median(times[1:] or times)
        out = {"passes": passes, "batched": batch_passes, "flops_per_step": flops}
        out.update(_throughput(flops, seconds, device))
        if device.startswith("cuda"):
            out["peak_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return out

    step.extra = report
    return step


def step_file(path: str, size: str, batch_passes: bool, dtype: str = "float32", device: str = "cpu"):
    from ltx_av.ltx_core.checkpoint import build_component
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    dtype_ = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    model = build_component(path, "transformer", AudioVideoTransformer, dtype=dtype_, device=device)
    return _guided_step(model, size, device, batch_passes)


def step_random(layers: int, heads: int, size: str, batch_passes: bool, device: str = "cuda"):
    from ltx_av.ltx_core.config import TransformerConfig
    from ltx_av.ltx_core.offload import place_weights
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    from .transformer import _random_fill, transformer_config

    raw = transformer_config("LTX-2", layers, heads)
    with torch.device("meta"):
        model = AudioVideoTransformer(TransformerConfig.from_dict(raw))
    _random_fill(model, device, device)
    place_weights(model, device, torch.bfloat16)
    return _guided_step(model, size, device, batch_passes)


# -- setup functions named by the cases --------------------------------------------------------------------------


def ours_file(path: str, size: str, device: str = "cpu"):
    from ltx_av.ltx_core.checkpoint import build_component
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    return _ours(build_component(path, "transformer", AudioVideoTransformer, device=device), size, device)


def ref_file(path: str, size: str, device: str = "cpu"):
    from ltx_av.ltx_core.checkpoint import open_checkpoint

    from reference import SingleGPUModelBuilder, transformer_cfg

    model = SingleGPUModelBuilder(
        model_class_configurator=transformer_cfg.LTXModelConfigurator,
        model_path=path,
        model_sd_ops=transformer_cfg.LTXV_MODEL_COMFY_RENAMING_MAP,
    ).build(device=torch.device(device), dtype=torch.float32)
    config = open_checkpoint(path).component_config("transformer")
    return _ref(model.eval(), _widths(config), size, device, torch.float32, _flops_per_forward(config, size))


def ours_random(layers: int, heads: int, size: str, device: str = "cuda"):
    from ltx_av.ltx_core.config import TransformerConfig
    from ltx_av.ltx_core.offload import place_weights
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    from .transformer import _random_fill, transformer_config

    raw = transformer_config("LTX-2", layers, heads)
    with torch.device("meta"):
        model = AudioVideoTransformer(TransformerConfig.from_dict(raw))
    _random_fill(model, device, device)
    place_weights(model, device, torch.bfloat16)
    return _ours(model, size, device)


def ref_random(layers: int, heads: int, size: str, device: str = "cuda"):
    from ltx_av.ltx_core.config import TransformerConfig

    from .transformer import _random_fill, _reference_class, transformer_config

    raw = transformer_config("LTX-2", layers, heads)
    with torch.device("meta"):
        model = _reference_class(raw)
    _random_fill(model, device, device)
    config = TransformerConfig.from_dict(raw)
    return _ref(model.eval(), _widths(config), size, device, torch.bfloat16, _flops_per_forward(config, size))


def cases(quick: bool, device: str, workdir: str) -> list[Case]:
    if device.startswith("cuda"):
        layers, heads, size = (4, 8, "cuda_quick") if quick else (48, 32, "cuda")
        frames, height, width, text, steps = SIZES[size]
        step_args = {"layers": layers, "heads": heads, "size": size, "device": device}
        return [
            Case(
                "sampler.step.cuda.ltx2_random",
                f"LTX-2 {layers} layers, {width}x{height}x{frames}, {text} text tokens, 1 step x 4 passes",
                "bfloat16",
                "bench.sampler:step_random",
                "bench.sampler:step_random",
                {**step_args, "batch_passes": True},
                {**step_args, "batch_passes": False},
                device=device,
                timeout=3600,
                notes="ours only: passes batched into one forward (ours side) vs one forward per pass (ref side)",
            ),
            Case(
                "sampler.cuda.ltx2_random",
                f"LTX-2 {layers} layers, {width}x{height}x{frames}, {text} text tokens, {steps} steps x 4 forwards",
                "bfloat16",
                "bench.sampler:ours_random",
                "bench.sampler:ref_random",
                {"layers": layers, "heads": heads, "size": size, "device": device},
                device=device,
                timeout=3600,
            ),
        ]
    import tiny_models
    from .transformer import transformer_config, write_checkpoint

    tiny = os.path.join(workdir, "tiny-ltx-2.3.safetensors")
    tiny_models.write_monolith(tiny, "LTX-2.3")
    out = [("tiny", tiny, "tiny LTX-2.3 monolith (video 4x16, audio 4x8, 2 layers)")]
    if not quick:
        mid = os.path.join(workdir, "mid-ltx-2.3.safetensors")
        write_checkpoint(mid, transformer_config("LTX-2.3", 2, 8))
        out.append(("mid", mid, "LTX-2.3 layout, video 8x128 / audio 8x64, 2 layers"))
    cases_ = []
    for size, path, model in out:
        frames, height, width, text, _ = SIZES[size]
        for dtype in ("float32", "bfloat16"):
            args = {"path": path, "size": size, "dtype": dtype}
            cases_.append(
                Case(
                    f"sampler.step.{size}.{dtype}",
                    f"{model}, {width}x{height}x{frames}, {text} text tokens, 1 step x 4 passes",
                    dtype,
                    "bench.sampler:step_file",
                    "bench.sampler:step_file",
                    {**args, "batch_passes": True},
                    {**args, "batch_passes": False},
                    runs=5,
                    timeout=3600,
                    interleave=True,
                    notes="ours only: passes batched into one forward (ours side) vs one forward per pass (ref side)",
                )
            )
    for size, path, model in out:
        frames, height, width, text, steps = SIZES[size]
        cases_.append(
            Case(
                f"sampler.cpu.{size}",
                f"{model}, {width}x{height}x{frames}, {text} text tokens, {steps} steps x 4 forwards",
                "float32",
                "bench.sampler:ours_file",
                "bench.sampler:ref_file",
                {"path": path, "size": size},
                timeout=3600,
            )
        )
    return cases_
