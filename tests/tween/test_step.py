"""StepState forward: double buffering, L-tick latency, LOOM's self-residual recurrence,
accessors, StepForwardSingle, TargetDelay, and every error branch."""

from __future__ import annotations

import numpy as np
import pytest

import loomdist
from loomdist.errors import ConfigError, ShapeError
from loomdist.layers import LAYERS
from loomdist.tween import StepState, TargetDelay
from tests.cases import CASES
from tests.tween.step_nets import grid_net, inputs, net_around, per_sample, residual_net


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_constant_input_gives_forward_from_tick_L(case):
    net = net_around(case)
    state = StepState(net, loom_residuals=False)
    x = inputs(net, 1)[0].astype(np.float32)
    state.set_input(x)
    want = per_sample(net, x)
    for tick in range(1, net.total_layers + 3):
        state.step_forward()
        if tick >= net.total_layers:
            np.testing.assert_allclose(state.output(), want, rtol=1e-5, atol=1e-6,
                                       err_msg=f"tick {tick}")
        else:
            assert not np.allclose(state.output(), want, atol=1e-6), f"tick {tick}"
    assert state.step_count == net.total_layers + 2


def test_cross_layer_residual_travels_with_the_data():
    net = residual_net()
    state = StepState(net, loom_residuals=False)
    x = inputs(net, 1)[0].astype(np.float32)
    state.set_input(x)
    for _ in range(net.total_layers):
        state.step_forward()
    np.testing.assert_allclose(state.output(), per_sample(net, x), rtol=1e-5, atol=1e-6)
    for i in range(net.total_layers + 1):  # every buffer equals the forward's activation
        np.testing.assert_allclose(state.layer_output(i), net.activations()[i],
                                   rtol=1e-5, atol=1e-6, err_msg=f"buffer {i}")


def test_input_needs_exactly_L_ticks():
    net = residual_net()
    for loom in (True, False):
        a, b = StepState(net, loom), StepState(net, loom)
        a.set_input(inputs(net, 1)[0])
        for tick in range(1, net.total_layers + 1):
            a.step_forward()
            b.step_forward()
            same = np.array_equal(a.output(), b.output())
            assert same == (tick < net.total_layers), (loom, tick)
            assert np.array_equal(a.layer_output(tick), b.layer_output(tick)) is False


# spec 3.2: out_t for input h_t and the layer's own previous output out_{t-1} (zeros at first)
RECURRENCE = {"multi_head_attention": lambda f, h, prev: f(h) + prev,
              "swiglu": lambda f, h, prev: f(h) + prev,
              "layer_norm": lambda f, h, prev: f(h + prev),
              "rms_norm": lambda f, h, prev: f(h)}


@pytest.mark.parametrize("kind", sorted(RECURRENCE))
def test_loom_residuals_follow_loom_recurrence(kind):
    """Layer 1 is the self-residual kind; its input is dense(x), constant from tick 2 on."""
    spec = LAYERS[kind].Spec(*{"multi_head_attention": (4, 2), "swiglu": (4, 3)}.get(kind, (4,)))
    net = grid_net([LAYERS["dense"].Spec(3, 4, "tanh"), spec], (1, 1, 2), 1, 3)
    state = StepState(net, loom_residuals=True)
    state.set_input(np.array([0.3, -0.7, 1.1]))
    m, layer = net.layers[1].module, net.layers[1]
    h, prev = np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32)  # what layer 1 reads
    def f(v):
        return m.forward(layer.spec, layer.params, v)[0]

    for _ in range(5):
        state.step_forward()
        want = RECURRENCE[kind](f, h, prev)
        np.testing.assert_allclose(state.output(), want.ravel(), rtol=1e-5, atol=1e-6)
        prev, h = want, state.layer_output(1).reshape(1, 4)
    if kind in ("multi_head_attention", "swiglu"):  # accumulates: never settles on forward
        assert not np.allclose(state.output(), net.forward(np.array([0.3, -0.7, 1.1])))


def test_loom_residual_dense_only_equals_plain_mode():
    net = net_around(CASES[0])
    a, b = StepState(net, True), StepState(net, False)
    for x in inputs(net, 6):
        for s in (a, b):
            s.set_input(x)
            s.step_forward()
        np.testing.assert_array_equal(a.output(), b.output())


def test_step_forward_single_writes_in_place():
    net = residual_net()
    a, b = StepState(net, False), StepState(net, False)
    x = inputs(net, 1)[0]
    a.set_input(x)
    b.set_input(x)
    for i in range(net.total_layers):  # a sweep of singles is one full forward
        a.step_forward_single(i)
    assert a.step_count == 0
    np.testing.assert_allclose(a.output(), per_sample(net, x.astype(np.float32)), rtol=1e-5,
                               atol=1e-6)
    b.step_forward_single(0)
    np.testing.assert_array_equal(b.layer_output(1), a.layer_output(1))
    np.testing.assert_array_equal(b.layer_output(2), np.zeros(16))


def test_accessors_copy_and_keep_the_input_form():
    net = residual_net()
    state = StepState(net)
    assert state.num_layers == 8 and state.output().shape == (4,)
    state.set_input(np.ones((3, 3)))  # batched input of another batch size
    state.step_forward()
    assert state.layer_output(1).shape == (3, 8) and state.layer_output(0).shape == (3, 3)
    out = state.layer_output(1)
    out += 1
    assert not np.array_equal(out, state.layer_output(1))
    assert state.layer_data()[0].shape == (3, 3) and len(state.residuals()) == 8


def test_input_size_argument_and_inference():
    net = residual_net()
    assert StepState(net, input_size=6).layer_data()[0].shape == (2, 3)
    mha = loomdist.Network(0, 1, 1, 1)
    mha.set_layer(0, 0, 0, LAYERS["multi_head_attention"].Spec(4, 2))
    assert StepState(mha, input_size=8).layer_data()[1].shape == (1, 8)
    with pytest.raises(ConfigError, match="cannot infer the input size"):
        StepState(mha)
    with pytest.raises(ConfigError, match="not a multiple of batch_size 2"):
        StepState(net, input_size=7)
    with pytest.raises(ShapeError, match="input features per sample is 5"):
        StepState(net, input_size=10)


def test_errors():
    net = residual_net()
    state = StepState(net)
    with pytest.raises(ShapeError, match="does not hold rows of 3 features"):
        state.set_input(np.ones(5))
    with pytest.raises(ShapeError, match="does not hold rows of 3 features"):
        state.set_input(np.ones((2, 4)))
    with pytest.raises(ShapeError, match="does not hold rows of 3 features"):
        state.set_input(np.ones((1, 1, 3)))
    with pytest.raises(ConfigError, match="index 9 is outside 0...8"):
        state.layer_output(9)
    with pytest.raises(ConfigError, match="layer -1 is outside 0...7"):
        state.step_forward_single(-1)
    with pytest.raises(ConfigError, match="call step_forward first"):
        state.step_backward(np.ones(4))
    state.step_forward_single(0)
    with pytest.raises(ConfigError, match="call step_forward first"):
        state.step_backward(np.ones(4))
    state.step_forward()
    with pytest.raises(ShapeError, match="gradient has 3 values, the output has 4"):
        state.step_backward(np.ones(3))
    empty = loomdist.Network(3, 1, 1, 2)
    empty.set_layer(0, 0, 0, LAYERS["dense"].Spec(3, 2))
    with pytest.raises(ConfigError, match=r"layer \(0, 0, 1\) \(empty\) is empty"):
        StepState(empty)


def test_target_delay_lags_length_minus_one():
    delay = TargetDelay(3)
    got = [delay.push(np.array([t, -t])) for t in range(6)]
    assert got[:2] == [None, None] and len(delay) == 2
    assert [g.tolist() for g in got[2:]] == [[0, 0], [1, -1], [2, -2], [3, -3]]
    target = np.array([7.0])
    one = TargetDelay(1)
    popped = one.push(target)
    target[0] = 8.0  # the queue holds a copy
    assert popped.tolist() == [7.0] and len(one) == 0
    with pytest.raises(ConfigError, match="length must be >= 1"):
        TargetDelay(0)


def test_span_steps_a_run_of_layers():
    net = residual_net()
    whole, tail = StepState(net, False), StepState(net, False, span=(3, 8))
    assert tail.num_layers == 5 and tail.layer_data()[0].shape == (2, 8)
    whole.set_input(inputs(net, 1)[0])
    for _ in range(3):
        whole.step_forward()
    tail.set_input(whole.layer_output(3), whole.residuals()[3])
    for _ in range(5):
        tail.step_forward()
    want = per_sample(net, inputs(net, 1)[0].astype(np.float32))
    np.testing.assert_array_equal(tail.output(), want)
    for bad in ((3, 2), (0, 9), (1, 2, 3), (0.5, 2)):
        with pytest.raises(ConfigError, match="is not a run of layers inside 0..8"):
            StepState(net, span=bad)
