"""step_backward: float64 finite differences of the tick for every case (both residual modes),
equality with Network.backward in steady state, LOOM's gradient scaling with literal values,
and apply_gradients."""

from __future__ import annotations

import numpy as np
import pytest

from loomdist.gradcheck import numeric_grad
from loomdist.layers import LAYERS
from loomdist.tween import StepState
from loomdist.tween.step_grad import loom_groups, scale_layer_grads, softmax_scale
from tests.cases import CASES
from tests.tween.step_nets import TickFunction, inputs, net_around, residual_net


def _stepped(net, loom: bool, ticks: int):
    """A float64 state after `ticks` ticks of changing inputs, and what the last tick read."""
    net.astype(np.float64)
    state = StepState(net, loom_residuals=loom)
    for x in inputs(net, ticks, seed=5):
        state.set_input(x)
        data = [a.copy() for a in state.layer_data()]
        res = [None if r is None else r.copy() for r in state.residuals()]
        state.step_forward()
    return state, data, res


def _check_tick_gradients(net, loom: bool, atol: float):
    state, data, res = _stepped(net, loom, net.total_layers - 1)  # buffers still filling
    dy = np.random.default_rng(1).standard_normal(state.output().shape)
    fn = TickFunction(state, data, res, dy.reshape(data[-1].shape[0], -1))
    np.testing.assert_allclose(fn.base[-1][0].ravel(), state.output(), rtol=1e-12)
    dx = state.step_backward(dy)
    np.testing.assert_allclose(dx.reshape(data[0].shape), numeric_grad(fn, data[0]),
                               rtol=1e-5, atol=atol, err_msg="buffer 0")
    for key, p in net.parameters():
        np.testing.assert_allclose(net.grad(key), numeric_grad(fn, p), rtol=1e-5, atol=atol,
                                   err_msg=str(key))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_step_backward_matches_finite_differences(case):
    _check_tick_gradients(net_around(case), loom=False, atol=case.tol)


@pytest.mark.parametrize("loom", [True, False])
def test_step_backward_residual_kinds_finite_differences(loom):
    _check_tick_gradients(residual_net(), loom=loom, atol=1e-6)


def test_steady_state_gradients_equal_network_backward():
    net = residual_net().astype(np.float64)
    x = inputs(net, 1)[0]
    state = StepState(net, loom_residuals=False)
    state.set_input(x)
    for _ in range(net.total_layers):
        state.step_forward()
    dy = np.linspace(-1, 1, state.output().size)
    dx = state.step_backward(dy)
    step_grads = {k: g.copy() for k, g in net.gradients()}
    net.zero_grad()
    net.forward(np.reshape(x, (net.batch_size, -1)))  # step mode: one sample per row
    np.testing.assert_allclose(dx, net.backward(dy.reshape(net.batch_size, -1)).reshape(-1),
                               rtol=1e-10, atol=1e-12)
    assert set(step_grads) == {k for k, _ in net.gradients()}
    for k, g in net.gradients():
        np.testing.assert_allclose(step_grads[k], g, rtol=1e-10, atol=1e-12, err_msg=str(k))


def test_softmax_scale_literal_values():
    # |g| = [1, 2, 0]: softmax = [e^-1, 1, e^-2] / 1.503215; times N = 3
    np.testing.assert_allclose(softmax_scale(np.array([1.0, -2.0, 0.0])),
                               [0.73418541, -3.99144573, 0.0], rtol=1e-7)
    np.testing.assert_array_equal(softmax_scale(np.array([0.5, 0.5])), [0.5, 0.5])
    assert softmax_scale(np.array([1.0, 2.0], np.float32)).dtype == np.float32


def test_loom_groups_follow_loom_gradients_packing():
    mha = LAYERS["multi_head_attention"]
    spec = mha.Spec(4, 2)
    shapes = mha.param_shapes(spec)
    kernel, bias = loom_groups(mha, spec, shapes)
    assert kernel.size == 4 * 16 and bias.size == 4 * 4
    assert sorted(np.concatenate([kernel, bias])) == list(range(80))
    dense = LAYERS["dense"]
    k, b = loom_groups(dense, dense.Spec(2, 3), {"kernel": (2, 3), "biases": (3,)})
    assert k.tolist() == [0, 1, 2, 3, 4, 5] and b.tolist() == [6, 7, 8]


def test_scale_layer_grads_literal_dense():
    dense = LAYERS["dense"]
    grads = {"kernel": np.array([[1.0], [-2.0], [0.0]]), "biases": np.array([3.0])}
    out = scale_layer_grads(dense, dense.Spec(3, 1), grads)
    np.testing.assert_allclose(out["kernel"].ravel(), [0.73418541, -3.99144573, 0.0],
                               rtol=1e-7)
    np.testing.assert_array_equal(out["biases"], [3.0])  # N = 1: factor 1
    assert scale_layer_grads(dense, dense.Spec(3, 1), {}) == {}


def test_step_backward_grad_scaling_accumulates_scaled_tick_gradients():
    net = residual_net()
    state = StepState(net, loom_residuals=False)
    state.set_input(inputs(net, 1)[0])
    state.step_forward()
    dy = np.ones(state.output().size)
    dx_plain = state.step_backward(dy)
    plain = {k: g.copy() for k, g in net.gradients()}
    dx_scaled = state.step_backward(dy, grad_scaling=True)  # accumulates onto plain
    np.testing.assert_array_equal(dx_plain, dx_scaled)  # scaling touches weights only
    for i, slot in enumerate(net.layers):
        mine = {n: plain[(*net.coords(i), n)] for n in slot.params}
        want = scale_layer_grads(slot.module, slot.spec, mine)
        for n in slot.params:
            np.testing.assert_allclose(net.grad((*net.coords(i), n)), mine[n] + want[n],
                                       rtol=1e-6, atol=1e-7)


def test_apply_gradients_is_sgd_then_zero():
    net = net_around(CASES[0])
    state = StepState(net)
    state.set_input(inputs(net, 1)[0])
    state.step_forward()
    state.step_backward(np.ones(state.output().size))
    before = {k: w.copy() for k, w in net.parameters()}
    grads = {k: g.copy() for k, g in net.gradients()}
    state.apply_gradients(0.5)
    for k, w in net.parameters():
        np.testing.assert_allclose(w, before[k] - np.float32(0.5) * grads[k], rtol=1e-6)
    assert list(net.gradients()) == []
