"""Step mode on actors equals local StepState tick for tick (outputs, and weights after Step+BP
training), on a 4-actor grid whose engine residual crosses actor boundaries."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from loomdist.actors.step import StepCell, StepGrid
from loomdist.errors import ConfigError
from loomdist.plan import Plan
from loomdist.tween import StepState
from loomdist.tween.config import default_tween_config
from loomdist.tween.modes import make_mode
from loomdist.tween.state import TweenState
from tests.tween.step_nets import inputs, residual_net

TOL = dict(rtol=1e-5, atol=1e-6)


def local_outputs(net, xs, loom, hold=1):
    state = StepState(net, loom_residuals=loom)
    out = []
    for x in xs:
        for k in range(hold):
            if k == 0:
                state.set_input(x)
            state.step_forward()
            out.append(state.layer_data()[-1].copy())
    return out


def assert_per_tick(got, want):
    for tick, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, **TOL, err_msg=f"tick {tick + 1}")


def local_step_bp(net, xs, targets, lr, grad_scaling):
    state = StepState(net, loom_residuals=True)
    for x, t in zip(xs, targets):
        state.set_input(x)
        state.step_forward()
        state.step_backward(state.output() - t.astype(np.float32), grad_scaling)
        state.apply_gradients(lr)
    return dict(net.parameters())


def test_chained_step_cells_equal_one_state_without_ray():
    net = residual_net()
    xs = inputs(net, 12)
    cells = [StepCell(net, (2 * k, 2 * k + 2), loom_residuals=False) for k in range(4)]
    last, got = [None] * 4, []
    for x in xs:
        last = [c.tick(a) for c, a in zip(cells, [(x, None)] + last[:-1])]
        got.append(last[-1][0].copy())
    assert_per_tick(got, local_outputs(net, xs, loom=False))


@pytest.mark.ray
@pytest.mark.parametrize("loom", [True, False])
def test_grid_outputs_equal_local_per_tick(ray_session, loom):
    net = residual_net()
    xs = inputs(net, 10, seed=2)
    grid = StepGrid(net, loom_residuals=loom)
    try:
        assert len(grid.actors) == 4
        got = grid.run(xs, ticks_per_input=3, window=8)
    finally:
        grid.shutdown()
    want = local_outputs(net, xs, loom, hold=3)
    assert len(got) == len(want) == 30
    assert_per_tick(got, want)


@pytest.mark.ray
@pytest.mark.parametrize("grad_scaling", [False, True])
def test_grid_step_bp_weights_equal_local(ray_session, grad_scaling):
    net = residual_net()
    xs = inputs(net, 15, seed=3)
    rng = np.random.default_rng(4)
    targets = [rng.uniform(0, 1, 4) for _ in xs]
    start = {k: w.copy() for k, w in net.parameters()}
    grid = StepGrid(copy.deepcopy(net), plan=Plan.balanced(net, 2, cost=[1, 1, 1, 1]))
    try:
        outs = [grid.train_tick(x, t, 0.02, grad_scaling) for x, t in zip(xs, targets)]
        assert len(grid.transport.get(outs, "test")) == 15
        got = grid.params()
    finally:
        grid.shutdown()
    want = local_step_bp(net, xs, targets, 0.02, grad_scaling)
    assert set(got) == set(want)
    for k, w in want.items():
        np.testing.assert_allclose(got[k], w, **TOL, err_msg=str(k))
    assert all(not np.array_equal(got[k], start[k]) for k in start if k[3] == "kernel")


@pytest.mark.ray
def test_grid_rejects_replicas_and_branch_actors(ray_session):
    net = residual_net()
    with pytest.raises(ConfigError, match="without branch actors"):
        StepGrid(net, plan=Plan.cells(net, replicas=2))
    with pytest.raises(ConfigError, match="stages must cover every cell once"):
        StepGrid(net, plan=Plan((((0, 0),), ((1, 0),), ((0, 1),), ((1, 1),))))


def local_stc(net, xs, cs, out_size):
    """LOOM's Tests 17-19 StepTweenChain, locally: decide by a step tick, TweenStep(x, c)."""
    mode = make_mode("StepTweenChain", net, out_size, "adapt")
    outs, losses = [], []
    for x, c in zip(xs, cs):
        outs.append(mode.output(x))
        mode.learn(x, c)
        losses.append(mode.last_loss)
    return outs, losses, dict(net.parameters())


def stc_data(net, n=12, seed=6):
    rng = np.random.default_rng(seed)
    return inputs(net, n, seed=seed), [int(c) for c in rng.integers(0, 2, n)]


def tween_through(cells, x, c, rate):
    """TweenStep(x, c) span by span on plain StepCells, as StepGrid.tween_tick submits it."""
    fwd = (x, None)
    for cell in cells:
        fwd = cell.tween_forward(fwd)
    msg = cells[-1].tween_backward_last(c, 2)
    for cell in reversed(cells[:-1]):
        msg = cell.tween_backward(msg)
    for cell in cells:
        cell.tween_update(msg, rate)
    return msg


def test_tween_spans_equal_local_step_tween_chain_without_ray():
    net = residual_net(batch=1)
    xs, cs = stc_data(net)
    cells = [StepCell(net, (2 * k, 2 * k + 2)) for k in range(4)]
    last, losses = [None] * 4, []
    for x, c in zip(xs, cs):
        last = [cell.tick(a) for cell, a in zip(cells, [(x, None)] + last[:-1])]
        losses.append(tween_through(cells, x, c, 0.02)[3])
    got = {k: w for cell in cells for k, w in cell.params().items()}
    _, want_losses, want = local_stc(net, xs, cs, 2)
    assert losses == want_losses
    for k, w in want.items():
        np.testing.assert_array_equal(got[k], w, err_msg=str(k))


@pytest.mark.ray
def test_grid_step_tween_chain_weights_equal_local(ray_session):
    net = residual_net(batch=1)
    xs, cs = stc_data(net, n=15)
    start = {k: w.copy() for k, w in net.parameters()}
    grid = StepGrid(net)
    try:
        refs = [grid.tween_tick(x, c, 2, 0.02) for x, c in zip(xs, cs)]
        got_out = grid.transport.get([o for o, _ in refs], "test outputs")
        got_loss = [m[3] for m in grid.transport.get([m for _, m in refs], "test msgs")]
        got = grid.params()
    finally:
        grid.shutdown()
    want_out, want_loss, want = local_stc(net, xs, cs, 2)
    assert got_loss == want_loss
    for tick, (a, b) in enumerate(zip(got_out, want_out)):
        np.testing.assert_array_equal(a[0].ravel(), b, err_msg=f"tick {tick + 1}")
    for k, w in want.items():
        np.testing.assert_array_equal(got[k], w, err_msg=str(k))
    assert any(not np.array_equal(want[k], start[k]) for k in start)


def test_tween_spans_share_the_explosion_multiplier():
    """With explosion detection every span damps by the mean gap of all L layers."""
    net = residual_net(batch=1)
    cfg = dataclasses.replace(default_tween_config(net.total_layers), explosion_detection=True)
    xs, cs = stc_data(net, n=30, seed=8)
    cells = [StepCell(net, (2 * k, 2 * k + 2), tween_config=cfg) for k in range(4)]
    for x, c in zip(xs, cs):
        tween_through(cells, x, c, 0.5)
    ts = TweenState(net, cfg)
    for x, c in zip(xs, cs):
        ts.tween_step(net, x, c, 2, 0.5)
    assert ts.explosion.adaptive_rate != 1.0  # the damping was exercised
    assert {cell.tween.explosion.adaptive_rate for cell in cells} == {ts.explosion.adaptive_rate}
    got = {k: w for cell in cells for k, w in cell.params().items()}
    for k, w in net.parameters():
        np.testing.assert_array_equal(got[k], w, err_msg=str(k))


@pytest.mark.ray
def test_grid_step_bp_equals_the_step_bp_mode(ray_session):
    """Tests 17-19 Step+BP: grad = out - onehot, gradient attention, LOOM's apply set."""
    net = residual_net(batch=1)
    xs, cs = stc_data(net, n=12, seed=9)
    grid = StepGrid(net)
    try:
        outs = [grid.train_tick(x, np.eye(2, dtype=np.float32)[c], 0.02, grad_scaling=True,
                                loom_apply=True) for x, c in zip(xs, cs)]
        got_out = [y for y, _ in grid.transport.get(outs, "test")]
        got = grid.params()
    finally:
        grid.shutdown()
    start = {k: w.copy() for k, w in net.parameters()}
    mode = make_mode("StepBP", net, 2, "adapt")
    for x, c, y in zip(xs, cs, got_out):
        np.testing.assert_array_equal(mode.output(x), y.ravel())
        mode.learn(x, c)
    for k, w in net.parameters():
        # float32 tolerance, the distributed == local invariant: in full-suite runs (not
        # alone) two of 24 first-layer weights have come out 1 ulp apart; cause not found yet
        np.testing.assert_allclose(got[k], w, rtol=1e-6, atol=1e-8, err_msg=str(k))
    changed = {k[3] for k in start if not np.array_equal(start[k], got[k])}
    assert changed == {"kernel", "biases"}  # only LOOM's ApplyGradients set moved
