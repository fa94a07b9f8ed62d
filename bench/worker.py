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
    module_name, function = spec["target"].split(":")
    setup = getattr(importlib.import_module(module_name), function)
    cuda = spec.get("device", "cpu").startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    step = setup(**spec.get("args", {}))
    for _ in range(spec.get("warmup", 1)):
        step()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        _reset_cpu_peak()
        before = _rss_kib("VmRSS") * 1024
    times = []
    for _ in range(spec.get("runs", 3)):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if cuda else _rss_kib("VmHWM") * 1024
    result = {"seconds": statistics.median(times), "times": times, "peak_mib": max(peak - before, 0) / 2**20}
    extra = getattr(step, "extra", None)
    if extra:
        result["extra"] = extra() if callable(extra) else extra
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
