"""Single-thread float32 GEMM rate against the row count of the activation.

    python jobs/cpu_gemm_rows.py --width 1024 --json cpu-gemm-rows.json

A pipeline stage runs its forward (x @ W) and input gradient (g @ W.T) per micro-batch, so
its GEMMs have batch/M rows; the weight gradient (x.T @ g) is deferred to one GEMM over the
whole mini-batch. This measures what cutting the rows costs on this CPU, with numpy's BLAS:
each GEMM form with one weight matrix (hot in cache), and x@W cycling through `--layers`
distinct weight matrices, as a stage's layers do per micro-batch (BLAS then reads and packs
a cold weight matrix for every call, a fixed cost that fewer rows amortise worse).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from loomdist.bench import write_json


def rate(f, flops: float, seconds: float = 0.5) -> float:
    """GFLOP/s of f() over about `seconds` (after one warm-up call)."""
    f()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        f()
        n += 1
    return n * flops / (time.perf_counter() - t0) / 1e9


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--rows", default="64,128,256,512,1024,2048")
    ap.add_argument("--layers", type=int, default=16,
                    help="distinct weight matrices of the cold x@W column (default 16)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    if a.layers < 1:
        ap.error(f"--layers must be >= 1 (got {a.layers}); e.g. --layers 16")
    threadpool_limits(1)
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((a.width, a.width)).astype(np.float32)
          for _ in range(a.layers)]
    w = ws[0]
    out = {"width": a.width, "threads": 1, "layers": len(ws), "gflops": {}}  # cold: layers W
    for rows in (int(r) for r in a.rows.split(",")):
        x, g = (rng.standard_normal((rows, a.width)).astype(np.float32) for _ in range(2))
        o = np.empty_like(x)  # one reused output: the cold column times GEMMs, not mallocs
        flops = 2.0 * rows * a.width * a.width
        got = {"x@W": rate(lambda x=x: x @ w, flops),
               "g@W.T": rate(lambda g=g: g @ w.T, flops),
               "x.T@g": rate(lambda x=x, g=g: x.T @ g, flops),
               "x@W cold": rate(lambda x=x, o=o: [np.matmul(x, v, out=o) for v in ws],
                                flops * len(ws))}
        out["gflops"][rows] = got
        print(f"{rows:6d} rows  " + "  ".join(f"{k} {v:6.1f}" for k, v in got.items()))
    if a.json:
        write_json(out, a.json)
    return out


if __name__ == "__main__":
    main()
