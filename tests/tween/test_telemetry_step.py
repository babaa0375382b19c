"""Step-mode events (mode "step", step_count) and a 1,000-tick step recording replayed."""

from __future__ import annotations

import numpy as np

from loomdist.tween import ActivityRecorder, StepState, replay
from tests.tween.step_nets import inputs, residual_net
from tests.tween.test_telemetry_recorder import Collect


def _ticks(state, xs, backward=True, grad_scaling=False):
    outs = []
    for x in xs:
        state.set_input(x)
        state.step_forward()
        outs.append(state.output())
        if backward:
            outs.append(state.step_backward(state.output() - 0.25, grad_scaling))
    return outs


def test_step_events_report_buffers_and_counts():
    net = residual_net()
    state, obs = StepState(net), Collect()
    net.attach_observer(obs, model_id="s")
    xs = inputs(net, 2)
    state.set_input(xs[0])
    state.step_forward()
    before = [b.copy() for b in state.layer_data()]
    state.set_input(xs[1])
    state.step_forward()
    dx = state.step_backward(np.ones(state.output().size))
    L = net.total_layers
    fwd, back = obs.events[L:2 * L], obs.events[2 * L:]
    for i, e in enumerate(fwd):
        assert (e.mode, e.type, e.layer_idx, e.step_count, e.model_id) == \
            ("step", "forward", i, 1, "s")
        want_in = state.layer_data()[0] if i == 0 else before[i]
        np.testing.assert_array_equal(e.input, want_in.reshape(-1))
        np.testing.assert_array_equal(e.output, state.layer_data()[i + 1].reshape(-1))
    assert [e.layer_idx for e in back] == list(range(L - 1, -1, -1))
    assert {(e.mode, e.type, e.step_count) for e in back} == {("step", "backward", 2)}
    np.testing.assert_array_equal(back[-1].output, dx)
    assert all(e.input is None for e in back)


def test_observing_changes_no_step_result():
    xs = inputs(residual_net(), 20, seed=3)
    plain, observed = StepState(residual_net()), StepState(residual_net())
    observed.net.attach_observer(Collect())
    for a, b in zip(_ticks(plain, xs, grad_scaling=True), _ticks(observed, xs,
                                                                 grad_scaling=True)):
        np.testing.assert_array_equal(a, b)
    for (k, g), (_, h) in zip(plain.net.gradients(), observed.net.gradients()):
        np.testing.assert_array_equal(g, h, err_msg=str(k))


def test_thousand_step_ticks_replay_identically(tmp_path):
    net = residual_net()
    state, live, rec = StepState(net), Collect(), ActivityRecorder(1000, max_values=None)
    net.attach_observer(live)
    net.attach_observer(rec)
    xs = inputs(net, 1000, seed=5)
    for t, x in enumerate(xs):
        state.set_input(x)
        state.step_forward()
        if t % 4 == 0:
            state.step_backward(state.output() - 0.5)
    table = rec.table()
    assert sorted(set(table.column("tick").to_pylist())) == list(range(1000))
    assert set(table.column("mode").to_pylist()) == {"step"}
    for source in (table, rec.write_parquet(tmp_path / "step.parquet")):
        out = Collect()
        assert replay(source, out) == len(live.events) == 1000 * 8 + 250 * 8
        assert all(a.same_as(b) for a, b in zip(out.events, live.events))


def test_a_span_reports_its_own_layer_indices():
    net = residual_net()
    whole, obs = StepState(net), Collect()
    whole.set_input(inputs(net, 1)[0])
    for _ in range(3):
        whole.step_forward()
    span = StepState(net, span=(2, 5))
    span.set_input(whole.layer_data()[2])
    net.attach_observer(obs)
    span.step_forward()
    span.step_backward(np.ones(span.output().size))
    assert [e.layer_idx for e in obs.events] == [2, 3, 4, 4, 3, 2]
    assert [(e.grid_row, e.grid_col, e.cell_layer) for e in obs.events[:3]] == \
        [net.coords(i) for i in (2, 3, 4)]
    np.testing.assert_array_equal(obs.events[0].input, whole.layer_data()[2].reshape(-1))
