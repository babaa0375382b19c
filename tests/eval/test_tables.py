"""Run-directory Arrow tables: schemas, atomic Parquet writes/appends, a DuckDB query."""

from __future__ import annotations

import math
import os

import pyarrow as pa
import pytest

from loomdist import ConfigError, DataError
from loomdist.eval import (
    BUCKET_ORDER,
    BUCKETS_SCHEMA,
    HISTORY_SCHEMA,
    PREDICTIONS_SCHEMA,
    append_parquet,
    buckets_table,
    evaluate_model,
    history_table,
    predictions_table,
    read_parquet,
    write_parquet,
)

EXPECTED = [1.0, 1.0, 1.0, 0.0, 2.0]
ACTUAL = [1.05, 2.0, 3.5, 0.25, 1.9]  # devs 5, 100, 250, 25, 5


@pytest.fixture
def metrics():
    return evaluate_model(EXPECTED, ACTUAL)


def _history(n=3, val=True):
    return [{"epoch": e, "step": 10 * (e + 1), "loss": 1.0 / (e + 1), "lr": 0.01,
             "grad_norm": 0.5, "time_s": 0.1, "extra": "ignored",
             **({"val_score": 50.0 + e, "val_accuracy": 0.5} if val and e else {})}
            for e in range(n)]


def test_predictions_table(metrics):
    t = predictions_table(metrics, "x", 2, 40)
    assert t.schema.equals(PREDICTIONS_SCHEMA) and t.num_rows == 5
    assert t["deviation"].to_pylist() == [r.deviation for r in metrics.results]
    assert t["bucket"].to_pylist() == ["0-10%", "50-100%", "100%+", "20-30%", "0-10%"]
    assert set(t["run"].to_pylist()) == {"x"} and set(t["epoch"].to_pylist()) == {2}


def test_buckets_table(metrics):
    t = buckets_table(metrics, "x", 0, 7)
    assert t.schema.equals(BUCKETS_SCHEMA)
    assert t["bucket"].to_pylist() == list(BUCKET_ORDER)
    assert t["count"].to_pylist() == [2, 0, 1, 0, 0, 1, 1]
    assert t["range_max"].to_pylist()[-1] == math.inf


def test_history_table_nulls_and_extra_keys():
    t = history_table(_history(), "x")
    assert t.schema.equals(HISTORY_SCHEMA) and t.num_rows == 3
    assert t["val_score"].to_pylist() == [None, 51.0, 52.0]
    assert "extra" not in t.schema.names


def test_history_table_missing_key():
    rows = _history()
    del rows[1]["lr"]
    with pytest.raises(DataError, match=r"history_table: row 1 lacks \['lr'\]"):
        history_table(rows, "x")


@pytest.mark.parametrize("run, epoch, step, pattern", [
    ("", 0, 0, r"run must be a non-empty string \(got ''\)"),
    (3, 0, 0, r"run must be a non-empty string \(got 3\)"),
    ("x", -1, 0, r"epoch must be an int >= 0 \(got -1\)"),
    ("x", 0, 1.5, r"step must be an int >= 0 \(got 1.5\)"),
])
def test_table_key_errors(metrics, run, epoch, step, pattern):
    with pytest.raises(ConfigError, match=pattern):
        predictions_table(metrics, run, epoch, step)
    with pytest.raises(ConfigError, match=pattern):
        buckets_table(metrics, run, epoch, step)


def test_write_and_append_parquet(metrics, tmp_path):
    path = tmp_path / "runs" / "x" / "predictions.parquet"
    append_parquet(path, predictions_table(metrics, "x", 0, 5))
    append_parquet(path, predictions_table(metrics, "x", 1, 10))
    t = read_parquet(path, PREDICTIONS_SCHEMA)
    assert t.num_rows == 10 and t["epoch"].to_pylist() == [0] * 5 + [1] * 5
    assert t.schema.equals(PREDICTIONS_SCHEMA, check_metadata=False)
    assert os.listdir(path.parent) == ["predictions.parquet"]  # no temp file left
    write_parquet(path, predictions_table(metrics, "x", 9, 9))
    assert read_parquet(path).num_rows == 5


def test_append_rejects_other_schema(metrics, tmp_path):
    path = tmp_path / "p.parquet"
    write_parquet(path, predictions_table(metrics, "x", 0, 5))
    with pytest.raises(DataError, match=r"append_parquet: .* has schema .*new run directory"):
        append_parquet(path, buckets_table(metrics, "x", 0, 5))
    assert read_parquet(path).num_rows == 5  # the old file is intact


def test_read_parquet_errors(metrics, tmp_path):
    with pytest.raises(DataError, match=r"read_parquet: cannot read .*missing"):
        read_parquet(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"read_parquet: cannot read"):
        read_parquet(bad)
    path = write_parquet(tmp_path / "b.parquet", buckets_table(metrics, "x", 0, 0))
    with pytest.raises(DataError, match=r"has columns .*expected .*matching table"):
        read_parquet(path, HISTORY_SCHEMA)


def test_non_nullable_columns_survive_parquet(tmp_path):
    path = write_parquet(tmp_path / "h.parquet", history_table(_history(), "x"))
    schema = read_parquet(path).schema
    assert not schema.field("loss").nullable and schema.field("val_score").nullable
    assert isinstance(read_parquet(path, HISTORY_SCHEMA), pa.Table)


def test_duckdb_query_over_run_directory(metrics, tmp_path, monkeypatch):
    """The example of loomdist.eval.tables' docstring, over a real run directory."""
    duckdb = pytest.importorskip("duckdb")
    run = tmp_path / "runs" / "x"
    for epoch in range(2):
        append_parquet(run / "predictions.parquet", predictions_table(metrics, "x", epoch, 5))
    monkeypatch.chdir(tmp_path)
    rows = duckdb.sql("SELECT bucket, count(*) FROM 'runs/x/predictions.parquet' "
                      "WHERE epoch = (SELECT max(epoch) FROM 'runs/x/predictions.parquet') "
                      "GROUP BY bucket ORDER BY bucket").fetchall()
    assert rows == sorted((k, b.count) for k, b in metrics.buckets.items() if b.count)
    [(score,)] = duckdb.sql("SELECT avg(greatest(0, 100 - deviation)) FROM "
                            "'runs/x/predictions.parquet' WHERE epoch = 1").fetchall()
    assert score == pytest.approx(metrics.score)
