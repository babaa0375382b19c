"""Arrow tables of the assessment harness (one module-level schema per table) and its PNG.

    windows.parquet   one row per (run, window): LOOM's TimeWindow fields
    runs.parquet      one row per run: AdaptationResult summary + throughput
    test16.parquet    one row per (network, mode): Test 16's TrainingMetrics
    compare.parquet   one row per (config, mode, metric): ours next to LOOM's published value
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from ...eval.tables import write_parquet

_KEY = [pa.field("test", pa.int32(), nullable=False), pa.field("config", pa.string(), False),
        pa.field("mode", pa.string(), False), pa.field("seed", pa.int64(), False),
        pa.field("clock", pa.string(), False)]

WINDOWS_SCHEMA = pa.schema(_KEY + [
    pa.field("window_index", pa.int32(), False), pa.field("duration_s", pa.float64(), False),
    pa.field("outputs", pa.int64(), False), pa.field("correct", pa.int64(), False),
    pa.field("accuracy", pa.float64(), False),         # percent
    pa.field("outputs_per_sec", pa.int64(), False),    # LOOM: = outputs of a 1 s window
    pa.field("current_task", pa.string(), False), pa.field("task_id", pa.int32(), False),
])

RUNS_SCHEMA = pa.schema(_KEY + [
    pa.field("total_outputs", pa.int64(), False), pa.field("avg_accuracy", pa.float64(), False),
    pa.field("change1_pre", pa.float64(), True), pa.field("change1_post", pa.float64(), True),
    pa.field("change2_pre", pa.float64(), True), pa.field("change2_post", pa.float64(), True),
    pa.field("recovery1_windows", pa.int32(), True),
    pa.field("recovery2_windows", pa.int32(), True),
    pa.field("wall_s", pa.float64(), False),
    pa.field("measured_outputs_per_sec", pa.float64(), False),
])

TEST16_SCHEMA = pa.schema(_KEY + [
    pa.field("accuracy", pa.float64(), False), pa.field("loss", pa.float64(), True),
    pa.field("steps", pa.int64(), False), pa.field("time_total_s", pa.float64(), False),
    pa.field("time_to_target_s", pa.float64(), True),  # null: 90 % never reached
    pa.field("milestones_s", pa.list_(pa.float64()), False),  # 10 %..100 %, NaN = not reached
])

COMPARE_SCHEMA = pa.schema([
    pa.field("test", pa.int32(), False), pa.field("config", pa.string(), False),
    pa.field("mode", pa.string(), False), pa.field("metric", pa.string(), False),
    pa.field("ours", pa.float64(), True), pa.field("ours_std", pa.float64(), True),
    pa.field("loom", pa.float64(), True), pa.field("loom_std", pa.float64(), True),
    pa.field("runs", pa.int64(), False),
])


def _key(test, run) -> dict:
    return {"test": test, "config": run.model_name, "mode": run.mode_name, "seed": run.seed,
            "clock": run.clock}


def windows_table(test: int, runs, duration_s: float = 1.0) -> pa.Table:
    rows = []
    for r in runs:
        acc = r.accuracy
        for w in range(r.outputs.size):
            rows.append({**_key(test, r), "window_index": w, "duration_s": duration_s,
                         "outputs": int(r.outputs[w]), "correct": int(r.correct[w]),
                         "accuracy": float(acc[w]), "outputs_per_sec": int(r.outputs[w]),
                         "current_task": "chase" if r.tasks[w] == 0 else "AVOID!",
                         "task_id": int(r.tasks[w])})
    return pa.Table.from_pylist(rows, schema=WINDOWS_SCHEMA)


def _change(r, k: int, field: str):
    return r.task_changes[k][field] if len(r.task_changes) > k else None


def runs_table(test: int, runs, over_all: bool) -> pa.Table:
    rows = [{**_key(test, r), "total_outputs": r.total_outputs,
             "avg_accuracy": r.avg_accuracy(over_all),
             "change1_pre": _change(r, 0, "pre_accuracy"),
             "change1_post": _change(r, 0, "post_accuracy"),
             "change2_pre": _change(r, 1, "pre_accuracy"),
             "change2_post": _change(r, 1, "post_accuracy"),
             "recovery1_windows": _change(r, 0, "recovery_windows"),
             "recovery2_windows": _change(r, 1, "recovery_windows"),
             "wall_s": r.wall_s, "measured_outputs_per_sec": r.outputs_per_sec} for r in runs]
    return pa.Table.from_pylist(rows, schema=RUNS_SCHEMA)


def test16_table(results) -> pa.Table:
    rows = [{"test": 16, "config": r.config, "mode": r.mode, "seed": r.seed, "clock": r.clock,
             "accuracy": r.accuracy, "loss": r.loss, "steps": r.steps,
             "time_total_s": r.time_total_s, "time_to_target_s": r.time_to_target_s,
             "milestones_s": [math.nan if v is None else v for v in r.milestones_s]}
            for r in results]
    return pa.Table.from_pylist(rows, schema=TEST16_SCHEMA)


def compare_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=COMPARE_SCHEMA)


def write_tables(out: Path, tables: dict) -> list[Path]:
    """Write {name: table} as out/<name>.parquet (atomically); returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    return [write_parquet(out / f"{name}.parquet", t) for name, t in tables.items()]


def plot_accuracy(runs_by_config: dict, path, title: str, changes=()) -> Path:
    """PNG: per-window accuracy over time, one panel per config, one line per mode (mean over
    seeds when a config has several runs of a mode)."""
    from ...eval.plots import _figure, _save
    n = len(runs_by_config)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, ax0 = _figure((4.2 * cols, 3.0 * rows))
    fig.delaxes(ax0)
    for k, (config, runs) in enumerate(runs_by_config.items()):
        ax = fig.add_subplot(rows, cols, k + 1)
        for mode, accs in _by_mode(runs).items():
            mean = np.mean(accs, axis=0)
            ax.plot(np.arange(1, mean.size + 1), mean, marker="o", ms=3, label=mode)
        for at in changes:
            ax.axvline(at + 0.5, color="grey", ls="--", lw=0.8)
        ax.set(title=config, xlabel="window (s)", ylabel="accuracy %", ylim=(-2, 102))
        ax.legend(fontsize=6)
    fig.suptitle(title)
    return _save(fig, path)


def _by_mode(runs) -> dict:
    out: dict = {}
    for r in runs:
        out.setdefault(r.mode_name, []).append(r.accuracy)
    return out
