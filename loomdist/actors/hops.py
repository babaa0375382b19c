"""Per-hop overhead: what handing an activation from one actor to another costs.

    hop_overhead([(micro, rows), ...], width, hops)  ms per hand-off of a (rows, width)
                                                     float32 array between two actors that
                                                     compute nothing, and the driver's
                                                     ray.put / ray.get of it

jobs/bench_pipeline.py reports it next to the pipeline's step times.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import ray


@ray.remote(num_cpus=0)
class RelayActor:
    """Returns what it gets: a stage with no compute."""

    def relay(self, x):
        return x


def hop_overhead(sizes: list[tuple[int, int]], width: int, hops: int) -> list[dict]:
    """Per (micro, rows): ms per actor-to-actor hand-off of a (rows, width) float32
    activation, and the driver's ray.put / ray.get of it (medians)."""
    a, b = RelayActor.remote(), RelayActor.remote()
    try:
        return [_hops(a, b, m, rows, width, hops) for m, rows in sizes]
    finally:
        ray.kill(a)
        ray.kill(b)


def _hops(a, b, m: int, rows: int, width: int, hops: int) -> dict:
    x = np.random.default_rng(0).standard_normal((rows, width)).astype(np.float32)
    chains = []
    for _ in range(4):  # the first is a warm-up
        t0, ref = time.perf_counter(), ray.put(x)
        for i in range(hops):
            ref = (a if i % 2 == 0 else b).relay.remote(ref)
        ray.get(ref, timeout=600)
        chains.append((time.perf_counter() - t0) / hops)
    puts, gets = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        ref = ray.put(x)
        t1 = time.perf_counter()
        ray.get(ref, timeout=600)
        puts.append(t1 - t0)
        gets.append(time.perf_counter() - t1)
    return {"micro": m, "rows": rows, "kib": x.nbytes / 1024,
            "hop_ms": statistics.median(chains[1:]) * 1e3,
            "put_ms": statistics.median(puts) * 1e3, "get_ms": statistics.median(gets) * 1e3}
