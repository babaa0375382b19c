"""CPU pairing probe: which logical CPUs slow each other down (hidden SMT siblings in a VM).

    python jobs/cpu_pairs.py --json cpu-pairs.json

A single-thread GEMM loop pinned to CPU a runs alone, then next to the same loop pinned to
CPU b. The ratio (paired rate / solo rate) near 1.0 means a and b are separate cores; near
0.5 means they share one (SMT siblings, or vCPUs mapped to one physical core). Then K loops
on chosen CPU sets: consecutive CPUs (from the lowest, and from the highest, which is what
actors/pinning.py hands out) vs spread ones vs the K fastest alone; then every CPU alone
again, to show whether a CPU's speed holds over the run. A set's speed-up sums its CPUs'
rates over their mean solo rate of the two passes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from pathlib import Path

from loomdist.bench import write_json


def _loop(cpu: int, rows: int, width: int, seconds: float, start, out) -> None:
    os.sched_setaffinity(0, {cpu})
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    import numpy as np
    rng = np.random.default_rng(cpu)
    x = rng.standard_normal((rows, width)).astype(np.float32)
    w = rng.standard_normal((width, width)).astype(np.float32)
    for _ in range(3):
        x @ w
    start.wait()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        x @ w
        n += 1
    out.put((cpu, n * 2 * rows * width * width / (time.perf_counter() - t0) / 1e9))


def run_set(cpus, rows, width, seconds) -> dict:
    ctx = mp.get_context("fork")
    start, out = ctx.Barrier(len(cpus) + 1, timeout=60), ctx.Queue()
    ps = [ctx.Process(target=_loop, args=(c, rows, width, seconds, start, out)) for c in cpus]
    for p in ps:
        p.start()
    start.wait()
    got = dict(out.get(timeout=60 + 4 * seconds) for _ in cpus)
    for p in ps:
        p.join()
    return got


def solo_pass(cpus, a) -> dict:
    """{cpu: GFLOP/s of the loop alone on it}, one CPU after another."""
    return {c: run_set([c], a.rows, a.width, a.seconds)[c] for c in cpus}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=128)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=0.6)
    ap.add_argument("--json")
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    solo = solo_pass(cpus, a)
    print("solo GFLOP/s:", {c: round(v, 1) for c, v in solo.items()}, flush=True)
    pairs = {}
    for b in cpus[1:]:
        r = run_set([cpus[0], b], a.rows, a.width, a.seconds)
        pairs[b] = (r[cpus[0]] / solo[cpus[0]], r[b] / solo[b])
    print(f"paired with cpu {cpus[0]} (rate/solo):",
          {b: f"{p[0]:.2f}/{p[1]:.2f}" for b, p in pairs.items()}, flush=True)
    sets = {}
    for k in (4, 8):
        if len(cpus) >= 2 * k:  # room to compare consecutive CPUs with spread ones
            fastest = sorted(sorted(cpus, key=solo.get, reverse=True)[:k])
            sets.update({f"consecutive{k}": cpus[:k], f"top{k}": cpus[-k:],
                         f"even{k}": cpus[0::2][:k], f"stride{k}": cpus[::len(cpus) // k][:k],
                         f"fastest{k}": fastest})
    sets[f"all{len(cpus)}"] = cpus
    rates = {name: run_set(s, a.rows, a.width, a.seconds) for name, s in sets.items()}
    again = solo_pass(cpus, a)
    print("solo GFLOP/s again:", {c: round(v, 1) for c, v in again.items()}, flush=True)
    ref = {c: (solo[c] + again[c]) / 2 for c in cpus}  # the sets ran between the passes
    agg = {}
    for name, s in sets.items():
        agg[name] = {"cpus": s, "speedup": sum(rates[name][c] / ref[c] for c in s),
                     "per_cpu": {c: rates[name][c] / ref[c] for c in s}}
        print(f"{name:>13} {s}: {agg[name]['speedup']:.2f}x of {len(s)}", flush=True)
    topo = {}
    for c in cpus:
        p = Path(f"/sys/devices/system/cpu/cpu{c}/topology")
        topo[c] = {f: (p / f).read_text().strip() for f in
                   ("thread_siblings_list", "core_id", "physical_package_id")
                   if (p / f).exists()}
    print("sysfs topology:", topo)
    if a.json:
        write_json({"solo": solo, "pairs": pairs, "sets": agg, "solo_again": again,
                    "sysfs": topo, "rows": a.rows, "width": a.width}, a.json)


if __name__ == "__main__":
    main()
