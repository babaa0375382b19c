"""Pipeline benchmark: a stages x micro-batches sweep of DistributedTrainer on Ray.

    python jobs/bench_pipeline.py --quick --json bench-results/pipeline.json
    python jobs/bench_pipeline.py --stages 1,4 --micro 16 --width 512 --no-defer
    python jobs/bench_pipeline.py --stages 1,4 --micro 16 --batch 4096 --schedule gpipe,zbh1

A compute-heavy grid (`--cells` cells of `--layers-per-cell` dense width->width layers, MSE
loss, SGD) is trained for a few steps on random data for every (K stages, M micro-batches) of
the sweep, plus one unsplit actor (K=1, M=1) as the baseline. Stages defer weight gradients
to one GEMM per mini-batch (DistributedTrainer's defer_weight_grads) unless --no-defer.
Both baselines are one stage actor with the same `--cpus-per-actor` as each pipeline stage
(so a K-stage point uses K times the CPUs of its baselines). Per point it reports:

    samples/s      mini-batch rows / median step time
    x1             speedup over one actor with the whole mini-batch (K=1, M=1): what
                   pipelining buys a user who has one actor's CPUs per stage (that actor is
                   timed before and after the sweep; x1 uses the mean step time; with
                   --rounds R the sweep runs R times between R+1 baselines and every
                   column is the median over rounds, each round against its two baselines)
    xK1            speedup over one actor with the same M (K=1, M): the pipeline's own gain,
                   without the cost of cutting the batch into micro-batches
    ceil           the xK1 these CPUs allow: (K concurrent GEMM loops / one) x (1 - ideal),
                   the loops probed as each round starts (a probe of --scaling-s seconds:
                   on a drifting host a point can beat it)
    bubble         idle share of the K stage actors between the first forward and the last
                   weight gradient (grad_sq_norm, where deferred weight GEMMs run) of a
                   step, from Ray's task events (ray.timeline), next to
    ideal          the bubble of the schedule with unit-time ops (schedule.ideal_bubble):
                   GPipe/1F1B 2(K-1)/(3M+2(K-1)) with deferred weight gradients (W is its
                   own work, after the last backward), (K-1)/(M+K-1) without; ZB-H1
                   (K-1)/(3M+K-1) once M >= K
    loss           1 - xK1/K: everything a step loses against K perfectly busy stages
                   (bubble, hand-offs, driver, gradient norm and update)
    stage_ceiling  with --stage-ceiling (JSON and the per-stage header): the x1 the stages
                   allow, run as K plain pinned processes with nothing sent and no schedule
                   (jobs/stage_ceiling.py) in the same round: baseline / slowest x (1 - ideal)

    pace           the slowest stage's busy share of the step's span (median): near
                   1 - ideal, the schedule ran as fast as its slowest CPU let it
    spread         the busiest stage's busy time over the least busy's, per step (median)

Each pipelined point also lists its stages in pipeline order (busy share of the step, mean
ms per call of each method: a slow CPU shows as one slow stage; where its idle time went:
ms per step waiting for a neighbour's output, ms per hop from that output to the call, ms of
Ray's per-call work where the input was already there, ms per step after its last call;
actors/timeline.py), and
every point each stage actor's minor page faults, CPU ms and involuntary context switches
per timed step ("faults_per_step": freed memory handed back to the kernel and touched again
shows here, loomdist.memory; "cpu_ms_per_step" next to the busy time: a stage that was not
preempted but ran slow had a slower CPU; "preempted_per_step"). With a
comma list of schedules (--schedule gpipe,zbh1) every K > 1 point runs under each; K=1 runs
once, under the first. And, per activation size of the sweep, the per-hop overhead: an
activation handed from one trivial actor to another (ms per hop) and the driver's ray.put /
ray.get of it.

Each stage actor reserves `--cpus-per-actor` CPUs (Numba/BLAS threads = max(1, floor)) and,
with a whole number of them, is pinned to its own CPUs (`--pin`, Plan.pin_cpus); when K of
them do not fit, the point shares the cluster's CPUs evenly and is marked `shared`. Actors
keep freed memory (loomdist.memory; LOOMDIST_RETAIN_MEMORY=0 where the workers start: not).
Without --address the script starts a local Ray with num_cpus = the visible cores (no network
needed) and stops it at the end; with --address it joins that cluster.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import ray

from loomdist.actors.hops import hop_overhead
from loomdist.actors.pinning import whole_cpus
from loomdist.actors.pipeline_report import HEAD, MEMORY, row, table
from loomdist.actors.raycluster import cluster_machine_info
from loomdist.actors.timeline import programs, stage_timeline
from loomdist.bench import write_json
from loomdist.driver import DistributedTrainer
from loomdist.errors import ConfigError
from loomdist.plan import PIN_CHOICES, PIN_MODES, Plan, pin_mode
from loomdist.run import build_network
from loomdist.schedule import SCHEDULES, ideal_bubble
from loomdist.train_config import TrainingConfig

# CellActor methods of the schedule's ops, and the flush (deferred weight GEMMs) per step
OPS = {f"task::CellActor.{method}": op for method, op in (
    ("forward", "fwd"), ("forward_loss", "fwd"), ("backward", "bwd"),
    ("weight_grads", "wgt"), ("grad_sq_norm", "flush"))}
BASELINES = {"x1": "one stage actor, whole mini-batch (K=1, M=1), same CPUs per actor",
             "xK1": "one stage actor, the same M micro-batches (K=1, M), same CPUs per actor"}


@dataclass(frozen=True)
class BenchConfig:
    """One sweep; the CLI options map 1:1 onto these fields."""

    stages: tuple = (1, 2, 4, 8)     # K values swept
    micro: tuple = (4, 8, 16, 32)    # M values swept
    cells: int = 8                   # grid cells (one column of `cells` rows)
    layers_per_cell: int = 2         # dense width->width layers per cell
    width: int = 1024                # features of every layer
    batch: int = 256                 # mini-batch rows, split into M micro-batches
    steps: int = 3                   # timed steps per point (the median is reported)
    warmup: int = 1                  # untimed steps per point (actor start-up, JIT caches)
    cpus_per_actor: float = 1.0      # Plan.num_cpus per stage actor; 0 shares all CPUs evenly
    schedule: str = "gpipe"          # gpipe | 1f1b | zbh1, or a comma list of them (swept)
    hops: int = 40                   # hand-offs per per-hop measurement
    scaling_s: float = 0.5           # seconds per GEMM loop of the CPU-scaling probe
    timeout_s: float = 600.0         # DistributedTrainer's limit of every wait
    defer_weight_grads: bool = True  # weight gradients once per mini-batch (False: per micro)
    pin_cpus: str | None = "process"  # Plan.pin_cpus: process | thread | None (the OS places)
    rounds: int = 1                  # sweeps, interleaved with baselines; medians reported
    stage_ceiling: bool = False      # per round: the stages as plain pinned processes (below)

    def __post_init__(self):
        for name in ("cells", "layers_per_cell", "width", "batch", "steps", "hops", "rounds"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"bench_pipeline: {name} must be >= 1 (got "
                                  f"{getattr(self, name)}); pass a positive value")
        if not self.stages or not self.micro or min(self.stages + self.micro) < 1:
            raise ConfigError(f"bench_pipeline: stages {self.stages} and micro {self.micro} "
                              f"need positive values; e.g. --stages 1,2 --micro 4,8")
        if self.pin_cpus is not None and self.pin_cpus not in PIN_MODES:
            raise ConfigError(f"bench_pipeline: pin_cpus must be 'process', 'thread' or None "
                              f"(got {self.pin_cpus!r}); e.g. --pin none")
        bad = [n for n in self.schedules() if n not in SCHEDULES]
        if bad or not self.schedules():
            names = ", ".join(repr(n) for n in bad) or "(none)"
            raise ConfigError(f"bench_pipeline: unknown schedule {names} in "
                              f"{self.schedule!r}; use one of {sorted(SCHEDULES)} or a comma "
                              f"list of them, e.g. --schedule gpipe,zbh1")
        if max(self.stages) > self.cells:
            raise ConfigError(f"bench_pipeline: {max(self.stages)} stages for {self.cells} "
                              f"cells; use --cells >= {max(self.stages)} or fewer stages")
        uneven = [k for k in self.stages if self.cells % k]
        if self.stage_ceiling and uneven:
            raise ConfigError(f"bench_pipeline: --stage-ceiling needs equal stages, and "
                              f"{self.cells} cells do not split into {uneven[0]}; pass "
                              f"--cells as a multiple of every K")
        if max(self.micro) > self.batch:
            raise ConfigError(f"bench_pipeline: {max(self.micro)} micro-batches of a "
                              f"{self.batch}-row batch; use --batch >= {max(self.micro)}")

    def schedules(self) -> list[str]:
        """The swept schedules, in the given order."""
        return [n.strip() for n in self.schedule.split(",") if n.strip()]


QUICK = dict(stages=(1, 2), micro=(4, 8), steps=2, hops=20)


# ------------------------------------------------------------------ the workload
def grid_network(cfg: BenchConfig):
    """A cells x 1 grid of dense (width -> width, leaky_relu) layers."""
    layer = {"type": "dense", "activation": "leaky_relu", "input_height": cfg.width,
             "output_height": cfg.width}
    return build_network({"grid_rows": cfg.cells, "grid_cols": 1, "seed": 0,
                          "layers_per_cell": cfg.layers_per_cell,
                          "layers": [layer] * (cfg.cells * cfg.layers_per_cell)})


def batch_data(cfg: BenchConfig) -> tuple[np.ndarray, np.ndarray]:
    """x, target: (batch, width) float32, seeded."""
    rng = np.random.default_rng(0)
    return tuple(rng.standard_normal((cfg.batch, cfg.width)).astype(np.float32)
                 for _ in range(2))


def cpus_for(cfg: BenchConfig, k: int) -> tuple[float | None, bool]:
    """(Plan.num_cpus for K stage actors, shared?): the requested share while it fits."""
    have = float(ray.cluster_resources().get("CPU", 0))
    if not cfg.cpus_per_actor:
        return None, True
    if k * cfg.cpus_per_actor <= have + 1e-9:
        return float(cfg.cpus_per_actor), False
    return int(have / k * 1e4) / 1e4, True


# ------------------------------------------------------------------ one point
def measure_point(net, cfg: BenchConfig, k: int, m: int, schedule: str | None = None) -> dict:
    """Time `cfg.steps` steps of K stages and M micro-batches under `schedule` (default: the
    first of cfg's); returns one result row."""
    schedule = schedule or cfg.schedules()[0]
    per, shared = cpus_for(cfg, k)
    plan = Plan.balanced(net, k, cost=[1.0] * cfg.cells, num_cpus=per, pin_cpus=cfg.pin_cpus)
    tcfg = TrainingConfig(loss_type="mse", optimizer="sgd", learning_rate=1e-6,
                          batch_size=cfg.batch)
    x, target = batch_data(cfg)
    times, windows = [], []
    with DistributedTrainer(net, tcfg, plan, schedule, m, timeout_s=cfg.timeout_s,
                            defer_weight_grads=cfg.defer_weight_grads) as tr:
        for _ in range(cfg.warmup):
            tr.step(x, target, tcfg.learning_rate)
        use = ray.get([c.usage.remote() for c in tr.cells[0]], timeout=cfg.timeout_s)
        for _ in range(cfg.steps):
            t0, w0 = time.perf_counter(), time.time()
            tr.step(x, target, tcfg.learning_rate)
            times.append(time.perf_counter() - t0)
            windows.append((w0 * 1e6, time.time() * 1e6))
        use = [{key: (b[key] - a[key]) / cfg.steps for key in a} for a, b in zip(use, ray.get(
            [c.usage.remote() for c in tr.cells[0]], timeout=cfg.timeout_s))]
        # before shutdown: killed actors lose their events
        tl = stage_timeline(windows, programs(SCHEDULES[schedule](k, m), k), OPS) or {}
    step_s = statistics.median(times)
    return {"schedule": schedule, "stages": k, "micro": m, "cpus_per_actor": per,
            "shared": shared, "step_ms": step_s * 1e3, "samples_per_s": cfg.batch / step_s,
            "bubble": tl.get("bubble"), "pace": tl.get("pace"), "spread": tl.get("spread"),
            "ideal_bubble": ideal_bubble(schedule, k, m, cfg.defer_weight_grads),
            "per_stage": tl.get("per_stage"), "busy_ms_per_step": tl.get("busy_ms_per_step"),
            "faults_per_step": [u["minor_faults"] for u in use],
            "cpu_ms_per_step": [u["cpu_s"] * 1e3 for u in use],
            "preempted_per_step": [u["preempted"] for u in use]}


# ------------------------------------------------------------------ CPU scaling
@ray.remote
def _gemm_seconds(rows: int, width: int, reps: int, threads: int, chunk: int = -1,
                  per: int = 1, mode: str = "process") -> float:
    """Seconds of `reps` GEMMs on `threads` threads; chunk >= 0: pinned (`mode`) to the CPUs
    pinning.assign_cpus gives the chunk-th of chunk + 1 actors of `per` CPUs on this node
    (not pinned when they do not fit here, e.g. on a multi-node cluster). The worker's
    pinning and threads are restored afterwards."""
    from loomdist.actors.pinning import assign_cpus, pin_process
    from loomdist.threads import current_threads, set_threads
    allowed, before = sorted(os.sched_getaffinity(0)), current_threads()
    mine = assign_cpus([("", allowed)] * (chunk + 1), per, warn=False)[chunk] \
        if chunk >= 0 else None
    pin = mine is not None
    try:
        if pin:
            pin_process(mine, mode)
        set_threads(threads)
        rng = np.random.default_rng(0)
        x, w = (rng.standard_normal(s).astype(np.float32)
                for s in ((rows, width), (width, width)))
        t0 = time.perf_counter()
        for _ in range(reps):
            x @ w
        return time.perf_counter() - t0
    finally:
        if pin:
            pin_process(allowed, mode)
        set_threads(before or None)


@ray.remote(num_cpus=0)
def _retains() -> bool:
    """Whether workers keep freed memory as stage actors do (their environment decides)."""
    from loomdist.memory import retain_freed_memory
    return retain_freed_memory()


def cpu_scaling(cfg: BenchConfig) -> dict:
    """{K: aggregate speedup of K concurrent single-thread GEMM loops over one}: the most a
    K-stage pipeline can gain on these CPUs (shared vCPUs, memory bandwidth, SMT). With
    pin_cpus and whole CPUs per actor the loops are pinned as the stage actors would be."""
    rows = max(1, cfg.batch // max(cfg.micro))
    probe = ray.get(_gemm_seconds.remote(rows, cfg.width, 10, 1), timeout=cfg.timeout_s)
    reps = max(10, int(10 * cfg.scaling_s / max(probe, 1e-6)))
    out = {}
    for k in sorted(set(cfg.stages) | {1}):
        per, shared = cpus_for(cfg, k)
        n = whole_cpus(per or 0) if cfg.pin_cpus and not shared else 0
        refs = [_gemm_seconds.options(num_cpus=per or 1e-4).remote(
            rows, cfg.width, reps, 1, i if n else -1, n or 1, cfg.pin_cpus or "process")
            for i in range(k)]
        out[k] = max(ray.get(refs, timeout=cfg.timeout_s))
    return {k: k * out[1] / t for k, t in out.items()}


# ------------------------------------------------------------------ the sweep
def run(cfg: BenchConfig, log=print) -> dict:
    """The whole sweep on the connected Ray; returns the JSON-ready report.

    The sweep runs `cfg.rounds` times, a one-actor baseline before each round and after the
    last; a round's speed-ups are against the mean of the baselines around it, its ceilings
    against the CPU scaling probed as it starts, and each point reports the median over
    rounds (the per-round values under "rounds"; the probes' under "cpu_scaling_runs")."""
    t0 = time.perf_counter()
    net = grid_network(cfg)
    bases, rounds, scalings = [measure_point(net, cfg, 1, 1)], [], []
    log(f"baseline: 1 actor, 1 micro-batch: {bases[0]['step_ms']:.1f} ms/step")
    for r in range(cfg.rounds):
        scalings.append(scaling := cpu_scaling(cfg))  # the host's ceiling drifts too
        log("cpu scaling (K concurrent GEMM loops): "
            + ", ".join(f"K={k}: {v:.2f}x" for k, v in scaling.items()))
        same_m = ({m: measure_point(net, cfg, 1, m) for m in cfg.micro}
                  if 1 in cfg.stages else {})
        points = []
        for k in cfg.stages:  # K=1 once, by the first schedule: one stage, no bubble to shrink
            for name in cfg.schedules()[:1] if k == 1 else cfg.schedules():
                for m in cfg.micro:
                    points.append(same_m[m] if k == 1 else measure_point(net, cfg, k, m, name))
                    log(row(_score(points[-1], bases[-1], same_m, scaling)))  # provisional x1
        bases.append(measure_point(net, cfg, 1, 1))
        base = _mean_base(bases[-2:])
        plain = plain_stages(cfg, log) if cfg.stage_ceiling else {}
        rounds.append([_score(p, base, same_m, scaling, plain) for p in points])
        log(f"round {r + 1}/{cfg.rounds}: baseline again {bases[-1]['step_ms']:.1f} ms/step; "
            f"the round's x1 uses the mean of the two around it, {base['step_ms']:.1f} ms")
    sizes = [(0, 0)] + [(m, -(-cfg.batch // m)) for m in cfg.micro]  # 0 rows: call only
    hops = hop_overhead(sizes, cfg.width, cfg.hops)
    return {"machine": cluster_machine_info(), "config": asdict(cfg), "baselines": BASELINES,
            "memory": MEMORY[ray.get(_retains.remote(), timeout=cfg.timeout_s)],
            "baseline": _mean_base(bases),
            "cpu_scaling": {k: statistics.median(sc[k] for sc in scalings)
                            for k in scalings[0]},
            "cpu_scaling_runs": scalings,
            "points": [_median_point(ps) for ps in zip(*rounds)], "hops": hops,
            "elapsed_s": time.perf_counter() - t0}


def plain_stages(cfg: BenchConfig, log=print) -> dict:
    """{(K, M): each stage's ms per step} for every pipelined point of the sweep, run as K
    plain processes on this machine (jobs/stage_ceiling.py: pinned as the stage actors are,
    all started together, nothing sent, no schedule, no Ray). Single-node runs only."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:  # loaded by path (tests), not run as a script
        sys.path.insert(0, here)
    import stage_ceiling as sc

    out = {}
    for k in (k for k in cfg.stages if k > 1):
        jobs = sc.stage_jobs(cfg, k)
        for m in cfg.micro:
            out[k, m] = [statistics.median(g["step_ms"]) for g in sc.run_together(cfg, jobs, m)]
            log(f"stages as plain processes, K={k} M={m}: ms/step "
                + ", ".join(f"{v:.1f}" for v in out[k, m]))
    return out


def _score(p: dict, base: dict, same_m: dict, scaling: dict, plain: dict | None = None) -> dict:
    """Point p with its speed-ups (x1 against `base`, xK1), efficiency loss and ceilings;
    with `plain` (plain_stages), the x1 its stages allow: base / slowest plain stage x
    (1 - ideal bubble)."""
    k, m = p["stages"], p["micro"]
    p = dict(p, speedup=base["step_ms"] / p["step_ms"])
    if m in same_m:
        p["speedup_same_m"] = same_m[m]["step_ms"] / p["step_ms"]
        p["efficiency_loss"] = 1.0 - p["speedup_same_m"] / k
    p["cpu_scaling"] = scaling[k]  # the pipeline gain these CPUs allow: x (1 - ideal)
    p["ceiling"] = scaling[k] * (1.0 - p["ideal_bubble"])
    if plain and (k, m) in plain:
        p["plain_stage_ms"] = plain[k, m]
        p["stage_ceiling"] = base["step_ms"] / max(plain[k, m]) * (1.0 - p["ideal_bubble"])
    return p


def _mean_base(bases: list) -> dict:
    """One-actor baselines timed around the sweep's rounds (the host drifts: on a shared
    machine one actor's step time moved by 15-30% between runs) as one: mean step time,
    with the first and last (step_ms_before/after) and every one (step_ms_runs)."""
    ms = [b["step_ms"] for b in bases]
    mean = statistics.mean(ms)
    return dict(bases[0], step_ms=mean, samples_per_s=bases[0]["samples_per_s"] * ms[0] / mean,
                step_ms_before=ms[0], step_ms_after=ms[-1], step_ms_runs=ms)


MEDIAN_KEYS = ("step_ms", "samples_per_s", "bubble", "pace", "spread", "speedup",
               "speedup_same_m", "efficiency_loss", "cpu_scaling", "ceiling", "stage_ceiling")


def _median_point(ps: tuple) -> dict:
    """One point over rounds: the median of every measured value; the per-stage breakdown
    of the round whose step time is the median (lower median for an even count); the
    rounds' own values under "rounds" when there are several."""
    mid = sorted(ps, key=lambda p: p["step_ms"])[(len(ps) - 1) // 2]
    out = dict(mid)
    for key in MEDIAN_KEYS:
        vals = [p[key] for p in ps if p.get(key) is not None]
        if vals:
            out[key] = statistics.median(vals)
    if len(ps) > 1:
        out["rounds"] = [{k: p.get(k) for k in MEDIAN_KEYS} for p in ps]
    return out


OPTIONS = (("cells", int, "grid cells"), ("layers_per_cell", int, "dense layers per cell"),
           ("width", int, "features of every layer"), ("batch", int, "mini-batch rows"),
           ("steps", int, "timed steps per point"), ("warmup", int, "untimed steps per point"),
           ("hops", int, "hand-offs per per-hop measurement"),
           ("rounds", int, "sweeps, each between two baseline runs; points report medians"),
           ("cpus_per_actor", float, "CPUs per stage actor, 0 = share all evenly"),
           ("scaling_s", float, "seconds per loop of the CPU-scaling probe"),
           ("schedule", str, "gpipe, 1f1b, zbh1 or a comma list of them (swept)"),
           ("timeout_s", float, "limit of every wait for actors"))


def parse_args(argv: list[str]) -> tuple[BenchConfig, argparse.Namespace]:
    def ints(s):
        return tuple(int(v) for v in s.split(",") if v.strip())
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="stages 1,2, micro-batches 4,8, 2 timed steps (fits 2 cores)")
    ap.add_argument("--stages", type=ints, help="comma list of K (default 1,2,4,8)")
    ap.add_argument("--micro", type=ints, help="comma list of M (default 4,8,16,32)")
    for name, kind, text in OPTIONS:
        ap.add_argument("--" + name.replace("_", "-"), type=kind,
                        help=f"{text} (default {BenchConfig.__dataclass_fields__[name].default})")
    ap.add_argument("--no-defer", dest="defer_weight_grads", action="store_false",
                    default=None, help="weight gradients per micro-batch, accumulated "
                    "(default: deferred to one GEMM per mini-batch)")
    ap.add_argument("--pin", dest="pin_cpus", choices=PIN_CHOICES,
                    help="Plan.pin_cpus of the stage actors: all their threads (default: "
                    "process) or their compute thread on their own CPUs, or none (the OS "
                    "places them)")
    ap.add_argument("--stage-ceiling", action="store_true", default=None,
                    help="per round, also run each pipelined point's stages as plain pinned "
                    "processes (jobs/stage_ceiling.py) and report the x1 they allow; "
                    "single-node only")
    ap.add_argument("--address", help="join this Ray cluster (default: start a local one)")
    ap.add_argument("--num-cpus", type=int, help="local Ray's CPUs (default: visible cores)")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args(argv)
    given = {k: v for k, v in vars(args).items()
             if v is not None and k in BenchConfig.__dataclass_fields__}
    if "pin_cpus" in given:
        given["pin_cpus"] = pin_mode(given["pin_cpus"])
    if args.stage_ceiling and args.address:
        ap.error("--stage-ceiling runs the stages on this machine; drop --address")
    try:
        return replace(BenchConfig(**QUICK) if args.quick else BenchConfig(), **given), args
    except ConfigError as e:
        ap.error(str(e))


def main(argv: list[str] | None = None) -> dict:
    cfg, args = parse_args(sys.argv[1:] if argv is None else argv)
    started = not ray.is_initialized()
    if started and args.address:
        ray.init(address=args.address, log_to_driver=False)
    elif started:
        ray.init(address="local", num_cpus=args.num_cpus or len(os.sched_getaffinity(0)),
                 include_dashboard=False, log_to_driver=False)
    try:
        print(HEAD, flush=True)
        report = run(cfg, log=lambda s: print(s, flush=True))
    finally:
        if started:
            ray.shutdown()
    print("\n" + table(report))
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
