"""Tests 17-19: mid-stream adaptation on the chase/avoid task (spec 5.3-5.5, 2.7).

One run = one fresh network, one mode, closed loop: observe, act on the mode's output (the
network's argmax action is executed), learn from the optimal action, drift the target.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from ..modes import ADAPT_MODES, make_mode, mode_name
from .env import AVOID, CHASE, TASK_NAMES, ChaseEnv
from .nets import INPUT_SIZES, make_net, t17_net

TRAIN_INTERVAL_S = 0.05
OUT = 4


@dataclass(frozen=True)
class AdaptProtocol:
    """Duration, windows and task schedule [(at seconds, task)] of one test."""

    test: int
    duration_s: float
    windows: int
    changes: tuple
    avg_over_all_windows: bool  # Test 17 averages all 15 windows; the tracker only non-empty

    def task_at(self, t: float) -> int:
        task = CHASE
        for at, to in self.changes:
            if t >= at:
                task = to
        return task


T17 = AdaptProtocol(17, 15.0, 15, ((5.0, AVOID), (10.0, CHASE)), True)
# duration/3 in Go's integer nanoseconds: 3.333333333 s and 6.666666666 s
T18 = AdaptProtocol(18, 10.0, 10, ((3.333333333, AVOID), (6.666666666, CHASE)), False)
T19 = AdaptProtocol(19, 10.0, 10, T18.changes, False)
PROTOCOLS = {17: T17, 18: T18, 19: T19}


@dataclass
class AdaptRun:
    """LOOM's AdaptationResult plus the clock and the measured throughput."""

    model_name: str
    mode_name: str
    seed: int
    clock: str
    outputs: np.ndarray          # per window
    correct: np.ndarray
    tasks: list                  # task id stamped by the window's last output
    task_changes: list = field(default_factory=list)  # dicts, LOOM's TaskChange fields
    wall_s: float = 0.0
    cpu_s: float = 0.0           # process CPU time (robust on a loaded machine)

    @property
    def accuracy(self) -> np.ndarray:
        out = self.outputs.astype(np.float64)
        return np.where(out > 0, self.correct / np.maximum(out, 1) * 100, 0.0)

    @property
    def total_outputs(self) -> int:
        return int(self.outputs.sum())

    def avg_accuracy(self, over_all: bool) -> float:
        acc = self.accuracy
        return float(acc.mean() if over_all else acc[self.outputs > 0].mean())

    @property
    def outputs_per_sec(self) -> float:
        return self.total_outputs / self.wall_s if self.wall_s > 0 else 0.0


def run_adaptation(net, mode: str, proto: AdaptProtocol, clock, env_rng, model_name="",
                   seed: int = 0) -> AdaptRun:
    """One closed-loop run of `mode` on `net` under `clock`."""
    if clock.name == "wall":
        warm_up(net, mode)
    m = make_mode(mode, net, OUT, "adapt")
    env, size = ChaseEnv(env_rng), input_size(net)
    W = proto.windows
    run = AdaptRun(model_name, mode_name(mode), seed, clock.name, np.zeros(W, np.int64),
                   np.zeros(W, np.int64), [CHASE] * W)
    t0, c0 = time.perf_counter(), time.process_time()
    clock.start()
    last_train, window_s = clock.now(), proto.duration_s / W
    while (t := clock.now()) < proto.duration_s:
        w = min(int(t / window_s), W - 1)
        _switch_task(env, proto.task_at(t), t, w, run)
        obs = env.observation(size)
        y = m.output(obs)
        action, best = _argmax(y), env.optimal_action()
        run.outputs[w] += 1
        run.correct[w] += action == best
        run.tasks[w] = env.task
        env.execute(action)
        m.learn(obs, best)
        if m.BURST and m.buffer and clock.now() - last_train > TRAIN_INTERVAL_S:
            m.flush()
            last_train = clock.now()
        env.drift()
        clock.tick()
    run.wall_s = time.perf_counter() - t0
    run.cpu_s = time.process_time() - c0
    _finalize_changes(run)
    return run


def input_size(net) -> int:
    """LOOM's net.InputSize (every benchmark factory sets it)."""
    if net.input_size:
        return net.input_size
    return net.layers[0].module.in_features(net.layers[0].spec)


def warm_up(net, mode: str, n: int = 3) -> None:
    """Run `mode` a few outputs on a copy of `net`, so Numba compilation and cache loading do
    not eat the first wall-clock window (LOOM's Go code has no JIT)."""
    m = make_mode(mode, copy.deepcopy(net), OUT, "adapt")
    size = input_size(net)
    for k in range(n):
        m.output(np.zeros(size, np.float32))
        m.learn(np.zeros(size, np.float32), k % OUT)
    m.flush()


def _switch_task(env, task, t, w, run) -> None:
    if task != env.task:
        run.task_changes.append({"at_time": t, "from_task": TASK_NAMES[env.task],
                                 "to_task": TASK_NAMES[task], "pre_change_window": max(w - 1, 0),
                                 "post_change_window": w})
        env.task = task


def _finalize_changes(run: AdaptRun) -> None:
    """AdaptationTracker.Finalize: pre/post accuracy and recovery (first window >= 50 %)."""
    acc = run.accuracy
    for c in run.task_changes:
        post = c["post_change_window"]
        c["pre_accuracy"] = float(acc[c["pre_change_window"]])
        c["post_accuracy"] = float(acc[post])
        rec = next((j - post for j in range(post, acc.size) if acc[j] >= 50), -1)
        c["recovery_windows"] = rec
        c["recovery_time"] = float(rec)  # x 1 s windows


def _argmax(y: np.ndarray) -> int:
    """LOOM's argmax over the first 4 outputs (first maximum; zero-padded when shorter)."""
    v = np.zeros(OUT, np.float32)
    n = min(OUT, y.size)
    v[:n] = y[:n]
    return int(np.argmax(v))


def seeds_for(seed: int, key: tuple):
    """(network rng, environment rng) of one run: independent streams per (seed, key)."""
    ss = np.random.SeedSequence([seed, *key])
    a, b = ss.spawn(2)
    return np.random.default_rng(a), np.random.default_rng(b)


def run_test17(clock_factory, seed: int = 0, modes=ADAPT_MODES) -> list:
    """Test 17: the 6-layer Dense network, 15 s, CHASE -> AVOID -> CHASE, each mode fresh."""
    runs = []
    for mode in modes:
        idx = ADAPT_MODES.index(mode_name(mode))
        net_rng, env_rng = seeds_for(seed, (17, idx))
        runs.append(run_adaptation(t17_net(net_rng), mode, T17, clock_factory(), env_rng,
                                   "Dense-6L", seed))
    return runs


def run_config(kind: str, depth: int, mode: str, proto: AdaptProtocol, clock, seed: int):
    """One Test 18/19 run of `kind`-`depth` with `mode` (fresh network)."""
    idx = ADAPT_MODES.index(mode_name(mode))
    key = (proto.test, list(INPUT_SIZES).index(kind), depth, idx)
    net_rng, env_rng = seeds_for(seed, key)
    net = make_net(kind, depth, net_rng)
    return run_adaptation(net, mode, proto, clock, env_rng, f"{kind}-{depth}L", seed)
