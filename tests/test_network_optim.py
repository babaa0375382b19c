"""LOOM's optimizer API on Network (set_optimizer, apply_gradients, apply_gradients_*)."""

import numpy as np
import pytest

import loomdist
from loomdist.errors import ConfigError
from loomdist.layers import dense
from loomdist.optim import OptimConfig, Optimizer
from loomdist.tween import SteppingConfig, StepState, train_with_stepping

KEY = (0, 0, 1, "kernel")


def net_with_grads(seed=0):
    net = loomdist.Network(0, 1, 1, 2, batch_size=2)
    net.set_layer(0, 0, 0, dense.Spec(3, 4, "tanh"), rng=1)
    net.set_layer(0, 0, 1, dense.Spec(4, 2, "sigmoid"), rng=2)
    backward(net, seed)
    return net


def backward(net, seed):
    rng = np.random.default_rng(seed)
    y = net.forward(rng.standard_normal(6).astype(np.float32))
    net.backward(y - rng.standard_normal(4).astype(np.float32))


def test_apply_gradients_without_an_optimizer_is_sgd_on_every_parameter():
    net = net_with_grads()
    want = {k: p - np.float32(0.1) * net.grad(k) for k, p in net.parameters()}
    net.apply_gradients(0.1)
    for k, p in net.parameters():
        np.testing.assert_allclose(p, want[k], rtol=1e-6, err_msg=str(k))
    assert dict(net.gradients()) == {}


def test_a_set_optimizer_is_used_and_keeps_its_state():
    a, b = net_with_grads(), net_with_grads()
    a.set_optimizer(OptimConfig("adamw", weight_decay=0.01))
    opt = Optimizer(OptimConfig("adamw", weight_decay=0.01))
    for seed in (0, 1):
        if seed:
            backward(a, seed), backward(b, seed)
        a.apply_gradients(0.01)
        opt.step(b.parameters(), b.gradients(), 0.01)
        b.zero_grad()
    np.testing.assert_array_equal(a.param(KEY), b.param(KEY))
    assert a.get_optimizer().state["t"] == 2
    a.reset_optimizer()
    assert a.get_optimizer().state == {"t": 0, "slots": {}}


def test_conveniences_make_an_optimizer_once_and_ignore_new_hyper_parameters():
    net = net_with_grads()
    net.apply_gradients_adamw(0.01, beta1=0.8)
    opt = net.get_optimizer()
    backward(net, 1)
    net.apply_gradients_adamw(0.01, beta1=0.5)  # LOOM: an AdamW exists, so 0.5 is ignored
    assert net.get_optimizer() is opt and opt.cfg.beta1 == 0.8 and opt.state["t"] == 2
    net.apply_gradients_rmsprop(0.01, momentum=0.5)  # another kind: replaced
    net.apply_gradients_rmsprop(0.01, momentum=0.5)
    rms = net.get_optimizer()
    assert rms.cfg.name == "rmsprop" and rms.state["t"] == 2  # state kept (LOOM resets it)
    net.apply_gradients_sgd_momentum(0.01, nesterov=True)
    assert net.get_optimizer().cfg.nesterov


def test_set_optimizer_takes_an_optimizer_a_config_or_none():
    net = net_with_grads()
    with pytest.raises(ConfigError, match="set_optimizer: expected an optim.Optimizer, an "
                                          "OptimConfig or None, got str"):
        net.set_optimizer("adamw")
    net.set_optimizer(OptimConfig("rmsprop"))
    net.set_optimizer(None)
    assert net.get_optimizer() is None


def test_a_step_mode_loop_with_apply_gradients_equals_train_with_stepping():
    rng = np.random.default_rng(3)
    data = [(rng.standard_normal(6).astype(np.float32),
             rng.standard_normal(4).astype(np.float32)) for _ in range(8)]
    a, b = net_with_grads(), net_with_grads()
    a.zero_grad(), b.zero_grad()
    train_with_stepping(a, SteppingConfig(optimizer="adamw", learning_rate=0.01),
                        lambda s: (*data[s], True), len(data))
    state = StepState(b, input_size=6)
    for x, t in data:
        state.set_input(x)
        state.step_forward()
        out = state.output()
        state.step_backward(2 * (out - t) / t.size, grad_scaling=True)
        b.apply_gradients_adamw(0.01)
    for k, p in a.parameters():
        np.testing.assert_allclose(p, b.param(k), rtol=1e-6, atol=1e-7, err_msg=str(k))
