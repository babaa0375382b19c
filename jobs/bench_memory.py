"""In-process training steps with glibc's malloc defaults against loomdist.memory's settings.

    python jobs/bench_memory.py --json memory-local.json
    python jobs/bench_memory.py --batch 8192 --steps 6 --repeats 3

The pipeline benchmark's grid (`--cells` x `--layers-per-cell` dense width->width layers,
MSE, SGD) takes `--steps` whole-batch train_steps on one thread, in a fresh process per
mode and repeat (malloc settings last for the process), modes alternating:

    glibc    the C library's defaults (retain_freed_memory is not called)
    retain   loomdist.memory.retain_freed_memory() first

Reported per mode: every run's step times and minor page faults per step (a fault maps a
fresh page), and the median over runs of each run's median step after the first (the first
grows the heap).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODES = ("glibc", "retain")


def child(mode: str, cells: int, layers_per_cell: int, width: int, batch: int,
          steps: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_pipeline import BenchConfig, batch_data, grid_network

    from loomdist.memory import retain_freed_memory
    from loomdist.optim import Optimizer
    from loomdist.threads import set_threads
    from loomdist.train import train_step
    from loomdist.train_config import TrainingConfig
    set_threads(1)
    applied = retain_freed_memory() if mode == "retain" else False
    cfg = BenchConfig(stages=(1,), micro=(1,), cells=cells, layers_per_cell=layers_per_cell,
                      width=width, batch=batch)
    net, (x, y) = grid_network(cfg), batch_data(cfg)
    tc = TrainingConfig(loss_type="mse", optimizer="sgd", learning_rate=1e-4,
                        batch_size=batch)
    opt, times, faults = Optimizer(tc.optim_config()), [], []
    for _ in range(steps):
        f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        train_step(net, opt, tc, x, y, 1e-4)
        times.append((time.perf_counter() - t0) * 1e3)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return {"applied": applied, "step_ms": times, "minor_faults": faults}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("cells", 8), ("layers-per-cell", 2), ("width", 1024),
                          ("batch", 4096), ("steps", 5), ("repeats", 2)):
        ap.add_argument(f"--{name}", type=int, default=default, help=f"default {default}")
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if min(a.cells, a.layers_per_cell, a.width, a.batch, a.repeats) < 1 or a.steps < 2:
        ap.error("sizes and --repeats must be >= 1, and --steps >= 2 (the first warms up)")
    shape = (a.cells, a.layers_per_cell, a.width, a.batch, a.steps)
    if a.child:
        print(json.dumps(child(a.child, *shape)))
        return {}
    from loomdist.bench import machine_info, write_json
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    env.pop("LOOMDIST_RETAIN_MEMORY", None)
    runs: dict = {m: [] for m in MODES}
    for _ in range(a.repeats):
        for mode in MODES:
            cmd = [sys.executable, __file__, "--child", mode] + [
                f"--{k}={v}" for k, v in zip(("cells", "layers-per-cell", "width", "batch",
                                              "steps"), shape)]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            runs[mode].append(json.loads(out.stdout.splitlines()[-1]))
            got = runs[mode][-1]
            print(f"{mode:6s} ms/step: {[round(t) for t in got['step_ms']]}  page faults: "
                  f"{got['minor_faults']}", flush=True)
    report = {"machine": machine_info(), "config": vars(a) | {"child": None}, "runs": runs,
              "median_step_ms": {m: statistics.median(statistics.median(r["step_ms"][1:])
                                                      for r in rs) for m, rs in runs.items()}}
    med = report["median_step_ms"]
    print(f"median step after the first: glibc {med['glibc']:.0f} ms, retain "
          f"{med['retain']:.0f} ms ({med['glibc'] / med['retain']:.2f}x)")
    if a.json:
        write_json(report, a.json)
        print(f"wrote {a.json}")
    return report


if __name__ == "__main__":
    main()
