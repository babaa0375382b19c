"""Test 16: the seven-mode comparison on the parity/quadrant data (spec 5.2, 4.13).

Each mode gets its own fresh network and a budget: LOOM's 10 s of wall-clock (clock "wall"),
or a fixed number of sample operations (clock "deterministic"; one op = one BP sample, one
TweenStep/accumulate or one step tick). Modes run one after another here (LOOM runs the seven
concurrently on goroutines). Accuracy = % of the 500 training samples whose argmax matches.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..modes import TEST16_MODES, make_mode, mode_name
from .adapt import seeds_for
from .env import t16_data
from .nets import INPUT_SIZES, make_net

SAMPLE_STEPS = 20   # stepping modes: a sample is presented for 20 steps
EVAL_EVERY = {"NormalBP": 1, "NormTween": 10, "BatchTween": 100}  # chunks / epochs / batches
STEP_EVAL_EVERY = 5000
TARGET = 90.0
DEFAULT_OPS = 50_000


@dataclass
class T16Result:
    """Test 16's TrainingMetrics for one (network, mode)."""

    config: str
    mode: str
    seed: int
    clock: str
    accuracy: float = 0.0
    loss: float | None = None
    steps: int = 0
    time_total_s: float = 0.0
    time_to_target_s: float | None = None
    milestones_s: list = field(default_factory=lambda: [None] * 10)

    def milestone(self, acc: float, t: float) -> None:
        """UpdateMilestone: each threshold 10..100 reached for the first time gets `t`."""
        for k in range(10):
            if self.milestones_s[k] is None and acc >= 10 * (k + 1):
                self.milestones_s[k] = t
        if self.time_to_target_s is None and acc >= TARGET:
            self.time_to_target_s = t


def accuracy(mode, xs, ys) -> float:
    """% of samples whose argmax output equals the class (stepping: L + 2 ticks each)."""
    hits = sum(int(np.argmax(mode.eval_output(x))) == int(c) for x, c in zip(xs, ys))
    return 100.0 * hits / len(xs)


class _Budget:
    def __init__(self, clock: str, ops: int, seconds: float):
        self.clock, self.ops, self.seconds = clock, ops, seconds
        self.used, self.t0 = 0, time.perf_counter()

    def elapsed(self) -> float:
        if self.clock == "deterministic":
            return self.used / self.ops * self.seconds  # simulated: ops spread over 10 s
        return time.perf_counter() - self.t0

    def left(self) -> bool:
        if self.clock == "deterministic":
            return self.used < self.ops
        return time.perf_counter() - self.t0 < self.seconds


def run_mode(kind: str, depth: int, mode: str, seed: int, clock: str = "deterministic",
             ops: int = DEFAULT_OPS, seconds: float = 10.0) -> T16Result:
    """One Test 16 (network, mode) run."""
    key = mode_name(mode)
    net_rng, data_rng = seeds_for(seed, (16, list(INPUT_SIZES).index(kind), depth,
                                         TEST16_MODES.index(key)))
    xs, ys = t16_data(INPUT_SIZES[kind], np.random.default_rng(seed))
    m = make_mode(key, make_net(kind, depth, net_rng, t16=True), 3, "t16")
    res = T16Result(f"{kind}-{depth}L", key, seed, clock)
    budget = _Budget(clock, ops, seconds)
    SCHEDULES[_family(key)](m, xs, ys, budget, res, data_rng)
    res.accuracy = accuracy(m, xs, ys)
    res.loss = getattr(m, "last_loss", None)
    res.time_total_s = budget.elapsed()
    res.steps = budget.used
    return res


def _family(key: str) -> str:
    return key if key in EVAL_EVERY else "stepping"


def _evaluate(m, xs, ys, budget, res) -> None:
    res.milestone(accuracy(m, xs, ys), budget.elapsed())


def _normal_bp(m, xs, ys, budget, res, rng) -> None:
    """Train(all 500 samples, Epochs 5) repeatedly; evaluate after every chunk."""
    samples = list(zip(xs, ys))
    while budget.left():
        m.train_on(samples)
        budget.used += len(samples) * m.epochs
        _evaluate(m, xs, ys, budget, res)


def _norm_tween(m, xs, ys, budget, res, rng) -> None:
    """Epochs over the samples in fixed order; evaluate every 10 epochs."""
    epoch = 0
    while budget.left():
        for x, c in zip(xs, ys):
            m.learn(x, c)
        budget.used += len(xs)
        epoch += 1
        if epoch % EVAL_EVERY["NormTween"] == 0:
            _evaluate(m, xs, ys, budget, res)


def _batch_tween(m, xs, ys, budget, res, rng) -> None:
    """TweenBatch(first 32 of a fresh permutation) repeatedly; evaluate every 100 batches."""
    batches = 0
    while budget.left():
        for i in rng.permutation(len(xs))[:m.batch]:
            m.learn(xs[i], ys[i])
        budget.used += m.batch
        batches += 1
        if batches % EVAL_EVERY["BatchTween"] == 0:
            _evaluate(m, xs, ys, budget, res)


def _stepping(m, xs, ys, budget, res, rng) -> None:
    """Every step: one tick on the current sample and the mode's learning; the sample changes
    every 20 steps (in data order); evaluate every 5000 steps."""
    step = 0
    while budget.left():
        i = (step // SAMPLE_STEPS) % len(xs)
        m.output(xs[i])
        m.learn(xs[i], ys[i])
        step += 1
        budget.used += 1
        if step % STEP_EVAL_EVERY == 0:
            _evaluate(m, xs, ys, budget, res)


SCHEDULES = {"NormalBP": _normal_bp, "NormTween": _norm_tween, "BatchTween": _batch_tween,
             "stepping": _stepping}


def determine_best(results) -> str:
    """DetermineBest: > 1 point better wins; within 1 point the lower finite loss wins."""
    best = results[0]
    for r in results[1:]:
        if r.accuracy > best.accuracy + 1:
            best = r
        elif abs(r.accuracy - best.accuracy) <= 1 and _finite(r.loss) \
                and best.loss is not None and r.loss < best.loss:  # NaN best: no swap (Go)
            best = r
    return best.mode + " ✓"


def _finite(v) -> bool:
    return v is not None and not math.isnan(v)
