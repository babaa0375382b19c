"""Step-mode benchmark: ticks/s of StepGrid (one StepCellActor per cell) vs local StepState.

    python jobs/bench_step.py --quick --json bench-results/step.json
    python jobs/bench_step.py --ticks 20000 --json bench-results/step.json   # 16-core host

The network is a 2x2 grid (4 cells, so 4 actors) of `--layers-per-cell` dense width->width
layers (leaky_relu), batch 1, LOOM-sized by default (width 32). Reported:

    local_ticks_per_s       StepState.step_forward in this process (a new input every tick)
    grid_ticks_per_s        StepGrid.run: the driver submits every actor's tick through
                            ObjectRefs, at most `--window` ticks in flight, one wait per half
                            window, all outputs fetched at the end
    grid_train_ticks_per_s  StepGrid.train_tick (Step+BP: tick, backward actor to actor, SGD
                            on every actor), waited for once at the end
    grid_tween_ticks_per_s  StepGrid.tween_tick (StepTweenChain: tick, then TweenStep across
                            the actors), waited for once at the end

With --t17-bp N the script instead times N local Step+BP outputs (tween's StepBP mode as
`loomdist tween assess` runs it: step tick, grad = out - one-hot target, step_backward with
gradient scaling, ApplyGradients) on LOOM's Test 17 network (Dense 8-32-64-64-64-32-4),
without Ray: `step_bp_outputs_per_s`.

Without --address the script starts a local Ray with num_cpus = the visible cores and stops
it at the end; with --address it joins that cluster.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import ray

from loomdist.actors.raycluster import cluster_machine_info, connect
from loomdist.actors.step import StepGrid
from loomdist.bench import machine_info, write_json
from loomdist.errors import ConfigError
from loomdist.run import build_network
from loomdist.tween import StepState


@dataclass(frozen=True)
class BenchConfig:
    """One run; the CLI options map 1:1 onto these fields."""

    ticks: int = 5000          # timed ticks of step mode (local and grid)
    train_ticks: int = 1000    # timed Step+BP and StepTweenChain ticks on the grid (0: skip)
    warmup: int = 200          # untimed ticks first (actor start, JIT caches)
    width: int = 32            # features of every dense layer
    layers_per_cell: int = 2   # dense layers per cell (4 cells)
    window: int = 256          # most ticks in flight on the grid
    loom_residuals: bool = True
    timeout_s: float = 600.0   # StepGrid's limit of every wait

    def __post_init__(self):
        for name in ("ticks", "warmup", "width", "layers_per_cell", "window"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"bench_step: {name} must be >= 1 (got "
                                  f"{getattr(self, name)}); pass a positive value")
        if self.train_ticks < 0:
            raise ConfigError(f"bench_step: train_ticks must be >= 0 (got "
                              f"{self.train_ticks}); pass 0 to skip training")


QUICK = dict(ticks=300, train_ticks=60, warmup=30, window=64)


def grid_network(cfg: BenchConfig):
    """2x2 grid of dense width->width (leaky_relu) layers, seeded."""
    layer = {"type": "dense", "activation": "leaky_relu", "input_height": cfg.width,
             "output_height": cfg.width}
    return build_network({"grid_rows": 2, "grid_cols": 2, "seed": 0,
                          "layers_per_cell": cfg.layers_per_cell,
                          "layers": [layer] * (4 * cfg.layers_per_cell)})


def samples(cfg: BenchConfig, n: int) -> list:
    rng = np.random.default_rng(0)
    return list(rng.standard_normal((n, cfg.width)).astype(np.float32))


def local_rate(net, cfg: BenchConfig) -> float:
    state = StepState(net, cfg.loom_residuals)
    xs = samples(cfg, cfg.ticks + cfg.warmup)
    for x in xs[:cfg.warmup]:
        state.set_input(x)
        state.step_forward()
    t0 = time.perf_counter()
    for x in xs[cfg.warmup:]:
        state.set_input(x)
        state.step_forward()
    return cfg.ticks / (time.perf_counter() - t0)


def t17_bp_report(outputs: int, warmup: int = 200) -> dict:
    """Local Step+BP outputs/s on the Test 17 network (no Ray), JSON-ready."""
    from loomdist.tween.assess.nets import t17_net
    from loomdist.tween.modes import make_mode
    if outputs < 1:
        raise ConfigError(f"bench_step: --t17-bp must be >= 1 (got {outputs}); pass the "
                          f"number of timed Step+BP outputs")
    mode = make_mode("StepBP", t17_net(np.random.default_rng(17)), 4, "adapt")
    xs = np.random.default_rng(0).random((outputs + warmup, 8)).astype(np.float32)
    for i, x in enumerate(xs[:warmup]):
        mode.output(x)
        mode.learn(x, i % 4)
    t0, c0 = time.perf_counter(), time.process_time()
    for i, x in enumerate(xs[warmup:]):
        mode.output(x)
        mode.learn(x, i % 4)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"config": {"t17_bp_outputs": outputs, "warmup": warmup}, "wall_s": wall,
            "cpu_s": cpu, "step_bp_outputs_per_s": outputs / wall,
            "step_bp_outputs_per_cpu_s": outputs / cpu if cpu > 0 else None}


def grid_rates(net, cfg: BenchConfig) -> dict:
    grid = StepGrid(net, loom_residuals=cfg.loom_residuals, timeout_s=cfg.timeout_s)
    try:
        grid.run(samples(cfg, cfg.warmup), window=cfg.window)
        xs = samples(cfg, cfg.ticks)
        t0 = time.perf_counter()
        outs = grid.run(xs, window=cfg.window)
        rate = len(outs) / (time.perf_counter() - t0)
        out = {"actors": len(grid.actors), "grid_ticks_per_s": rate}
        if cfg.train_ticks:
            out["grid_train_ticks_per_s"] = _train_rate(grid, cfg, "train")
            out["grid_tween_ticks_per_s"] = _train_rate(grid, cfg, "tween")
        return out
    finally:
        grid.shutdown()


def _train_rate(grid, cfg: BenchConfig, kind: str) -> float:
    _train_ticks(grid, cfg, kind, samples(cfg, min(cfg.warmup, 20)))  # JIT on every actor
    xs = samples(cfg, cfg.train_ticks)
    t0 = time.perf_counter()
    _train_ticks(grid, cfg, kind, xs)
    return cfg.train_ticks / (time.perf_counter() - t0)


def _train_ticks(grid, cfg: BenchConfig, kind: str, xs: list) -> None:
    target = np.zeros(cfg.width, np.float32)
    if kind == "train":
        refs = [grid.train_tick(x, target, 1e-4) for x in xs]
    else:
        refs = [grid.tween_tick(x, i % cfg.width, cfg.width, 0.02)[0] for i, x in enumerate(xs)]
    grid.transport.get(refs, f"bench_step {kind} ticks")
    grid.sync()


def run(cfg: BenchConfig, log=print) -> dict:
    """Local and grid rates on the connected Ray; returns the JSON-ready report."""
    net = grid_network(cfg)
    report = {"machine": cluster_machine_info(), "config": asdict(cfg),
              "layers": net.total_layers, "local_ticks_per_s": local_rate(net, cfg)}
    log(f"local StepState: {report['local_ticks_per_s']:.0f} ticks/s")
    report.update(grid_rates(net, cfg))
    log(f"StepGrid ({report['actors']} actors): {report['grid_ticks_per_s']:.0f} ticks/s"
        + (f", Step+BP {report['grid_train_ticks_per_s']:.0f} ticks/s, StepTweenChain "
           f"{report['grid_tween_ticks_per_s']:.0f} ticks/s"
           if "grid_train_ticks_per_s" in report else ""))
    return report


def _grid_main(cfg: BenchConfig, args) -> dict:
    started = connect(args.address, args.num_cpus)
    try:
        return run(cfg, log=lambda s: print(s, flush=True))
    finally:
        if started:
            ray.shutdown()


HELP = {"ticks": "timed ticks", "train_ticks": "timed Step+BP / StepTweenChain ticks, 0 skips",
        "warmup": "untimed ticks first", "width": "features of every layer",
        "layers_per_cell": "dense layers per cell", "window": "most ticks in flight",
        "timeout_s": "limit of every wait for actors"}


def parse_args(argv: list[str]) -> tuple[BenchConfig, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="300 ticks, 60 training ticks")
    defaults = {f.name: f.default for f in fields(BenchConfig)}
    for name, text in HELP.items():
        ap.add_argument("--" + name.replace("_", "-"), type=type(defaults[name]),
                        help=f"{text} (default {defaults[name]})")
    ap.add_argument("--engine-residuals", action="store_true",
                    help="loom_residuals=False (the engine's cross-layer residual)")
    ap.add_argument("--address", help="join this Ray cluster (default: start a local one)")
    ap.add_argument("--num-cpus", type=int, help="local Ray's CPUs (default: visible cores)")
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--t17-bp", type=int, metavar="N",
                    help="only time N local Step+BP outputs on the Test 17 network (no Ray)")
    args = ap.parse_args(argv)
    given = {k: getattr(args, k) for k in HELP if getattr(args, k) is not None}
    try:
        base = BenchConfig(**QUICK) if args.quick else BenchConfig()
        return replace(base, loom_residuals=not args.engine_residuals, **given), args
    except ConfigError as e:
        ap.error(str(e))


def main(argv: list[str] | None = None) -> dict:
    cfg, args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.t17_bp is not None:
        report = t17_bp_report(args.t17_bp)
        report["machine"] = machine_info()
        print(f"local Step+BP (Test 17 network): {report['step_bp_outputs_per_s']:.0f} "
              f"outputs/s", flush=True)
    else:
        report = _grid_main(cfg, args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
