"""What K CPUs allow a K-stage pipeline of the bench grid, with no schedule and no Ray.

    python jobs/stage_ceiling.py --stages 4 --micro 16 --batch 16384 --json ceiling.json

bench_pipeline's `ceil` column comes from K concurrent GEMM loops with one hot weight matrix.
This probe runs the stages' own work instead: K processes, each pinned to one CPU as
actors/pinning.py pins stage actors (from the highest CPU down), each a Cell with one stage's
layers of the bench grid (jobs/bench_pipeline.grid_network, split as Plan.balanced splits
it), all started together. Each runs whole steps of M micro-batches: the forwards, the
backwards (every stage but the first keeps its input gradient, as in a pipeline), the
deferred weight GEMMs and the update. No stage waits for another, nothing is sent, so the
slowest stage's step time is what a pipeline with no bubble and free hand-offs would take.

Per round: one process with the whole grid (K=1, M=1: bench_pipeline's x1 baseline) on the
first stage's CPU, then the K stages together; one more baseline after the last round.
    ceiling_x1    baseline ms (mean of the two around the round) / slowest stage's ms
    stage_ms      each stage's median step ms in the round
    concurrency   sum of each stage's work share / its time against the baseline's time:
                  how far K concurrent stages fall short of K CPUs' worth of baseline speed
The ceiling times (1 - the schedule's ideal bubble) is the most a pipeline of this grid can
reach on these CPUs in that round.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import statistics
import sys
import time
from dataclasses import asdict

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS")  # set to 1 for the stage processes, before their numpy
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_pipeline import BenchConfig, batch_data, grid_network  # noqa: E402

from loomdist.bench import write_json  # noqa: E402
from loomdist.errors import ConfigError  # noqa: E402


def stage_layers(cfg: BenchConfig, k: int) -> list[range]:
    """Flat layer ranges of K stages of equal cells (Plan.balanced with equal cost)."""
    if cfg.cells % k:
        raise ConfigError(f"stage_ceiling: {cfg.cells} cells do not split into {k} equal "
                          f"stages; pass --cells as a multiple of --stages")
    per = cfg.cells // k * cfg.layers_per_cell
    return [range(s * per, (s + 1) * per) for s in range(k)]


def stage_jobs(cfg: BenchConfig, k: int) -> list[tuple]:
    """(layers, first stage?, CPU) of K equal stages, pinned as the stage actors are."""
    return [(layers, s == 0, cpu)
            for s, (layers, cpu) in enumerate(zip(stage_layers(cfg, k), cpus_for(k)))]


def _stage(fields: dict, layers: range, first: bool, m: int, cpu: int, start, out,
           slot: int) -> None:
    """One process: pin, build the stage, warm up, wait for the others, time cfg.steps.
    fields: the BenchConfig as a dict (the caller's class may come from a module loaded by
    path, which a spawned process cannot import by name)."""
    os.sched_setaffinity(0, {cpu})
    cfg = BenchConfig(**fields)
    import numpy as np

    from loomdist.actors.cell import Cell
    from loomdist.memory import retain_freed_memory
    from loomdist.threads import set_threads
    from loomdist.train_config import TrainingConfig

    set_threads(1)
    retain_freed_memory()
    net = grid_network(cfg)
    tc = TrainingConfig(loss_type="mse", optimizer="sgd", learning_rate=1e-6,
                        batch_size=cfg.batch)
    cell = Cell([(i, net.coords(i), net.layers[i]) for i in layers], tc.optim_config(),
                ("mse", None))
    x, t = batch_data(cfg)
    xs, ts = np.array_split(x, m), np.array_split(t, m)

    def step(n: int) -> None:
        cell.begin_step(n)
        for mb in range(m):
            cell.forward_loss(mb, xs[mb], None, ts[mb], 1.0 / m)
        for mb in range(m):
            cell.backward(mb, keep_dx=not first)
        cell.grad_sq_norm()
        cell.apply(tc.learning_rate)

    for n in range(cfg.warmup):
        step(n)
    start.wait()
    times, c0 = [], time.process_time()
    for n in range(cfg.steps):
        t0 = time.perf_counter()
        step(cfg.warmup + n)
        times.append(time.perf_counter() - t0)
    out.put((slot, {"cpu": cpu, "step_ms": [s * 1e3 for s in times],
                    "cpu_ms_per_step": (time.process_time() - c0) * 1e3 / cfg.steps}))


def run_together(cfg: BenchConfig, jobs: list[tuple], m: int) -> list[dict]:
    """Run (layers, first, cpu) jobs as processes started together; their reports, in order."""
    ctx, fields = mp.get_context("spawn"), asdict(cfg)
    start, out = ctx.Barrier(len(jobs), timeout=cfg.timeout_s), ctx.Queue()
    ps = [ctx.Process(target=_stage, args=(fields, layers, first, m, cpu, start, out, i))
          for i, (layers, first, cpu) in enumerate(jobs)]
    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    try:  # a spawned process takes the environment of its start; this one keeps its own
        os.environ.update({v: "1" for v in THREAD_VARS})
        for p in ps:
            p.start()
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old
    got, deadline = {}, time.monotonic() + cfg.timeout_s
    try:
        while len(got) < len(ps):
            try:
                slot, report = out.get(timeout=0.5)
                got[slot] = report
            except queue.Empty:
                dead = [i for i, p in enumerate(ps) if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"stage_ceiling: stage processes {dead} failed (exit "
                                       f"codes {[ps[i].exitcode for i in dead]}); their "
                                       f"traceback is on stderr") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"stage_ceiling: no result within timeout_s "
                                       f"{cfg.timeout_s:g} s; pass a larger --timeout-s") from None
    finally:
        for p in ps:
            p.join(timeout=5 if len(got) < len(ps) else cfg.timeout_s)
            if p.is_alive():
                p.kill()
    return [got[i] for i in range(len(jobs))]


def cpus_for(k: int) -> list[int]:
    """The CPU pinning.assign_cpus hands each of K one-CPU actors on this machine."""
    from loomdist.actors.pinning import assign_cpus

    allowed = sorted(os.sched_getaffinity(0))
    got = assign_cpus([("", allowed)] * k, 1, warn=False)
    if None in got:
        raise ConfigError(f"stage_ceiling: {k} stages need {k} CPUs, this process may use "
                          f"{len(allowed)}; pass fewer --stages")
    return [cpus[0] for cpus in got]


def run(cfg: BenchConfig, k: int, m: int, log=print) -> dict:
    jobs = stage_jobs(cfg, k)
    cpus, whole = [cpu for _, _, cpu in jobs], range(cfg.cells * cfg.layers_per_cell)

    def baseline() -> float:
        ms = statistics.median(run_together(cfg, [(whole, True, cpus[0])], 1)[0]["step_ms"])
        log(f"baseline: one process, whole grid, M=1 on cpu {cpus[0]}: {ms:.1f} ms/step")
        return ms

    bases, rounds = [baseline()], []
    for r in range(cfg.rounds):
        got = run_together(cfg, jobs, m)
        bases.append(baseline())
        base = (bases[-2] + bases[-1]) / 2
        ms = [statistics.median(g["step_ms"]) for g in got]
        row = {"stage_ms": ms, "stage_cpu_ms": [g["cpu_ms_per_step"] for g in got],
               "cpus": cpus, "baseline_ms": base, "ceiling_x1": base / max(ms),
               "concurrency": sum(base / k / s for s in ms) / k}
        rounds.append(row)
        log(f"round {r + 1}/{cfg.rounds}: stages ms/step {[round(s, 1) for s in ms]}; "
            f"ceiling x1 {row['ceiling_x1']:.2f}, concurrency {row['concurrency']:.3f}")
    return {"config": {"stages": k, "micro": m, "cells": cfg.cells, "batch": cfg.batch,
                       "width": cfg.width, "layers_per_cell": cfg.layers_per_cell,
                       "steps": cfg.steps, "warmup": cfg.warmup, "rounds": cfg.rounds},
            "baselines_ms": bases, "rounds": rounds,
            "ceiling_x1_median": statistics.median(r["ceiling_x1"] for r in rounds)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stages", type=int, default=4, help="K (default 4)")
    ap.add_argument("--micro", type=int, default=16, help="M (default 16)")
    ap.add_argument("--cells", type=int, default=8)
    ap.add_argument("--layers-per-cell", type=int, default=2)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=2, help="timed steps per run (default 2)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout-s", type=float, default=600.0)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    try:
        cfg = BenchConfig(stages=(1, a.stages), micro=(a.micro,), cells=a.cells,
                          layers_per_cell=a.layers_per_cell, width=a.width, batch=a.batch,
                          steps=a.steps, warmup=a.warmup, rounds=a.rounds,
                          timeout_s=a.timeout_s)
        stage_jobs(cfg, a.stages)  # checked before any process starts
    except ConfigError as e:
        ap.error(str(e))
    report = run(cfg, a.stages, a.micro)
    print(f"ceiling x1 (median of {a.rounds} rounds): {report['ceiling_x1_median']:.2f}")
    if a.json:
        write_json(report, a.json)
    return report


if __name__ == "__main__":
    main()
