"""StepTweenChain throughput on LOOM's Test 17 network, local, vs LOOM Go's ~78k outputs/15 s.

    python jobs/tween_throughput.py --quick --json docs/benchmarks/tween-throughput-quick.json
    python jobs/tween_throughput.py --json bench-results/tween-throughput.json       # full

One output = what LOOM's Test 17 loop does per iteration in StepTweenChain mode: observe,
one step tick (set_input + step_forward + output), argmax action, TweenStep(obs, optimal, 4,
0.02), environment update. Runs the real Test 17 loop under the wall clock for --seconds
(LOOM: 15 s), reporting outputs per wall second (LOOM's measure) and per CPU second (robust
when the machine is shared), and times the two halves (step tick, TweenStep) in CPU time.
Single process, one thread (LOOM's loop is one goroutine).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from loomdist.bench import machine_info, write_json
from loomdist.threads import set_threads
from loomdist.tween.assess.adapt import T17, AdaptProtocol, run_adaptation, seeds_for
from loomdist.tween.assess.clock import WallClock
from loomdist.tween.assess.nets import t17_net
from loomdist.tween.assess.published import TEST17_TOTAL_OUTPUTS_STC
from loomdist.tween.modes import make_mode

LOOM_OUTPUTS_PER_SEC = TEST17_TOTAL_OUTPUTS_STC / 15.0


def loop_rate(seconds: float, seed: int) -> dict:
    """The Test 17 StepTweenChain loop under the wall clock, shortened to `seconds`."""
    proto = AdaptProtocol(17, seconds, max(1, int(seconds)), T17.changes, True)
    net_rng, env_rng = seeds_for(seed, (17, 4))
    run = run_adaptation(t17_net(net_rng), "StepTweenChain", proto, WallClock(), env_rng)
    return {"outputs": run.total_outputs, "seconds": run.wall_s, "cpu_s": run.cpu_s,
            "outputs_per_sec": run.outputs_per_sec,
            "outputs_per_cpu_sec": run.total_outputs / run.cpu_s if run.cpu_s else 0.0}


def halves(n: int, seed: int) -> dict:
    """Split CPU timing: n step ticks, then n TweenSteps, on the Test 17 network."""
    net_rng, env_rng = seeds_for(seed, (17, 4))
    net = t17_net(net_rng)
    mode = make_mode("StepTweenChain", net, 4, "adapt")
    xs = env_rng.random((n, 8), dtype=np.float32)
    t0 = time.process_time()
    for x in xs:
        mode.output(x)
    t1 = time.process_time()
    for k, x in enumerate(xs):
        mode.ts.tween_step(net, x, k % 4, 4, 0.02)
    t2 = time.process_time()
    return {"n": n, "step_tick_cpu_us": (t1 - t0) / n * 1e6,
            "tween_step_cpu_us": (t2 - t1) / n * 1e6}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="3 s loop, 2000 split outputs")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    if a.quick:
        a.seconds, a.n = 3.0, 2000
    set_threads(1)
    halves(200, a.seed)  # warm-up: Numba compilation and caches
    loop = loop_rate(a.seconds, a.seed)
    split = halves(a.n, a.seed)
    ratio = loop["outputs_per_sec"] / LOOM_OUTPUTS_PER_SEC
    print(f"StepTweenChain, Test 17 network: {loop['outputs_per_sec']:.0f} outputs/s "
          f"({loop['outputs']} in {loop['seconds']:.1f} s); LOOM Go ~{LOOM_OUTPUTS_PER_SEC:.0f}"
          f" outputs/s -> x{ratio:.2f}")
    print(f"CPU time: {loop['outputs_per_cpu_sec']:.0f} outputs per CPU second; per output: "
          f"step tick {split['step_tick_cpu_us']:.0f} us, TweenStep "
          f"{split['tween_step_cpu_us']:.0f} us (CPU)")
    doc = {"benchmark": "tween_throughput (StepTweenChain, LOOM Test 17 network)",
           "command": " ".join(sys.argv), "loop": loop, "split": split,
           "loom_outputs_per_sec": LOOM_OUTPUTS_PER_SEC, "ratio_vs_loom": ratio,
           "loom_source": "issue 5 / spec 5.6: ~78k outputs in LOOM's 15 s Test 17 run",
           "machine": machine_info()}
    if a.json:
        write_json(doc, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
