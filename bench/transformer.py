"""One transformer forward: ours against ltx-core 1.0.0 on the same weights and inputs.

CPU cases (``--device cpu``, the default): an LTX-2.3-layout file with full widths (video 32x128, audio 32x64,
text contexts 4096 / 2048, FFN x4) and 2 layers, stored in bfloat16 and loaded by each side's own loader in the
case's dtype; one forward at 512x768x49 (2,688 video tokens with the first latent frame conditioned at timestep 0,
51 audio tokens, 1,024 text tokens). Both sides report per-layer times (forward hooks on the blocks), so the
48-layer figure extrapolates as ``other + 48 x per_layer``.

GPU cases (``--device cuda``): the full 48-layer LTX-2 model with random bfloat16 weights at 768x512x121
(6,144 video + 126 audio tokens): resident (ours and ltx-core) and, ours only, with block streaming from pinned
CPU memory and with float8 block storage. ``--quick`` shrinks widths and layers for a smoke run.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time

import torch

from .runner import Case

VIDEO_GRID = {"cpu": (7, 16, 24), "cuda": (16, 16, 24)}  # latent frames, rows, columns
AUDIO_TOKENS = {"cpu": 51, "cuda": 126}
TEXT_TOKENS = 1024
FPS = 24.0


def transformer_config(variant: str, layers: int, heads: int) -> dict:
    import tiny_models

    t = dict(tiny_models.tiny_config(variant)["transformer"])
    t.update(
        num_layers=layers,
        num_attention_heads=heads,
        attention_head_dim=128,
        audio_num_attention_heads=heads,
        audio_attention_head_dim=64,
        cross_attention_dim=heads * 128,
        audio_cross_attention_dim=heads * 64,
        caption_channels=3840,
    )
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


def _inputs(config: dict, device: str, dtype: torch.dtype) -> dict:
    from ltx_av.ltx_core import patchify

    kind = device.split(":")[0]
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


class _LayerClock:
    """Times each transformer block (forward hooks), synchronising CUDA so the times are real. Reports medians
    over the calls after the first (the runner's warm-up)."""

    def __init__(self, blocks, device: str):
        self.cuda = device.startswith("cuda")
        self.times: list[float] = [0.0] * len(blocks)
        self.calls: list[tuple[float, list[float]]] = []
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
        layers = [statistics.median(c[1][i] for c in calls) for i in range(len(self.times))]
        per_layer = sum(layers) / len(layers)
        other = statistics.median(total - sum(times) for total, times in calls)
        out = {
            "per_layer_s": [round(t, 4) for t in layers],
            "mean_layer_s": round(per_layer, 4),
            "outside_blocks_s": round(other, 4),
            "extrapolated_48_layers_s": round(other + 48 * per_layer, 3),
        }
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


def _ours_step(model, config: dict, device: str, dtype: torch.dtype):
    from ltx_av.ltx_core.transformer import StreamInput

    x = _inputs(config, device, dtype)
    video = StreamInput(x["video_latent"], x["sigma"], x["video_t"], x["video_pos"], x["video_ctx"])
    audio = StreamInput(x["audio_latent"], x["sigma"], x["audio_t"], x["audio_pos"], x["audio_ctx"])
    clock = _LayerClock(model.transformer_blocks, device)

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


def _ref_step(model, config: dict, device: str, dtype: torch.dtype, modality):
    from ltx_core.guidance.perturbations import BatchedPerturbationConfig

    x = _inputs(config, device, dtype)
    video = modality(x["video_latent"], x["sigma"], x["video_t"], x["video_pos"], x["video_ctx"])
    audio = modality(x["audio_latent"], x["sigma"], x["audio_t"], x["audio_pos"], x["audio_ctx"])
    perturbations = BatchedPerturbationConfig.empty(1)
    clock = _LayerClock(model.transformer_blocks, device)

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


def ours_random(layers: int, heads: int, mode: str, device: str = "cuda"):
    from ltx_av.ltx_core.config import TransformerConfig
    from ltx_av.ltx_core.offload import place_weights
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    raw = transformer_config("LTX-2", layers, heads)
    with torch.device("meta"):
        model = AudioVideoTransformer(TransformerConfig.from_dict(raw))
    stream = mode == "streamed"
    _random_fill(model, device, "cpu" if stream else device)
    place_weights(model, device, torch.bfloat16, stream_blocks=stream, float8=mode == "float8")
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
                    notes="ours only: ltx-core has no block streaming / float8 block storage",
                )
                for mode in ("streamed", "float8")
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
            timeout=3600,
        )
        for dtype in ("float32", "bfloat16")
    ]
