"""ActivityRecorder: bounded per-tick records in Arrow/Parquet; replay is identical."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loomdist import Network
from loomdist.errors import ConfigError
from loomdist.layers import LAYERS
from loomdist.tween import ActivityRecorder, read_recording, replay
from loomdist.tween.recorder import SCHEMA

L = LAYERS


class Collect:
    """Keeps full copies of every event it receives, in order."""

    def __init__(self):
        self.events = []

    def on_forward(self, e):
        self.events.append(e)

    on_backward = on_forward


def _grid_net():
    net = Network(6, 2, 2, 1)
    specs = [L["dense"].Spec(6, 8, "tanh"), L["layer_norm"].Spec(8),
             L["parallel"].Spec((L["dense"].Spec(8, 4, "relu"), L["dense"].Spec(8, 4)), "add"),
             L["dense"].Spec(4, 3, "sigmoid")]
    for i, s in enumerate(specs):
        net.set_layer(*net.coords(i), s, rng=i)
    return net


def _run(net, ticks, backward_every=3):
    rng = np.random.default_rng(1)
    for t in range(ticks):
        y = net.forward(rng.standard_normal(6).astype(np.float32))
        if t % backward_every == 0:
            net.backward(y - 0.5)


def _same_stream(a, b):
    assert len(a) == len(b)
    assert all(x.same_as(y) for x, y in zip(a, b))


def test_thousand_forward_ticks_replay_identically(tmp_path):
    net, live, rec = _grid_net(), Collect(), ActivityRecorder(max_ticks=1000, max_values=None)
    net.attach_observer(live, model_id="g")
    net.attach_observer(rec, model_id="g")
    _run(net, 1000)
    table = rec.table()
    assert table.schema.equals(SCHEMA) and table.num_rows == len(live.events)
    assert table.column("tick").to_pylist()[-1] == 999
    for source in (rec, table, rec.write_parquet(tmp_path / "rec.parquet")):
        out = Collect()
        assert replay(source, out) == len(live.events)
        _same_stream(out.events, live.events)
    assert read_recording(tmp_path / "rec.parquet").equals(table)


def test_replay_differs_when_a_value_differs():
    net, live, rec = _grid_net(), Collect(), ActivityRecorder(max_values=None)
    net.attach_observer(live)
    net.attach_observer(rec)
    _run(net, 3)
    out = Collect()
    replay(rec, out)
    out.events[4].output = out.events[4].output.copy()
    out.events[4].output[0] += np.float32(1e-6)
    assert not out.events[4].same_as(live.events[4])
    assert out.events[5].same_as(live.events[5])


def test_ring_keeps_the_newest_ticks_and_caps_values():
    net, live, rec = _grid_net(), Collect(), ActivityRecorder(max_ticks=10, max_values=3)
    net.attach_observer(live)
    net.attach_observer(rec)
    _run(net, 25, backward_every=1)
    t = rec.table()
    assert sorted(set(t.column("tick").to_pylist())) == list(range(15, 25))
    assert len(rec.ticks) == 10 and len(rec) == 10 * 8  # 4 forward + 4 backward per tick
    assert {len(v) for v in t.column("output").to_pylist()} == {3}
    kept = live.events[-80:]
    for e, row in zip(kept, t.to_pylist()):
        assert (row["layer_idx"], row["type"], row["avg"]) == \
            (e.layer_idx, e.type, float(e.stats.avg_activation))
        np.testing.assert_array_equal(np.float32(row["output"]), e.output[:3])


def test_statistics_only_by_default():
    net, rec = _grid_net(), ActivityRecorder()
    net.attach_observer(rec, layers=[2])
    _run(net, 4, backward_every=100)
    t = rec.table()
    # one observed layer: a tick per pass; tick 0's backward joins tick 0
    assert t.column("tick").to_pylist() == [0, 0, 1, 2, 3]
    assert t.column("type").to_pylist()[:2] == ["forward", "backward"]
    assert t.column("output").null_count == 5 and t.column("stats_type")[0].as_py() == \
        "parallel"
    out = Collect()
    replay(t, [out])
    assert out.events[0].output is None and out.events[0].layer_type == 10


def test_recorder_errors(tmp_path):
    with pytest.raises(ConfigError, match="max_ticks must be an integer >= 1"):
        ActivityRecorder(max_ticks=0)
    with pytest.raises(ConfigError, match="max_values must be None or an integer >= 0"):
        ActivityRecorder(max_values=-1)
    with pytest.raises(FileNotFoundError, match="read_recording: no file at"):
        read_recording(tmp_path / "missing.parquet")
    with pytest.raises(ConfigError, match="not an activity recording"):
        replay(pa.table({"x": [1]}), Collect())
    assert ActivityRecorder().table().num_rows == 0
