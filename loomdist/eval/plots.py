"""PNG plots of a run: loss curves, the deviation distribution, the per-epoch bucket heatmap.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend
switch), rendered to memory and written atomically; each function returns the PNG path.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, DataError
from ..io.loom_json import write_atomic
from .metrics import BUCKET_ORDER, BUCKETS, DeviationMetrics
from .tables import BUCKETS_SCHEMA, HISTORY_SCHEMA, PREDICTIONS_SCHEMA, read_parquet

_DPI = 100
_EDGES = [lo for _, lo, _ in BUCKETS]  # 0, 10, ..., 100: LOOM's bucket bounds


def plot_loss(history, path) -> Path:
    """Loss (and validation score, where recorded) per step, one line per run.

    Args:
        history: a HISTORY_SCHEMA table or the path of history.parquet.
        path: the PNG to write.
    Raises DataError: no rows, or not a history table.
    """
    t = _table(history, HISTORY_SCHEMA, "plot_loss")
    fig, ax = _figure((7, 4))
    for run in _unique(t, "run"):
        r = t.filter(pc.equal(t["run"], run))
        ax.plot(r["step"].to_numpy(), r["loss"].to_numpy(), marker=".", label=f"{run} loss")
    ax.set(xlabel="step", ylabel="loss", title="training loss")
    if pc.sum(pc.is_valid(t["val_score"])).as_py():
        _val_axis(ax, t)
    ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def _val_axis(ax, t: pa.Table) -> None:
    ax2 = ax.twinx()
    # the loss lines use the default cycle (blue, orange, ...); keep the score lines apart
    ax2.set_prop_cycle(color=["tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"])
    for run in _unique(t, "run"):
        r = t.filter(pc.and_(pc.equal(t["run"], run), pc.is_valid(t["val_score"])))
        ax2.plot(r["step"].to_numpy(), r["val_score"].to_numpy(), "--", marker="x",
                 label=f"{run} val score")
    ax2.set(ylabel="validation score (0-100)", ylim=(0, 100))
    ax2.legend(loc="center right", fontsize="small")


def plot_deviation_histogram(source, path, bins: int = 30) -> Path:
    """Histogram of per-sample deviations (percent) of one evaluation, bucket bounds marked.

    Args:
        source: DeviationMetrics, a PREDICTIONS_SCHEMA table or predictions.parquet; a table
            holding several evaluations is reduced to its last (largest step).
        path: the PNG to write.
        bins: bars between 0 and 100%; deviations above 100 (failures) share one black bar.
    Raises DataError: no samples; ConfigError: bins < 1.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ConfigError(f"plot_deviation_histogram: bins must be an int >= 1 (got {bins!r}); "
                          f"pass how many bars to draw between 0 and 100%")
    dev = _deviations(source)
    edges = np.linspace(0.0, 100.0, bins + 1)
    counts, _ = np.histogram(dev[dev <= 100], bins=edges)  # last bin closed: 100 is no failure
    width = edges[1] - edges[0]
    fig, ax = _figure((7, 4))
    ax.bar(edges[:-1], counts, width=width, align="edge", edgecolor="black")
    ax.bar([100.0], [int((dev > 100).sum())], width=width, align="edge", color="black",
           label="> 100% (failures)")
    ax.legend(loc="upper right", fontsize="small")
    for x in _EDGES[1:]:
        ax.axvline(x, color="grey", linestyle=":", linewidth=0.8)
    ax.set(xlabel="deviation (%)", ylabel="samples",
           title=f"deviation distribution ({dev.size} samples, {int((dev > 100).sum())} > 100%)")
    return _save(fig, path)


def _deviations(source) -> np.ndarray:
    if isinstance(source, DeviationMetrics):
        dev = np.array([r.deviation for r in source.results], dtype=np.float64)
    else:
        t = _table(source, PREDICTIONS_SCHEMA, "plot_deviation_histogram")
        last = pc.max(t["step"]).as_py()
        dev = t.filter(pc.equal(t["step"], last))["deviation"].to_numpy()
    if dev.size == 0:
        raise DataError("plot_deviation_histogram: no samples to plot (0 results); evaluate "
                        "at least one sample first")
    return dev


def plot_bucket_heatmap(buckets, path) -> Path:
    """Share of samples per deviation bucket (rows) per evaluation (columns, by step).

    Args:
        buckets: a BUCKETS_SCHEMA table or the path of buckets.parquet (one run's rows; rows
            of several runs with the same step are summed).
        path: the PNG to write.
    Raises DataError: no rows.
    """
    t = _table(buckets, BUCKETS_SCHEMA, "plot_bucket_heatmap")
    steps = sorted(_unique(t, "step"))
    epochs = {s: e for s, e in zip(t["step"].to_pylist(), t["epoch"].to_pylist())}
    grid = np.zeros((len(BUCKET_ORDER), len(steps)))
    col, row = {s: i for i, s in enumerate(steps)}, {b: i for i, b in enumerate(BUCKET_ORDER)}
    for s, b, c in zip(t["step"].to_pylist(), t["bucket"].to_pylist(), t["count"].to_pylist()):
        if b in row:
            grid[row[b], col[s]] += c
    share = grid / np.maximum(grid.sum(axis=0, keepdims=True), 1) * 100
    fig, ax = _figure((max(5.0, 0.5 * len(steps) + 3), 4))
    im = ax.imshow(share, aspect="auto", cmap="viridis", vmin=0, vmax=100)
    ax.set_yticks(range(len(BUCKET_ORDER)), BUCKET_ORDER)
    ticks = _tick_positions(len(steps))
    ax.set_xticks(ticks, [str(epochs[steps[i]]) for i in ticks])
    ax.set(xlabel="epoch", ylabel="deviation bucket", title="samples per bucket (%)")
    fig.colorbar(im, ax=ax, label="% of samples")
    return _save(fig, path)


def _tick_positions(n: int, most: int = 20) -> list[int]:
    return list(range(0, n, max(1, -(-n // most))))


def _table(source, schema: pa.Schema, where: str) -> pa.Table:
    if isinstance(source, pa.Table):
        t = source
        if not set(schema.names) <= set(t.schema.names):
            raise DataError(f"{where}: table has columns {t.schema.names}, needs "
                            f"{schema.names}; pass the matching run table")
    elif isinstance(source, (str, Path)):
        t = read_parquet(source, schema)
    else:
        raise DataError(f"{where}: cannot plot a {type(source).__name__}; pass a pyarrow "
                        f"Table or a Parquet path")
    if t.num_rows == 0:
        raise DataError(f"{where}: the table has no rows; plot after the first "
                        f"epoch/evaluation has been recorded")
    return t


def _unique(t: pa.Table, column: str) -> list:
    return pc.unique(t[column]).to_pylist()


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size, dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig, path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    path = Path(path)
    write_atomic(path, buf.getvalue())
    return path
