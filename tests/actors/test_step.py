"""Step mode on actors equals local StepState tick for tick (outputs, and weights after Step+BP
training), on a 4-actor grid whose engine residual crosses actor boundaries."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from loomdist.actors.step import StepCell, StepGrid
from loomdist.errors import ConfigError
from loomdist.plan import Plan
from loomdist.tween import StepState
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
    for tick, (a, b) in enumerate(zip(got, local_outputs(net, xs, loom=False))):
        np.testing.assert_allclose(a, b, **TOL, err_msg=f"tick {tick + 1}")


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
    for tick, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, **TOL, err_msg=f"tick {tick + 1}")


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
