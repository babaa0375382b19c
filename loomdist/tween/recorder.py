"""Activity recorder: bounded per-tick per-layer event records as Arrow / Parquet, and replay.

An ActivityRecorder is an observer. Each event becomes one row: the tick, the event's fields,
its summary statistics (mean, max, min, active count, total) and optionally the first
`max_values` Input / Output values (0 = statistics only). A tick starts at a forward event
whose layer index is not above the previous forward event's (a new pass over the grid);
backward events belong to the tick of the forward pass before them. Only the newest
`max_ticks` ticks are kept, so memory stays bounded however long a run records.

`replay(recording, observers)` re-emits the recorded events, in order, as LayerEvents.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError
from ..eval.tables import write_parquet
from .events import LayerEvent, LayerStats

SCHEMA = pa.schema([
    ("tick", pa.int64()), ("mode", pa.string()), ("type", pa.string()),
    ("layer_idx", pa.int32()), ("layer_type", pa.int32()), ("step_count", pa.uint64()),
    ("grid_row", pa.int32()), ("grid_col", pa.int32()), ("cell_layer", pa.int32()),
    ("model_id", pa.string()), ("branch_idx", pa.int32()), ("is_parallel_branch", pa.bool_()),
    ("stats_type", pa.string()), ("avg", pa.float32()), ("max", pa.float32()),
    ("min", pa.float32()), ("active", pa.int64()), ("total", pa.int64()),
    ("input", pa.list_(pa.float32())), ("output", pa.list_(pa.float32())),
])
_SCALARS = [f.name for f in SCHEMA if f.name not in ("input", "output")]


class ActivityRecorder:
    """Records events into a ring of the newest `max_ticks` ticks.

    Args:
        max_ticks: ticks kept (older ones are dropped), >= 1.
        max_values: Input / Output values kept per event (0: statistics only; None: all).
    """

    def __init__(self, max_ticks: int = 10_000, max_values: int | None = 0):
        if isinstance(max_ticks, bool) or not isinstance(max_ticks, int) or max_ticks < 1:
            raise ConfigError(f"ActivityRecorder: max_ticks must be an integer >= 1 (got "
                              f"{max_ticks!r}); pass how many ticks to keep")
        if max_values is not None and (not isinstance(max_values, int) or max_values < 0):
            raise ConfigError(f"ActivityRecorder: max_values must be None or an integer >= 0 "
                              f"(got {max_values!r}); 0 keeps statistics only")
        self.max_ticks, self.max_values = max_ticks, max_values
        self.ticks: deque = deque(maxlen=max_ticks)  # each: list of row tuples
        self.tick = -1
        self._last_forward = None

    def _cut(self, a):
        if a is None or self.max_values == 0:
            return None
        return np.array(a[:self.max_values], dtype=np.float32)

    def on_forward(self, event: LayerEvent) -> None:
        if self._last_forward is None or event.layer_idx <= self._last_forward:
            self.tick += 1
            self.ticks.append([])
        self._last_forward = event.layer_idx
        self._add(event)

    def on_backward(self, event: LayerEvent) -> None:
        if not self.ticks:
            self.tick += 1
            self.ticks.append([])
        self._add(event)

    def _add(self, e: LayerEvent) -> None:
        s = e.stats
        self.ticks[-1].append((
            self.tick, e.mode, e.type, e.layer_idx, e.layer_type, e.step_count, e.grid_row,
            e.grid_col, e.cell_layer, e.model_id, e.branch_idx, e.is_parallel_branch,
            s.layer_type, s.avg_activation, s.max_activation, s.min_activation,
            s.active_neurons, s.total_neurons, self._cut(e.input), self._cut(e.output)))

    def __len__(self) -> int:
        return sum(len(t) for t in self.ticks)

    def table(self) -> pa.Table:
        """The kept records as one Arrow table with SCHEMA, in event order."""
        rows = [r for t in self.ticks for r in t]
        cols = list(zip(*rows)) if rows else [[] for _ in SCHEMA]
        return pa.table([_column(c, f.type) for c, f in zip(cols, SCHEMA)], schema=SCHEMA)

    def write_parquet(self, path) -> Path:
        """Write table() to `path` (atomically: temp file, then rename)."""
        return write_parquet(path, self.table())


def _column(values, typ):
    if pa.types.is_list(typ):
        return pa.array([None if v is None else v for v in values], type=typ)
    return pa.array(list(values), type=typ)


def read_recording(path) -> pa.Table:
    """A recording written by write_parquet; checks it has the recorder's schema.

    Raises:
        FileNotFoundError: no file at `path`.
        ConfigError: the file is not a recording (other columns).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_recording: no file at {path}; record one first "
                                f"(loomdist telemetry record)")
    table = pq.read_table(path)
    return check_recording(table, str(path))


def check_recording(table, where: str = "recording") -> pa.Table:
    if not isinstance(table, pa.Table) or not table.schema.equals(SCHEMA):
        names = table.schema.names if isinstance(table, pa.Table) else type(table).__name__
        raise ConfigError(f"{where}: not an activity recording (columns {names}); pass a "
                          f"table or Parquet file written by ActivityRecorder")
    return table


def as_table(recording) -> pa.Table:
    """An ActivityRecorder, Arrow table or Parquet path -> the recording table."""
    if isinstance(recording, ActivityRecorder):
        return recording.table()
    if isinstance(recording, (str, Path)):
        return read_recording(recording)
    return check_recording(recording)


def recorded_events(recording):
    """Yield the recorded LayerEvents in order."""
    table = as_table(recording)
    cols = {name: table.column(name).to_pylist() for name in _SCALARS}
    arrays = {k: table.column(k).to_pylist() for k in ("input", "output")}
    f32 = np.float32
    for i in range(table.num_rows):
        c = {k: v[i] for k, v in cols.items()}
        stats = LayerStats(f32(c["avg"]), f32(c["max"]), f32(c["min"]), c["active"],
                           c["total"], c["stats_type"])
        inp, out = (None if arrays[k][i] is None else np.array(arrays[k][i], f32)
                    for k in ("input", "output"))
        yield LayerEvent(c["mode"], c["type"], c["layer_idx"], c["layer_type"], stats, inp,
                         out, c["step_count"], c["grid_row"], c["grid_col"], c["cell_layer"],
                         c["model_id"], c["branch_idx"], c["is_parallel_branch"])


def replay(recording, observers) -> int:
    """Send every recorded event, in order, to each observer; returns the number of events."""
    observers = list(observers) if isinstance(observers, (list, tuple)) else [observers]
    n = 0
    for event in recorded_events(recording):
        for obs in observers:
            (obs.on_forward if event.type == "forward" else obs.on_backward)(event)
        n += 1
    return n
