"""The run directory's evaluation log: per-epoch validation into Parquet, plots, report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import Dataset
from .train_config import TrainingConfig, TrainingResult


class RunLog:
    """Evaluates the test split at LOOM's `evaluate_every_n` epochs (and the last one) and
    appends predictions/buckets/history tables to the run directory."""

    def __init__(self, run_dir: Path, run_id: str, net, test: Dataset, cfg: TrainingConfig):
        self.dir, self.run, self.net, self.test, self.cfg = run_dir, run_id, net, test, cfg
        self.rows: list = []
        self.evaluated: dict = {}  # epoch -> validation extras (a replay reuses them)
        self.last_accuracy: float | None = None
        self.last_score = 0.0

    def on_epoch(self, record: dict) -> dict:
        from .eval import tables
        epoch, every = record["epoch"], self.cfg.evaluate_every_n
        last = epoch + 1 == self.cfg.epochs
        extra: dict = {}
        # a Ray restart replays steps: an epoch already logged is replaced, not duplicated
        self.rows = [r for r in self.rows if r["epoch"] != epoch]
        if epoch in self.evaluated:
            extra = dict(self.evaluated[epoch])
        elif last or (every and (epoch + 1) % every == 0):
            metrics, acc = evaluate(self.net, self.test)
            step = int(record["step"])
            tables.append_parquet(self.dir / "predictions.parquet",
                                  tables.predictions_table(metrics, self.run, epoch, step))
            tables.append_parquet(self.dir / "buckets.parquet",
                                  tables.buckets_table(metrics, self.run, epoch, step))
            self.last_accuracy, self.last_score = acc, metrics.score
            extra = {"val_score": metrics.score, "val_accuracy": acc, "_metrics": metrics}
            self.evaluated[epoch] = dict(extra)
        self.rows.append({**record, **{k: v for k, v in extra.items() if k[0] != "_"}})
        tables.write_parquet(self.dir / "history.parquet",
                             tables.history_table(self.rows, self.run))
        return extra

    def finish(self, result: TrainingResult) -> None:
        """Rewrite the full history (a resumed run includes the epochs before the resume)."""
        from .eval import tables
        tables.write_parquet(self.dir / "history.parquet",
                             tables.history_table(result.history, self.run))
        write_plots(self.dir)


def evaluate(net, data: Dataset):
    """(LOOM DeviationMetrics, accuracy or None) of `net` on `data`."""
    from .eval import evaluate_network
    if data.is_classification:
        metrics = evaluate_network(net, data.x, data.y.astype(float))
        acc = float(np.mean([r.actual == r.expected for r in metrics.results]))
        return metrics, acc
    return evaluate_network(net, data.x, data.y[:, 0].astype(float)), None


def write_plots(run_dir: Path) -> list[Path]:
    """loss.png, deviation.png and buckets_heatmap.png under run_dir/plots."""
    from .eval import plots
    out = run_dir / "plots"
    made = [plots.plot_loss(run_dir / "history.parquet", out / "loss.png")]
    if (run_dir / "predictions.parquet").is_file():
        made.append(plots.plot_deviation_histogram(run_dir / "predictions.parquet",
                                                   out / "deviation.png"))
        made.append(plots.plot_bucket_heatmap(run_dir / "buckets.parquet",
                                              out / "buckets_heatmap.png"))
    return made


def report(run_dir: Path, console) -> None:
    """Print the history and last evaluation of a run; (re)write its plots."""
    import pyarrow.parquet as pq
    from rich.table import Table
    hist = pq.read_table(run_dir / "history.parquet").to_pylist()
    table = Table(title=f"run {run_dir.name}: {len(hist)} epochs")
    for col in ("epoch", "step", "loss", "lr", "grad norm", "val score", "val acc", "time s"):
        table.add_column(col, justify="right")
    for r in hist:
        table.add_row(str(r["epoch"]), str(r["step"]), f"{r['loss']:.6f}", f"{r['lr']:.2e}",
                      f"{r['grad_norm']:.3f}", _opt(r.get("val_score"), "{:.2f}"),
                      _opt(r.get("val_accuracy"), "{:.2%}"), f"{r['time_s']:.2f}")
    console.print(table)
    for p in write_plots(run_dir):
        console.print(f"plot: {p}")


def _opt(v, fmt: str) -> str:
    return "" if v is None else fmt.format(v)
