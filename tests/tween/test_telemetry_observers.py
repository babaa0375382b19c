"""LOOM's layer events and observers: JSON keys, stats, console formats, channel, HTTP."""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from loomdist import Network
from loomdist.errors import ConfigError
from loomdist.io import gojson
from loomdist.layers import LAYERS
from loomdist.tween import (
    ChannelObserver,
    ConsoleObserver,
    HTTPObserver,
    LayerEvent,
    RecordingObserver,
    compute_stats,
)
from loomdist.tween import events as events_module
from loomdist.tween.observers import go_value, rfc3339

Dense = LAYERS["dense"].Spec


class ListObserver:
    def __init__(self):
        self.events = []

    def on_forward(self, e):
        self.events.append(("f", e))

    def on_backward(self, e):
        self.events.append(("b", e))


def _net(acts=("tanh", "linear", "sigmoid"), sizes=(5, 4, 3, 2)):
    net = Network(sizes[0], 1, len(acts), 1)
    for i, a in enumerate(acts):
        net.set_layer(0, i, 0, Dense(sizes[i], sizes[i + 1], a), rng=i)
    return net


X = np.linspace(-1, 1, 5).astype(np.float32)


def test_stats_are_loom_float32_sequential():
    v = np.random.default_rng(0).standard_normal(1001).astype(np.float32)
    total = np.float32(0)
    for x in v:
        total = np.float32(total + x)
    s = compute_stats(v, "dense")
    assert s.avg_activation == np.float32(total / np.float32(1001))
    assert (s.max_activation, s.min_activation) == (v.max(), v.min())
    assert (s.active_neurons, s.total_neurons) == (int((v > 0).sum()), 1001)
    assert compute_stats(None, "rnn").total_neurons == 0


def test_forward_events_carry_loom_fields():
    net, obs = _net(), ListObserver()
    net.attach_observer(obs, model_id="m1")
    y = net.forward(X)
    acts = net.activations()
    assert [k for k, _ in obs.events] == ["f"] * 3
    for i, (_, e) in enumerate(obs.events):
        assert (e.mode, e.type, e.layer_idx, e.layer_type, e.step_count) == \
            ("normal", "forward", i, 0, 0)
        assert (e.grid_row, e.grid_col, e.cell_layer, e.model_id) == (0, i, 0, "m1")
        assert (e.branch_idx, e.is_parallel_branch) == (-1, False)
        np.testing.assert_array_equal(e.output, acts[i + 1])
        np.testing.assert_array_equal(e.input, e.output)  # LOOM reports the output as Input
        assert e.stats.layer_type == "dense" and e.stats.total_neurons == acts[i + 1].size
    np.testing.assert_array_equal(obs.events[-1][1].output, y)
    with pytest.raises(ValueError):
        obs.events[0][1].output[0] = 1  # observers cannot write into the network's buffers


def test_backward_events_report_input_gradients_in_reverse():
    net, obs = _net(("linear", "linear", "linear")), ListObserver()
    y = net.forward(X)
    dy = np.arange(y.size, dtype=np.float32) + 1
    ref = net.backward(dy)
    ref_grads = {k: v.copy() for k, v in net.gradients()}
    net.zero_grad()
    net.attach_observer(obs)
    net.forward(X)
    dx = net.backward(dy)
    back = [e for k, e in obs.events if k == "b"]
    assert [e.layer_idx for e in back] == [2, 1, 0]
    g = dy
    for e in back:  # linear dense: dL/dx = dy @ K.T
        g = g @ net.param((0, e.layer_idx, 0, "kernel")).T
        np.testing.assert_allclose(e.output, g, rtol=1e-6)
        assert e.input is None and e.type == "backward" and e.mode == "normal"
    np.testing.assert_array_equal(dx, ref)
    for k, v in net.gradients():  # observing changes no gradient
        np.testing.assert_array_equal(v, ref_grads[k])


def test_layer_selection_and_detach():
    net, a, b = _net(), ListObserver(), ListObserver()
    net.attach_observer(a, layers=[(0, 2, 0), 0])
    net.attach_observer(b, layers=[1])
    net.forward(X)
    assert [e.layer_idx for _, e in a.events] == [0, 2]
    assert [e.layer_idx for _, e in b.events] == [1]
    net.detach_observer(a)
    net.forward(X)
    assert len(a.events) == 2 and len(b.events) == 2


def test_no_observer_means_no_event_work(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("events built without an observer")
    monkeypatch.setattr(events_module, "fire_forward", boom)
    monkeypatch.setattr(events_module, "observed_walk", boom)
    net = _net()
    y = net.forward(X)
    net.backward(np.ones_like(y))


def test_attach_errors():
    net = _net()
    with pytest.raises(ConfigError, match="has no on_forward / on_backward"):
        net.attach_observer(object())
    with pytest.raises(ConfigError, match=r"layer 3 is outside the grid \(3 layers\)"):
        net.attach_observer(ListObserver(), layers=[3])
    with pytest.raises(ConfigError, match="col 5 is outside the grid"):
        net.attach_observer(ListObserver(), layers=[(0, 5, 0)])


def test_event_json_keys_are_loom_mixed_tagging():
    net, rec = _net(), RecordingObserver("m")
    net.attach_observer(rec)
    net.forward(X)
    d = json.loads(gojson.dumps(rec.events[0].to_dict()))
    assert list(d) == ["mode", "Type", "LayerIdx", "LayerType", "Stats", "Input", "Output",
                       "step_count", "grid_row", "grid_col", "cell_layer", "model_id",
                       "branch_idx", "is_parallel_branch"]
    assert list(d["Stats"]) == ["AvgActivation", "MaxActivation", "MinActivation",
                                "ActiveNeurons", "TotalNeurons", "LayerType"]


def _event(out, model_id="", kind="forward"):
    out = np.asarray(out, np.float32)
    return LayerEvent("normal", kind, 2, 0, compute_stats(out, "dense"), out, out, 0, 1, 0, 2,
                      model_id)


def test_console_formats():
    buf = io.StringIO()
    obs = ConsoleObserver(verbose=True, stream=buf)
    obs.on_forward(_event([0.5, -1.0, 2.25], "net"))
    obs.on_backward(_event([0.5, -1.0, 2.25]))
    obs.on_forward(_event(np.zeros(21)))
    assert buf.getvalue().splitlines() == [
        "[net] [FWD] Grid[1,0,2] (dense): avg=0.5833 max=2.2500 active=2/3",
        "       Output: [0.5 -1 2.25]",
        "[BWD] Grid[1,0,2] (dense): grad_avg=0.5833 grad_max=2.2500",
        "[FWD] Grid[1,0,2] (dense): avg=0.0000 max=0.0000 active=0/21"]


@pytest.mark.parametrize("v,text", [(0.5, "0.5"), (1.0, "1"), (1e-7, "1e-07"),
                                    (1234567.0, "1.234567e+06"), (100000.0, "100000"),
                                    (0.0001, "0.0001"), (0.1, "0.1"), (-3.25e-5, "-3.25e-05"),
                                    (float("inf"), "+Inf")])
def test_go_percent_v_of_float32(v, text):
    assert go_value(v) == text


def test_nan_events_cannot_be_json_as_in_go():
    rec = RecordingObserver("m")
    rec.on_forward(_event([np.nan, 1.0]))
    with pytest.raises(ConfigError, match="RecordingObserver.to_json: an event holds a value"):
        rec.to_json()
    HTTPObserver("http://127.0.0.1:9/x").on_forward(_event([np.inf]))  # dropped, as LOOM


def test_recording_observer_truncates_and_reports():
    net = Network(30, 1, 1, 1)
    net.set_layer(0, 0, 0, Dense(30, 25, "tanh"), rng=0)
    rec = RecordingObserver("m")
    net.attach_observer(rec)
    y = net.forward(np.linspace(0, 1, 30))
    net.backward(np.ones_like(y))
    assert [len(e.output) for e in rec.events] == [20, 20]
    assert rec.events[0].stats.total_neurons == 25  # stats of the whole vector
    np.testing.assert_array_equal(rec.events[0].output, y[:20])
    d = json.loads(rec.to_json())
    assert list(d) == ["model_id", "recorded_at", "duration_seconds", "total_events", "events"]
    assert d["total_events"] == 2 and d["events"][1]["Input"] is None
    assert datetime.fromisoformat(d["recorded_at"].replace("Z", "+00:00"))
    rec.reset()
    assert rec.get_recording()["total_events"] == 0


def test_rfc3339():
    t = datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=timezone.utc)
    assert rfc3339(t) == "2026-01-02T03:04:05Z"
    assert rfc3339(t.astimezone(timezone(timedelta(hours=-5)))) == "2026-01-01T22:04:05-05:00"


def test_channel_observer_drops_when_full():
    obs = ChannelObserver(2)
    for k in range(5):
        obs.on_forward(_event([k]))
    assert obs.events.qsize() == 2 and obs.dropped == 3
    assert obs.events.get_nowait().output[0] == 0
    with pytest.raises(ConfigError, match="buffer_size must be an integer >= 1"):
        ChannelObserver(0)


class _Sink(http.server.BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):  # noqa: N802 - http.server's API
        n = int(self.headers["Content-Length"])
        self.bodies.append((self.headers["Content-Type"], self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_http_observer_posts_events_without_data():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        obs = HTTPObserver(f"http://127.0.0.1:{server.server_port}/events")
        obs.on_forward(_event([1.5, 2.0], "m"))
        obs.on_backward(_event([0.25], kind="backward"))
        deadline = time.monotonic() + 5
        while len(_Sink.bodies) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()
    got = sorted((json.loads(b) for _, b in _Sink.bodies), key=lambda d: d["Type"])
    assert {t for t, _ in _Sink.bodies} == {"application/json"}
    assert [d["Type"] for d in got] == ["backward", "forward"]
    assert got[1]["Input"] is None and got[1]["Output"] is None
    assert got[1]["Stats"]["MaxActivation"] == 2 and got[1]["model_id"] == "m"


def test_http_observer_ignores_errors_and_checks_url():
    obs = HTTPObserver("http://127.0.0.1:9/nothing-listens")  # port 9: discard, closed
    obs.on_forward(_event([1.0]))  # returns at once; the failed POST is ignored
    with pytest.raises(ConfigError, match="is not an http"):
        HTTPObserver("ftp://x")


def test_backward_events_fire_for_every_layer_when_the_input_gradient_is_dropped():
    """Network.backward(input_grad=False) (train_step's call) while observed: the first
    layer still reports its dL/dx; None comes back; the gradients are unchanged."""
    net, obs = _net(), ListObserver()
    y = net.forward(X)
    dy = np.arange(y.size, dtype=np.float32) + 1
    net.backward(dy)
    ref_grads = {k: v.copy() for k, v in net.gradients()}
    net.zero_grad()
    net.attach_observer(obs)
    net.forward(X)
    assert net.backward(dy, input_grad=False) is None
    back = [e for k, e in obs.events if k == "b"]
    assert [e.layer_idx for e in back] == [2, 1, 0]
    assert back[-1].output.size == X.size
    for k, v in net.gradients():
        np.testing.assert_array_equal(v, ref_grads[k])
