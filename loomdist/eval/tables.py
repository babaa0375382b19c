"""Arrow tables of a run directory (predictions, buckets, history) and atomic Parquet writes.

A run directory keeps one Parquet file per table, appended to at each evaluation/epoch, so
any SQL engine can read it. Example with DuckDB (run from the directory holding `runs/`):

    SELECT bucket, count(*) AS n
    FROM 'runs/x/predictions.parquet'
    WHERE epoch = (SELECT max(epoch) FROM 'runs/x/predictions.parquet')
    GROUP BY bucket ORDER BY bucket;

    -- score per evaluation, recomputed from the rows (LOOM's formula)
    SELECT epoch, avg(greatest(0, 100 - deviation)) AS score
    FROM 'runs/x/predictions.parquet' GROUP BY epoch ORDER BY epoch;
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError, DataError
from ..io.loom_json import write_atomic
from .metrics import DeviationMetrics

PREDICTIONS_SCHEMA = pa.schema([
    pa.field("run", pa.string(), nullable=False),
    pa.field("epoch", pa.int32(), nullable=False),
    pa.field("step", pa.int64(), nullable=False),
    pa.field("sample_index", pa.int64(), nullable=False),
    pa.field("expected", pa.float64(), nullable=False),
    pa.field("actual", pa.float64(), nullable=False),
    pa.field("deviation", pa.float64(), nullable=False),  # percent, LOOM's formula
    pa.field("bucket", pa.string(), nullable=False),      # LOOM's bucket key, e.g. "10-20%"
])

BUCKETS_SCHEMA = pa.schema([
    pa.field("run", pa.string(), nullable=False),
    pa.field("epoch", pa.int32(), nullable=False),
    pa.field("step", pa.int64(), nullable=False),
    pa.field("bucket", pa.string(), nullable=False),
    pa.field("range_min", pa.float64(), nullable=False),
    pa.field("range_max", pa.float64(), nullable=False),  # +inf for "100%+" (LOOM's files: 1e9)
    pa.field("count", pa.int64(), nullable=False),
])

HISTORY_SCHEMA = pa.schema([
    pa.field("run", pa.string(), nullable=False),
    pa.field("epoch", pa.int32(), nullable=False),
    pa.field("step", pa.int64(), nullable=False),
    pa.field("loss", pa.float64(), nullable=False),
    pa.field("lr", pa.float64(), nullable=False),
    pa.field("grad_norm", pa.float64(), nullable=False),
    pa.field("val_score", pa.float64(), nullable=True),     # null: no validation that epoch
    pa.field("val_accuracy", pa.float64(), nullable=True),  # fraction 0..1, null if none
    pa.field("time_s", pa.float64(), nullable=False),
])

_HISTORY_REQUIRED = ("epoch", "step", "loss", "lr", "grad_norm", "time_s")
_HISTORY_OPTIONAL = ("val_score", "val_accuracy")


def predictions_table(metrics: DeviationMetrics, run: str, epoch: int, step: int) -> pa.Table:
    """One row per evaluated sample of `metrics` (PREDICTIONS_SCHEMA), in evaluation order."""
    _check_key(run, epoch, step, "predictions_table")
    rs, n = metrics.results, len(metrics.results)
    cols = {"run": [run] * n, "epoch": [epoch] * n, "step": [step] * n,
            "sample_index": [r.sample_index for r in rs], "expected": [r.expected for r in rs],
            "actual": [r.actual for r in rs], "deviation": [r.deviation for r in rs],
            "bucket": [r.bucket for r in rs]}
    return pa.table(cols, schema=PREDICTIONS_SCHEMA)


def buckets_table(metrics: DeviationMetrics, run: str, epoch: int, step: int) -> pa.Table:
    """One row per bucket of `metrics` (BUCKETS_SCHEMA), in LOOM's evaluation order."""
    _check_key(run, epoch, step, "buckets_table")
    items = list(metrics.buckets.items())
    n = len(items)
    cols = {"run": [run] * n, "epoch": [epoch] * n, "step": [step] * n,
            "bucket": [k for k, _ in items], "range_min": [b.range_min for _, b in items],
            "range_max": [b.range_max for _, b in items], "count": [b.count for _, b in items]}
    return pa.table(cols, schema=BUCKETS_SCHEMA)


def history_table(rows: list[dict], run: str) -> pa.Table:
    """HISTORY_SCHEMA rows from training history records (Trainer/TrainingResult.history).

    Each row needs epoch, step, loss, lr, grad_norm, time_s; val_score and val_accuracy
    may be missing or None (null). Other keys are ignored.
    Raises DataError for a missing key, ConfigError for a bad run name.
    """
    _check_key(run, 0, 0, "history_table")
    for i, row in enumerate(rows):
        missing = [k for k in _HISTORY_REQUIRED if row.get(k) is None]
        if missing:
            raise DataError(f"history_table: row {i} lacks {missing} (has {sorted(row)}); "
                            f"each record needs {list(_HISTORY_REQUIRED)}")
    cols = {"run": [run] * len(rows)}
    cols.update({k: [row[k] for row in rows] for k in _HISTORY_REQUIRED})
    cols.update({k: [row.get(k) for row in rows] for k in _HISTORY_OPTIONAL})
    return pa.table(cols, schema=HISTORY_SCHEMA)


def _check_key(run, epoch, step, where: str) -> None:
    if not isinstance(run, str) or not run:
        raise ConfigError(f"{where}: run must be a non-empty string (got {run!r}); pass the "
                          f"run id")
    for name, v in (("epoch", epoch), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"{where}: {name} must be an int >= 0 (got {v!r}); pass the "
                              f"{name} of this evaluation")


def write_parquet(path, table: pa.Table) -> Path:
    """Write `table` to `path` atomically (whole file to a temp in the same dir, rename)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    path = Path(path)
    write_atomic(path, sink.getvalue().to_pybytes())
    return path


def read_parquet(path, schema: pa.Schema | None = None) -> pa.Table:
    """Read a Parquet table; with `schema`, check it matches (DataError otherwise)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise DataError(f"read_parquet: cannot read {path} ({e}); pass a Parquet file of a "
                        f"run directory") from e
    if schema is not None and not table.schema.equals(schema, check_metadata=False):
        raise DataError(f"read_parquet: {path} has columns {table.schema.names}, expected "
                        f"{schema.names}; pass the matching table of a run directory")
    return table


def append_parquet(path, table: pa.Table) -> Path:
    """Append `table`'s rows to the Parquet file at `path` (created if missing).

    The small run tables are read, concatenated and rewritten atomically, so a crash leaves
    the old file or the new one. Raises DataError when the existing schema differs.
    """
    path = Path(path)
    if path.exists():
        old = read_parquet(path)
        if not old.schema.equals(table.schema, check_metadata=False):
            raise DataError(f"append_parquet: {path} has schema {old.schema.names} "
                            f"({old.schema.types}), the new rows {table.schema.names} "
                            f"({table.schema.types}); write to a new run directory")
        table = pa.concat_tables([old, table.replace_schema_metadata(old.schema.metadata)])
    return write_parquet(path, table)
