"""Sampling on several processes (ltx_core/parallel.py): seconds per step with 1 and with P processes, and the bytes
each rank sends per step, counted in the collectives and compared with the arithmetic (:func:`expected_bytes`).

Run ``python -m bench.parallel`` (CPU, gloo; appends to bench/results.jsonl unless ``--no-save``). Each layout runs
in fresh processes that join one group over TCP on localhost, sample a few warm-up-free steps with full guidance
(CFG, STG at block 0, modality, rescale on both streams: 4 passes a step) and an image condition on the first
frame, and report the median seconds between step ends (rank 0; the first step is left out). The layouts, run in
turns ``--rounds`` times: one process with all the threads, one process with one thread (what one rank computes
alone), then P processes with the threads shared out: sequence parallel (1 x P), guidance parallel (P x 1) and,
for P = 4, both (2 x 2).

CPU (default): the ``mid`` model of bench/sampler.py (LTX-2.3 layout, video 8x128 / audio 8x64, 2 layers, random
weights, float32) at 768x512x9: 768 video + 9 audio + 128 text tokens. ``--device cuda``: one process per GPU
(nccl), the full 48-layer width (32x128 / 32x64) in bfloat16 at 768x512x121 (6,144 video + 126 audio tokens,
1,024 text), ``--quick`` 4 layers; written, never run here (no GPU on the machine the numbers in the README come
from).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import torch

from .runner import release_heads

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results.jsonl")
FPS = 24.0
STG_BLOCK = 0
# name: (frames, height, width, text tokens, layers, heads, steps)
SIZES = {
    "mid": (9, 512, 768, 128, 2, 8, 4),
    "cuda": (121, 512, 768, 1024, 48, 32, 4),
    "cuda_quick": (121, 512, 768, 1024, 4, 32, 4),
}


def config_dict(layers: int, heads: int) -> dict:
    """An LTX-2.3-layout transformer config: ``heads`` x 128 video, ``heads`` x 64 audio (the release has 32)."""
    from ltx_av.ltx_core.tiny import tiny_config

    t = dict(tiny_config("LTX-2.3", layers)["transformer"])
    t.update(release_heads(heads))
    return t


def token_counts(size: str) -> tuple[int, int]:
    """(video, audio) tokens of a size: latent frames x (H/32) x (W/32), and 25 audio latents a second."""
    frames, height, width = SIZES[size][:3]
    return (1 + (frames - 1) // 8) * (height // 32) * (width // 32), round(frames / FPS * 25)


# -- the arithmetic ----------------------------------------------------------------------------------------------


def forward_bytes(
    config,
    video_tokens: int,
    audio_tokens: int,
    sequence: int,
    index: int,
    *,
    self_attention_blocks: int,
    cross_blocks: int,
    size: int,
) -> int:
    """Bytes rank ``index`` of ``sequence`` ranks sends in one forward (sizes of the compute dtype: ``size``).

    Its ``c`` of the ``T`` video tokens (the split of :meth:`.parallel.Mesh.token_shard`), ``W`` = heads x head
    dim: per video self-attention (Ulysses) q, k and v of its tokens for the other ranks' heads, ``3 c W (P-1)/P``,
    and back the attention of its heads for the other ranks' tokens, ``(T - c) W / P``; per video->audio
    attention its partial softmax result for every audio query, ``(P-1) Ta Ha (Da + 2) x 4`` (float32, audio
    heads ``Ha`` of width ``Da``: values, running maximum and sum); at the end the float32 velocities,
    ``(P-1) m 128 x 4`` (``m``: the longest share, what every rank pads to). Heads that do not divide: k and v
    all-gathered instead, ``2 (P-1) m W``."""
    if sequence == 1 or video_tokens < sequence:
        return 0
    base, extra = divmod(video_tokens, sequence)
    sizes = [base + (r < extra) for r in range(sequence)]
    c, m, p = sizes[index], max(sizes), sequence
    width = config.num_attention_heads * config.attention_head_dim
    if config.num_attention_heads % p == 0:
        attention = (3 * c * width * (p - 1) // p + (video_tokens - c) * width // p) * size
    else:
        attention = 2 * (p - 1) * m * width * size
    heads, head_dim = config.audio_num_attention_heads, config.audio_attention_head_dim
    video_to_audio = (p - 1) * audio_tokens * heads * (head_dim + 2) * 4
    output = (p - 1) * m * config.out_channels * 4
    return self_attention_blocks * attention + cross_blocks * video_to_audio + output


def expected_bytes(
    config, video_tokens: int, audio_tokens: int, guidance: int, sequence: int, rank: int, size: int
) -> dict:
    """Bytes a rank sends per step with full guidance (cond, uncond: every block; STG: the video self-attention of
    one block skipped; modality-isolated: no audio<->video attention): its own passes' forwards, plus the
    guidance all-gather of ``ceil(4 / G)`` float32 slots of x0 (video + audio tokens x 128) to ``G - 1`` ranks."""
    blocks = config.num_layers
    passes = [(blocks, blocks), (blocks, blocks), (blocks - 1, blocks), (blocks, 0)]
    g_index, s_index = divmod(rank, sequence)
    own = passes[g_index::guidance]
    seq = sum(
        forward_bytes(
            config, video_tokens, audio_tokens, sequence, s_index, self_attention_blocks=a, cross_blocks=x, size=size
        )
        for a, x in own
    )
    slots = -(-len(passes) // guidance)
    gather = (guidance - 1) * slots * (video_tokens + audio_tokens) * 128 * 4
    return {"sequence": seq, "guidance": gather}


# -- one process -------------------------------------------------------------------------------------------------


def _model(size: str, device: str):
    from ltx_av.ltx_core.config import TransformerConfig
    from ltx_av.ltx_core.tiny import fill_deterministically
    from ltx_av.ltx_core.transformer import AudioVideoTransformer

    layers, heads = SIZES[size][4:6]
    config = TransformerConfig.from_dict(config_dict(layers, heads))
    if device == "cpu":
        model = AudioVideoTransformer(config)
        fill_deterministically(model, 0)
        return model.eval()
    from ltx_av.ltx_core.offload import place_weights

    from .transformer import _random_fill

    torch.manual_seed(0)  # the same weights on every rank
    with torch.device("meta"):
        model = AudioVideoTransformer(config)
    _random_fill(model, device, device)
    place_weights(model, device, torch.bfloat16)
    return model.eval()


def _sample_steps(model, size: str, device: str) -> list[float]:
    """Seconds at each step's end of one guided sampling run."""
    from ltx_av.ltx_core.conditioning import FrameCondition
    from ltx_av.ltx_core.guidance import GuidanceParams
    from ltx_av.ltx_core.sampling import sample
    from ltx_av.ltx_core.schedules import ltx2_sigmas
    from ltx_av.ltx_core.text_encoder import TextContexts

    frames, height, width, text, _, _, steps = SIZES[size]
    c = model.config
    g = torch.Generator().manual_seed(0)
    grid = (1 + (frames - 1) // 8, height // 32, width // 32)
    _, audio_tokens = token_counts(size)
    positive, negative = (
        TextContexts(
            torch.randn(1, text, c.cross_attention_dim, generator=g),
            torch.randn(1, text, c.audio_cross_attention_dim, generator=g),
        )
        for _ in "pn"
    )
    first = torch.randn(1, 128, 1, *grid[1:], generator=g)
    marks = []
    cuda = device.startswith("cuda")

    def tick(progress) -> None:
        if progress.video_x0 is not None:
            if cuda:
                torch.cuda.synchronize()
            marks.append(time.perf_counter())

    with torch.inference_mode():
        if cuda:
            torch.cuda.synchronize()
        marks.append(time.perf_counter())
        sample(
            model,
            torch.zeros(1, 128, *grid),
            frame_rate=FPS,
            positive=positive,
            negative=negative,
            sigmas=ltx2_sigmas(steps),
            seed=0,
            video_guidance=GuidanceParams(3.0, 1.0, (STG_BLOCK,), 3.0, 0.7),
            audio_guidance=GuidanceParams(7.0, 1.0, (STG_BLOCK,), 3.0, 0.7),
            audio_latent=torch.zeros(1, 8, audio_tokens, 16),
            conditions=[FrameCondition(first)],
            device=device,
            callback=tick,
        )
    return [b - a for a, b in zip(marks[:-1], marks[1:], strict=True)]


def worker(spec: dict) -> None:
    """One process of a layout: joins the group (when there is one), samples, rank 0 prints its result."""
    import torch.distributed as dist

    from ltx_av.ltx_core import parallel

    rank, world, device = spec["rank"], spec["world"], spec["device"]
    torch.set_num_threads(spec["threads"])
    if device.startswith("cuda"):
        device = f"cuda:{rank}"
        torch.cuda.set_device(rank)
    mesh = None
    if world > 1:
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, init_method=spec["init"], rank=rank, world_size=world)
        mesh = parallel.Mesh(spec["guidance"], spec["sequence"])
    model = _model(spec["size"], device)
    parallel.TRAFFIC.reset()
    with parallel.use(mesh):
        seconds = _sample_steps(model, spec["size"], device)
    steps = len(seconds)
    result = {
        "per_step_s": round(statistics.median(seconds[1:]), 4),
        "steps_s": [round(s, 4) for s in seconds],
        "sequence_bytes_per_step": parallel.TRAFFIC.sequence_bytes / steps,
        "guidance_bytes_per_step": parallel.TRAFFIC.guidance_bytes / steps,
    }
    if mesh is not None:
        dist.barrier()
        dist.destroy_process_group()
    if rank == 0:
        print("PARALLEL_RESULT " + json.dumps(result), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_layout(size: str, device: str, world: int, guidance: int, threads: int) -> dict:
    """Start ``world`` processes (``threads`` each) of one layout and return rank 0's result."""
    init = f"tcp://127.0.0.1:{_free_port()}"
    procs = []
    for rank in range(world):
        spec = dict(rank=rank, world=world, guidance=guidance, sequence=world // guidance, size=size, device=device)
        spec.update(threads=threads, init=init)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        command = [sys.executable, "-m", "bench.parallel", "--worker", json.dumps(spec)]
        procs.append(subprocess.Popen(command, cwd=os.path.dirname(HERE), env=env, stdout=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=3600)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(
            f"layout {guidance} x {world // guidance} failed: return codes {[p.returncode for p in procs]}"
        )
    for line in outputs[0].splitlines():
        if line.startswith("PARALLEL_RESULT "):
            return json.loads(line[len("PARALLEL_RESULT ") :])
    raise SystemExit("rank 0 printed no result")


def _machine(device: str) -> str:
    from .runner import machine

    return machine(device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parallel", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (nccl, one process per GPU)")
    parser.add_argument("--procs", type=int, default=2, help="processes of the parallel layouts (default: 2)")
    parser.add_argument("--rounds", type=int, default=2, help="times each layout runs, in turns (default: 2)")
    parser.add_argument("--quick", action="store_true", help="CUDA: 4 layers instead of 48")
    parser.add_argument("--no-save", action="store_true", help="do not append to bench/results.jsonl")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return

    from ltx_av.ltx_core.config import TransformerConfig

    cuda = args.device.startswith("cuda")
    size = ("cuda_quick" if args.quick else "cuda") if cuda else "mid"
    p = args.procs
    if cuda and torch.cuda.device_count() < p:
        raise SystemExit(f"--procs {p} needs {p} GPUs; this machine has {torch.cuda.device_count()}")
    cores = os.cpu_count() or 1
    threads = 1 if cuda else max(1, cores // p)
    layouts = [("1 process", 1, 1, cores if not cuda else 1)]
    if not cuda:
        layouts.append(("1 process, 1 thread", 1, 1, 1))
    layouts += [(f"sequence 1x{p}", p, 1, threads), (f"guidance {p}x1", p, p, threads)]
    if p == 4:
        layouts.append(("both 2x2", 4, 2, threads))
    times: dict[str, list[dict]] = {name: [] for name, *_ in layouts}
    for _ in range(args.rounds):
        for name, world, guidance, n_threads in layouts:
            times[name].append(run_layout(size, args.device, world, guidance, n_threads))
            print(f"{name}: {times[name][-1]['per_step_s']:.3f} s/step", file=sys.stderr, flush=True)

    frames, height, width, text, layers, heads, steps = SIZES[size]
    config = TransformerConfig.from_dict(config_dict(layers, heads))
    video_tokens, audio_tokens = token_counts(size)
    element = 2 if cuda else 4
    baseline = statistics.median(r["per_step_s"] for r in times["1 process"])
    shape = (
        f"LTX-2.3 layout, video {heads}x128 / audio {heads}x64, {layers} layers, {width}x{height}x{frames}: "
        f"{video_tokens} video + {audio_tokens} audio + {text} text tokens, {steps} steps x 4 passes"
    )
    for name, world, guidance, n_threads in layouts:
        per_step = statistics.median(r["per_step_s"] for r in times[name])
        line = {
            "case": f"parallel.{args.device}.{size}.{name.split()[0]}{'' if world == 1 else f'.{guidance}x{world // guidance}'}"
            + (".1thread" if name == "1 process, 1 thread" else ""),
            "shape": shape,
            "dtype": "bfloat16" if cuda else "float32",
            "layout": name,
            "processes": world,
            "threads_per_process": n_threads,
            "per_step_s": round(per_step, 4),
            "speedup_vs_1_process": round(baseline / per_step, 3),
            "runs_per_step_s": [r["per_step_s"] for r in times[name]],
            "machine": _machine(args.device),
            "device": args.device,
            "date": datetime.date.today().isoformat(),
        }
        if world > 1:
            expected = expected_bytes(config, video_tokens, audio_tokens, guidance, world // guidance, 0, element)
            measured = times[name][-1]
            line.update(
                sequence_bytes_per_step=measured["sequence_bytes_per_step"],
                guidance_bytes_per_step=measured["guidance_bytes_per_step"],
                expected_sequence_bytes_per_step=expected["sequence"],
                expected_guidance_bytes_per_step=expected["guidance"],
            )
        print(json.dumps(line), flush=True)
        if not args.no_save:
            with open(RESULTS, "a") as f:
                f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
