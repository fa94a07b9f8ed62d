"""Runs one side of one benchmark case in a fresh process and prints its timings and peak memory as JSON.

Invoked by the runner as ``python -m bench.worker '<json spec>'``. The spec names a setup function
(``module:function``) and its keyword arguments; the function builds models and inputs and returns the
zero-argument callable to time. Peak memory is what the timed calls needed beyond what was resident before them:
the CPU's peak resident set (reset through /proc/self/clear_refs) or the CUDA allocator's peak.
"""

from __future__ import annotations

import importlib
import json
import statistics
import sys
import time


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_cpu_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main() -> None:
    spec = json.loads(sys.argv[1])
    import torch

    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    cuda = spec.get("device", "cpu").startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    # One side, or several ("sides": [[target, args], ...]) timed in turns so that drifts in the machine's speed
    # (other tenants, clocks) fall on all of them alike.
    sides = spec.get("sides") or [[spec["target"], spec.get("args", {})]]
    steps = []
    for target, args in sides:
        module_name, function = target.split(":")
        steps.append(getattr(importlib.import_module(module_name), function)(**args))
    for step in steps:
        for _ in range(spec.get("warmup", 1)):
            step()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        _reset_cpu_peak()
        before = _rss_kib("VmRSS") * 1024
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(spec["runs"]):
        for step, own in zip(steps, times, strict=True):
            start = time.perf_counter()
            step()
            sync()
            own.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if cuda else _rss_kib("VmHWM") * 1024
    results = []
    for step, own in zip(steps, times, strict=True):
        # with several sides the peak is shared; the runner then measures each side's alone
        result = {"seconds": statistics.median(own), "times": own, "peak_mib": max(peak - before, 0) / 2**20}
        extra = getattr(step, "extra", None)
        if extra:
            result["extra"] = extra() if callable(extra) else extra
        results.append(result)
    print("BENCH_RESULT " + json.dumps(results if spec.get("sides") else results[0]), flush=True)


if __name__ == "__main__":
    main()
