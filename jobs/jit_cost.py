"""First-run cost of Numba's JIT: compile (cold cache) vs cache load (warm), per layer kind.

Runs the same probe twice in fresh processes sharing an empty NUMBA_CACHE_DIR: the first
compiles every kernel, the second loads them from the cache. Writes JSON.
Usage: python jobs/jit_cost.py [--json bench-results/jit.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loomdist.bench import write_json

PROBE = """
import json, time
t0 = time.perf_counter()
import numpy as np
import loomdist
from loomdist.layers import module_of
t_import = time.perf_counter() - t0
sys_path_cases = __import__("tests.cases", fromlist=["CASES"]).CASES
out = {"import_s": t_import, "kinds": {}}
for case in sys_path_cases:
    m = module_of(case.spec)
    p = m.init(case.spec, np.random.default_rng(0))
    t = time.perf_counter()
    y, c = m.forward(case.spec, p, case.input())
    m.backward(case.spec, p, c, np.ones_like(y))
    out["kinds"][case.kind] = out["kinds"].get(case.kind, 0.0) + time.perf_counter() - t
print(json.dumps(out))
"""


def probe(cache_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    root = Path(__file__).resolve().parents[1]
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=root, check=True,
                         capture_output=True, text=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_s"] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        report = {"cold": probe(cache), "warm": probe(cache)}
    print(json.dumps(report, indent=2))
    if args.json:
        write_json(report, args.json)


if __name__ == "__main__":
    main()
