"""The one benchmark runner every ``bench/*.py`` plugs into.

A benchmark module defines ``cases(quick: bool, device: str, workdir: str) -> list[Case]``; it may write shared
inputs (e.g. a checkpoint file) into ``workdir`` first. Each case runs our side and the reference side in separate
fresh subprocesses (so peak memory is clean): one warm-up call, then the median of ``runs`` (>= 3) timed calls
(``--runs`` sets another count, e.g. one call of a case that takes half an hour).
A case marked ``interleave`` builds both sides in one process and alternates their timed calls instead.
On the CPU, peak memory comes from one more fresh process per side that makes one warm-up call and one measured
call with glibc's mmap threshold pinned at 64 KiB (``MALLOC_MMAP_THRESHOLD_``): every tensor-sized block is then
its own mapping, returned to the system when freed, so the peak resident set follows the live allocations. Under
the default, adaptive threshold freed blocks stay in the heap in an order that varies run to run; the same code
measured 88 to 233 MiB on a 100 MiB vocoder case. Pinning costs page faults, which is why the timed calls run
without it. One JSON line per case is printed and appended to ``bench/results.jsonl``::

    {"case", "shape", "dtype", "ours_s", "ref_s", "time_ratio", "ours_peak_mib", "ref_peak_mib", "mem_ratio",
     "machine", ...}

Ratios are ours / reference (below 1 is better). A case without a reference side reports nulls for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results.jsonl")


@dataclass
class Case:
    """One measurement: ``ours`` / ``ref`` are ``module:function`` setup functions called with ``args``."""

    name: str
    shape: str
    dtype: str
    ours: str
    ref: str | None
    args: dict[str, Any] = field(default_factory=dict)
    ref_args: dict[str, Any] | None = None
    runs: int = 3
    warmup: int = 1
    device: str = "cpu"
    timeout: float = 1800.0
    notes: str = ""
    # False: take the CPU peak from the timed process (resident-set growth under the default allocator settings).
    memory_run: bool = True
    # True: build both sides in one process and time their calls in turns (for cases short enough that the
    # machine's drift between two processes is as large as the difference being measured).
    interleave: bool = False
    # The Python that runs the reference side (None: this one), for a reference that is not installed here; such a
    # case never interleaves. Benchmarks take it from LTX_AV_BENCH_REF_PYTHON (see REF_PYTHON_ENV).
    ref_python: str | None = None
    # Set by --runs: ``runs`` is then taken as given, even below 3.
    runs_forced: bool = False


# Environment variable naming the Python of a separate environment that has the reference a benchmark needs (e.g.
# ltx-core 1.2.0, which is not on PyPI); read by the benchmarks that need it.
REF_PYTHON_ENV = "LTX_AV_BENCH_REF_PYTHON"


def release_heads(heads: int) -> dict[str, int]:
    """Transformer config entries for ``heads`` attention heads at the release's head widths (video 128, audio 64;
    the release has 32 heads): the benches' full-width models with fewer layers or heads."""
    return {
        "num_attention_heads": heads,
        "attention_head_dim": 128,
        "audio_num_attention_heads": heads,
        "audio_attention_head_dim": 64,
        "cross_attention_dim": heads * 128,
        "audio_cross_attention_dim": heads * 64,
    }


def machine(device: str = "cpu") -> str:
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(0)} (CUDA), {os.cpu_count()} CPU cores"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores (CPU)"


# glibc's tunable; setting it also switches off the adaptive threshold.
PINNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024)}


def _memory_run(case: Case) -> bool:
    return case.memory_run and not case.device.startswith("cuda")


def _runs(case: Case) -> int:
    # At least 3 for a median, unless the command line asked for fewer (see main's --runs).
    return case.runs if case.runs_forced else max(case.runs, 3)


def run_side(case: Case, target: str, args: dict[str, Any], python: str | None = None) -> dict[str, Any]:
    result = _worker(case, {"target": target, "args": args}, runs=_runs(case), python=python)
    if _memory_run(case):
        result["peak_mib"] = _memory(case, target, args, python)
    return result


def run_interleaved(case: Case, sides: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """All sides built in one process and timed in turns; peak memory then comes from a process per side."""
    results = _worker(case, {"sides": sides}, runs=_runs(case))
    if _memory_run(case):
        for result, (target, args) in zip(results, sides, strict=True):
            result["peak_mib"] = _memory(case, target, args)
    return results


def _memory(case: Case, target: str, args: dict[str, Any], python: str | None = None) -> float:
    return _worker(case, {"target": target, "args": args}, runs=1, env=PINNED_MALLOC, python=python)["peak_mib"]


def _worker(
    case: Case, what: dict[str, Any], runs: int, env: dict[str, str] | None = None, python: str | None = None
) -> Any:
    spec = {**what, "runs": runs, "warmup": case.warmup, "device": case.device}
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    proc = subprocess.run(
        [python or sys.executable, "-m", "bench.worker", json.dumps(spec)],
        cwd=os.path.dirname(HERE),
        env=env,
        capture_output=True,
        text=True,
        timeout=case.timeout,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT ") :])
    name = what.get("target") or " + ".join(target for target, _ in what["sides"])
    raise RuntimeError(f"{case.name}: {name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def run_case(case: Case, quick: bool, save: bool, reference: bool = True) -> dict[str, Any]:
    ref_args = case.ref_args if case.ref_args is not None else case.args
    interleaved = case.interleave and case.ref is not None and reference and case.ref_python is None
    if interleaved:
        ours, ref = run_interleaved(case, [(case.ours, case.args), (case.ref, ref_args)])
    else:
        ours = run_side(case, case.ours, case.args)
        ref = run_side(case, case.ref, ref_args, case.ref_python) if case.ref and reference else None
    line = {
        "case": case.name,
        "shape": case.shape,
        "dtype": case.dtype,
        "ours_s": round(ours["seconds"], 4),
        "ref_s": round(ref["seconds"], 4) if ref else None,
        "time_ratio": _ratio(ours["seconds"], ref["seconds"] if ref else None),
        "ours_peak_mib": round(ours["peak_mib"], 1),
        "ref_peak_mib": round(ref["peak_mib"], 1) if ref else None,
        "mem_ratio": _ratio(ours["peak_mib"], ref["peak_mib"] if ref else None),
        "timing": "interleaved" if interleaved else "separate processes",
        "runs": _runs(case),
        "peak": "cuda allocator"
        if case.device.startswith("cuda")
        else "rss, pinned mmap"
        if _memory_run(case)
        else "rss",
        "machine": machine(case.device),
        "device": case.device,
        "quick": quick,
        "date": datetime.date.today().isoformat(),
    }
    if "extra" in ours:
        line["ours_extra"] = ours["extra"]
    if ref and "extra" in ref:
        line["ref_extra"] = ref["extra"]
    if case.notes:
        line["notes"] = case.notes
    print(json.dumps(line), flush=True)
    if save:
        with open(RESULTS, "a") as f:
            f.write(json.dumps(line) + "\n")
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="benchmark module in bench/ (e.g. load, video_vae, transformer)")
    parser.add_argument("--quick", action="store_true", help="a reduced case that runs in under a minute")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--case", default="", help="run only cases whose name contains this")
    parser.add_argument("--no-save", action="store_true", help=f"do not append to {os.path.relpath(RESULTS)}")
    parser.add_argument("--ours-only", action="store_true", help="skip the reference side (its ratios are null)")
    parser.add_argument(
        "--runs", type=int, metavar="N", help="timed calls per side, the median reported (default: each case's, >= 3)"
    )
    args = parser.parse_args(argv)
    module = importlib.import_module(f"bench.{args.name}")
    with tempfile.TemporaryDirectory(prefix="ltx_av_bench_") as workdir:
        for case in module.cases(quick=args.quick, device=args.device, workdir=workdir):
            if args.case in case.name:
                if args.runs is not None:
                    case = dataclasses.replace(case, runs=max(1, args.runs), runs_forced=True)
                run_case(case, args.quick, save=not args.no_save, reference=not args.ours_only)
