"""Run plots: each writes a valid PNG atomically from a table, a Parquet path or metrics."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

from loomdist import ConfigError, DataError
from loomdist.eval import (
    HISTORY_SCHEMA,
    append_parquet,
    buckets_table,
    evaluate_model,
    history_table,
    predictions_table,
    write_parquet,
)

pytest.importorskip("matplotlib")
from loomdist.eval.plots import (  # noqa: E402
    plot_bucket_heatmap,
    plot_deviation_histogram,
    plot_loss,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 1000
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]  # atomic write


@pytest.fixture
def metrics():
    return evaluate_model([1.0, 1.0, 1.0, 0.0, 2.0, 3.0], [1.05, 2.0, 3.5, 0.25, 1.9, 0.1])


def _history(val: bool):
    return [{"epoch": e, "step": 5 * (e + 1), "loss": 2.0 / (e + 1), "lr": 1e-3,
             "grad_norm": 1.0, "time_s": 0.2, "val_score": (40.0 + 5 * e) if val else None}
            for e in range(4)]


@pytest.mark.parametrize("val", [True, False])
def test_plot_loss(tmp_path, val):
    t = history_table(_history(val), "a")
    t = pa.concat_tables([t, history_table(_history(val), "b")])
    out = plot_loss(t, tmp_path / "plots" / "loss.png")
    assert out == tmp_path / "plots" / "loss.png"
    _assert_png(out)


def test_plot_loss_from_parquet(tmp_path):
    path = write_parquet(tmp_path / "history.parquet", history_table(_history(True), "a"))
    _assert_png(plot_loss(path, tmp_path / "loss.png"))


def test_plot_deviation_histogram(tmp_path, metrics):
    _assert_png(plot_deviation_histogram(metrics, tmp_path / "dev.png"))
    preds = tmp_path / "predictions.parquet"
    append_parquet(preds, predictions_table(metrics, "a", 0, 5))
    append_parquet(preds, predictions_table(evaluate_model([1.0], [1.0]), "a", 1, 10))
    _assert_png(plot_deviation_histogram(preds, tmp_path / "dev2.png", bins=10))


def test_plot_bucket_heatmap(tmp_path, metrics):
    t = pa.concat_tables([buckets_table(metrics, "a", e, 5 * e) for e in range(30)])
    _assert_png(plot_bucket_heatmap(t, tmp_path / "heat.png"))
    path = write_parquet(tmp_path / "buckets.parquet", buckets_table(metrics, "a", 0, 0))
    _assert_png(plot_bucket_heatmap(path, tmp_path / "heat1.png"))


def test_plot_errors(tmp_path, metrics):
    with pytest.raises(DataError, match=r"plot_loss: the table has no rows"):
        plot_loss(HISTORY_SCHEMA.empty_table(), tmp_path / "x.png")
    with pytest.raises(DataError, match=r"plot_loss: cannot plot a dict; pass a pyarrow"):
        plot_loss({"loss": [1.0]}, tmp_path / "x.png")
    with pytest.raises(DataError, match=r"plot_bucket_heatmap: table has columns"):
        plot_bucket_heatmap(pa.table({"step": [1]}), tmp_path / "x.png")
    with pytest.raises(DataError, match=r"plot_deviation_histogram: no samples to plot"):
        plot_deviation_histogram(evaluate_model([], []), tmp_path / "x.png")
    with pytest.raises(DataError, match=r"read_parquet: cannot read"):
        plot_loss(tmp_path / "missing.parquet", tmp_path / "x.png")
    with pytest.raises(ConfigError, match=r"bins must be an int >= 1 \(got 0\)"):
        plot_deviation_histogram(metrics, tmp_path / "x.png", bins=0)
    assert not (tmp_path / "x.png").exists()
