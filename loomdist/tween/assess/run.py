"""`loomdist tween assess`: run one of LOOM's Tests 16-19, print LOOM-layout tables, write
Parquet per window/run, a PNG of accuracy over time and a side-by-side with LOOM's numbers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ...bench import write_json
from ...errors import ConfigError
from ..modes import ADAPT_MODES, TEST16_MODES, mode_name
from . import published as pub
from . import tables, text
from .adapt import PROTOCOLS, run_config, run_test17
from .clock import CLOCKS, LOOM_T17_OUTPUTS_PER_SEC, make_clock
from .t16 import DEFAULT_OPS, determine_best, run_mode

ADAPT_NETS = ("Dense", "Conv2D", "RNN", "LSTM", "Attn")
T16_NETS = ("Dense", "Conv2D", "RNN", "LSTM", "Attn", "Norm", "SwiGLU")
DEPTHS = {16: (3, 5, 9, 15, 20), 18: (3, 5, 9), 19: (3, 5, 9)}


@dataclass(frozen=True)
class AssessConfig:
    """Options of one assessment run (the CLI maps 1:1 onto these)."""

    test: int
    clock: str = "deterministic"
    seed: int = 0
    out: str | None = None
    outputs_per_sec: int = LOOM_T17_OUTPUTS_PER_SEC  # deterministic clock rate
    modes: tuple = ()          # default: the test's modes
    nets: tuple = ()           # Tests 16/18/19; default: LOOM's list
    depths: tuple = ()
    runs: int = 10             # Test 19 seeds per (config, mode); LOOM ran 100
    ops: int = DEFAULT_OPS     # Test 16 deterministic budget per mode

    def __post_init__(self):
        if self.test not in (16, 17, 18, 19):
            raise ConfigError(f"assess: test must be 16, 17, 18 or 19 (got {self.test!r})")
        if self.clock not in CLOCKS:
            raise ConfigError(f"assess: clock must be one of {CLOCKS} (got {self.clock!r})")
        if self.runs < 1 or self.ops < 1:
            raise ConfigError(f"assess: runs and ops must be >= 1 (got {self.runs}, "
                              f"{self.ops})")
        for m in self.modes:
            mode_name(m)

    def mode_list(self) -> tuple:
        base = TEST16_MODES if self.test == 16 else ADAPT_MODES
        return tuple(mode_name(m) for m in self.modes) or base

    def grid(self) -> list:
        nets = self.nets or (T16_NETS if self.test == 16 else ADAPT_NETS)
        return [(n, d) for n in nets for d in (self.depths or DEPTHS[self.test])]


def assess(cfg: AssessConfig, log=print) -> dict:
    """Run the test; returns {"tables": {...}, "summary": ...} and writes files under out."""
    runner = {16: _test16, 17: _test17, 18: _test18, 19: _test19}[cfg.test]
    result = runner(cfg, log)
    if cfg.out:
        out = Path(cfg.out)
        tables.write_tables(out, result["tables"])
        write_json({"config": asdict(cfg), **result["summary"]}, out / "summary.json")
        log(f"wrote {out}/(*.parquet, summary.json, accuracy.png)")
        if result.get("plot"):
            result["plot"](out / "accuracy.png")
    return result


def _clock(cfg):
    return lambda: make_clock(cfg.clock, cfg.outputs_per_sec)


def _test17(cfg, log) -> dict:
    runs = run_test17(_clock(cfg), cfg.seed, cfg.mode_list())
    _print(log, text.timeline("Test 17 — ACCURACY OVER TIME (per 1-second window) [0-5s CHASE"
                              " | 5-10s AVOID! | 10-15s CHASE]", runs, 15))
    _print(log, text.adaptation_summary("Test 17 — ADAPTATION SUMMARY", runs, True))
    rows = [_row(17, "Dense-6L", r.mode_name, f"window {w + 1}", r.accuracy[w], None,
                 pub.TEST17_WINDOWS.get(r.mode_name, [None] * 15)[w], None, 1)
            for r in runs for w in range(15)]
    rows += [_row(17, "Dense-6L", r.mode_name, "avg_accuracy", r.avg_accuracy(True), None,
                  _mean(pub.TEST17_WINDOWS.get(r.mode_name)), None, 1) for r in runs]
    _print(log, text.comparison("Test 17 vs LOOM (docs/step_tween_assessment.md, spec 5.3)",
                                [r for r in rows if r["metric"] == "avg_accuracy"]))
    return _adapt_result(17, runs, rows, "Test 17", (5, 10))


def _test18(cfg, log) -> dict:
    runs = [run_config(n, d, m, PROTOCOLS[18], _clock(cfg)(), cfg.seed)
            for n, d in cfg.grid() for m in cfg.mode_list()]
    by_config = _group(runs)
    for config, rs in by_config.items():
        _print(log, text.timeline(f"{config} — ACCURACY OVER TIME (per 1-second window)", rs,
                                  10))
        _print(log, text.adaptation_summary(f"{config} — ADAPTATION SUMMARY", rs, False))
    rows = []
    for config, rs in by_config.items():
        loom = pub.TEST18_STC_VS_BEST.get(config)
        for r in rs:
            ref = None
            if loom is not None:
                ref = loom[0] if r.mode_name == "StepTweenChain" else (
                    loom[1] if r.mode_name == loom[2] else None)
            rows.append(_row(18, config, r.mode_name, "avg_accuracy", r.avg_accuracy(False),
                             None, ref, None, 1))
    _print(log, text.comparison("Test 18 vs LOOM (spec 5.4: STC and LOOM's best other mode)",
                                rows))
    return _adapt_result(18, runs, rows, "Test 18", (3.333, 6.667))


def _test19(cfg, log) -> dict:
    runs = [run_config(n, d, m, PROTOCOLS[19], _clock(cfg)(), cfg.seed + k)
            for n, d in cfg.grid() for m in cfg.mode_list() for k in range(cfg.runs)]
    stats, rows = sparta_stats(runs)
    _print(log, text.sparta_table(stats))
    _print(log, text.comparison("Test 19 SPARTA vs LOOM (spec 5.5, mean ± population std)",
                                rows))
    res = _adapt_result(19, runs, rows, "Test 19 SPARTA (mean over seeds)", (3.333, 6.667))
    res["summary"]["stats"] = {c: {m: list(v) for m, v in ms.items()}
                               for c, ms in stats.items()}
    return res


def sparta_stats(runs) -> tuple[dict, list]:
    """Per (config, mode): (mean, population std) of AvgAccuracy, and comparison rows."""
    stats: dict = {}
    rows = []
    for config, rs in _group(runs).items():
        for mode in dict.fromkeys(r.mode_name for r in rs):
            accs = np.array([r.avg_accuracy(False) for r in rs if r.mode_name == mode])
            stats.setdefault(config, {})[mode] = (float(accs.mean()), float(accs.std()))
            loom = pub.TEST19_MEAN_STD.get(config, {}).get(mode, (None, None))
            rows.append(_row(19, config, mode, "avg_accuracy", float(accs.mean()),
                             float(accs.std()), loom[0], loom[1], int(accs.size)))
    return stats, rows


def _test16(cfg, log) -> dict:
    results, rows = [], []
    for n, d in cfg.grid():
        rs = [run_mode(n, d, m, cfg.seed, cfg.clock, cfg.ops) for m in cfg.mode_list()]
        _print(log, text.test16_summary(f"{n}-{d}L — best: {determine_best(rs)}", rs))
        loom = pub.published_test16(f"{n}-{d}L")
        rows += [_row(16, r.config, r.mode, "accuracy", r.accuracy, None, loom.get(r.mode),
                      None, 1) for r in rs]
        results += rs
    _print(log, text.comparison("Test 16 vs LOOM (spec 5.2)", rows))
    summary = {"results": [asdict(r) for r in results]}
    return {"tables": {"test16": tables.test16_table(results),
                       "compare": tables.compare_table(rows)}, "summary": summary}


def _adapt_result(test, runs, rows, title, changes) -> dict:
    over_all = PROTOCOLS[test].avg_over_all_windows
    summary = {"runs": [{"config": r.model_name, "mode": r.mode_name, "seed": r.seed,
                         "clock": r.clock, "windows": r.accuracy.tolist(),
                         "avg_accuracy": r.avg_accuracy(over_all),
                         "total_outputs": r.total_outputs, "task_changes": r.task_changes,
                         "measured_outputs_per_sec": r.outputs_per_sec} for r in runs]}
    return {"tables": {"windows": tables.windows_table(test, runs),
                       "runs": tables.runs_table(test, runs, over_all),
                       "compare": tables.compare_table(rows)},
            "summary": summary,
            "plot": lambda p: tables.plot_accuracy(_group(runs), p, title, changes)}


def _group(runs) -> dict:
    out: dict = {}
    for r in runs:
        out.setdefault(r.model_name, []).append(r)
    return out


def _row(test, config, mode, metric, ours, ours_std, loom, loom_std, n) -> dict:
    return {"test": test, "config": config, "mode": mode, "metric": metric,
            "ours": None if ours is None else float(ours), "ours_std": ours_std,
            "loom": None if loom is None else float(loom), "loom_std": loom_std, "runs": n}


def _mean(v):
    return None if v is None else float(np.mean(v))


def _print(log, lines) -> None:
    for line in lines:
        log(line)
