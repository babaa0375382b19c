"""train_with_stepping (LOOM's TrainWithStepping) against a numpy reference written from
loom-training.md 1.3-1.5 and 3.3, plus its loader, logging, callback and config rules."""

import numpy as np
import pytest

import loomdist
from loomdist.errors import ConfigError, DataError, ShapeError
from loomdist.layers import dense
from loomdist.tween import SteppingConfig, train_with_stepping


def one_dense(batch=2):
    net = loomdist.Network(0, 1, 1, 1, batch_size=batch)
    net.set_layer(0, 0, 0, dense.Spec(3, 2, "tanh"), rng=0)
    return net


def samples(n=12, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(batch * 3).astype(np.float32),
             rng.standard_normal(batch * 2).astype(np.float32)) for _ in range(n)]


def loader(data):
    return lambda step: (*data[step], True) if step < len(data) else (None, None, False)


def attention(g):
    """LOOM's gradient attention: g * N * softmax(|g|)."""
    a = np.abs(g.astype(np.float64))
    e = np.exp(a - a.max())
    return (g * (g.size * e / e.sum())).astype(np.float32)


def reference(net, data, lr, log_every):
    """One dense layer (L = 1: a tick is a forward pass), SGD, attention on, no clipping."""
    k = net.param((0, 0, 0, "kernel")).copy()
    b = net.param((0, 0, 0, "biases")).copy()
    losses, summed = [], 0.0
    for step, (x, t) in enumerate(data):
        xb = x.reshape(2, 3)
        y = np.tanh(xb @ k + b)
        diff = (y.ravel() - t).astype(np.float64)
        summed += float(np.sum(diff ** 2) / diff.size)
        dz = (2 * (y.ravel() - t) / t.size).reshape(2, 2) * (1 - y * y)
        gk = attention((xb.T @ dz).ravel()).reshape(k.shape)
        gb = attention(dz.sum(axis=0))
        k, b = k - np.float32(lr) * gk, b - np.float32(lr) * gb
        if (step + 1) % log_every == 0:
            losses.append(summed / log_every)
            summed = 0.0
    return k, b, losses


def test_sgd_steps_match_the_spec_reference():
    net, data = one_dense(), samples()
    k, b, losses = reference(one_dense(), data, 0.05, 4)
    res = train_with_stepping(net, SteppingConfig(learning_rate=0.05, log_every=4),
                              loader(data), len(data))
    np.testing.assert_allclose(net.param((0, 0, 0, "kernel")), k, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.param((0, 0, 0, "biases")), b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.loss_history, losses, rtol=1e-5)
    assert res.final_loss == res.loss_history[-1]
    assert res.lr_history == [float(np.float32(0.05))] * 3  # LOOM's LRs are float32
    assert res.total_steps == 12 and res.steps_per_second > 0


def test_log_points_callbacks_and_early_stop():
    seen, saved = [], []
    cfg = SteppingConfig(learning_rate=0.1, log_every=2, checkpoint_every=3,
                         lr_schedule="linear", total_steps=10,
                         on_step=lambda s, lr, loss: seen.append((s, lr)),
                         on_checkpoint=lambda s, net: saved.append(s))
    res = train_with_stepping(one_dense(), cfg, loader(samples(7)), 20)
    lrs = [float(np.float32(0.1 + (0.001 - 0.1) * s / 10)) for s in (1, 3, 5)]
    assert seen == list(zip([2, 4, 6], lrs))  # step + 1, the LR of that step
    assert saved == [3, 6]
    assert res.total_steps == 20 and len(res.loss_history) == 3  # the loader stopped at 7


def test_accumulated_steps_update_once_with_their_summed_gradients():
    data = samples(4)
    a, b = one_dense(), one_dense()
    train_with_stepping(a, SteppingConfig(learning_rate=0.1, grad_accum_steps=2,
                                          grad_scaling=False), loader(data), 2)
    b.zero_grad()
    for x, t in data[:2]:  # the same two gradients at the starting weights, summed
        y = b.forward(x)
        b.backward(2 * (y - t) / t.size)
    want = b.param((0, 0, 0, "kernel")) - np.float32(0.1) * b.grad((0, 0, 0, "kernel"))
    np.testing.assert_allclose(a.param((0, 0, 0, "kernel")), want, rtol=1e-6, atol=1e-7)


def test_loom_zero_defaults_of_the_optimizers():
    adamw = SteppingConfig(optimizer="adamw").optim_config()
    assert (adamw.beta1, adamw.beta2, adamw.epsilon, adamw.weight_decay) == (0.9, 0.999,
                                                                             1e-8, 0.01)
    mom = SteppingConfig(optimizer="sgd_momentum", nesterov=True).optim_config()
    assert (mom.name, mom.momentum, mom.nesterov) == ("momentum", 0.9, True)
    rms = SteppingConfig(optimizer="rmsprop").optim_config()
    assert (rms.alpha, rms.rms_momentum) == (0.99, 0.0)
    assert SteppingConfig().optim_config().name == "sgd"
    assert SteppingConfig(lr_schedule="polynomial").schedule().power == 1.0


def test_adamw_training_lowers_the_loss():
    data = samples(4) * 30
    res = train_with_stepping(one_dense(), SteppingConfig(optimizer="adamw",
                                                          learning_rate=0.01, log_every=20),
                              loader(data), len(data))
    assert res.loss_history[-1] < res.loss_history[0]


def test_bad_configs_loaders_and_targets():
    with pytest.raises(ConfigError, match="unknown optimizer: adam;"):
        SteppingConfig(optimizer="adam")
    with pytest.raises(ConfigError, match="unknown scheduler: cyclic;"):
        SteppingConfig(lr_schedule="cyclic")
    with pytest.raises(ConfigError, match="log_every must be >= 0"):
        SteppingConfig(log_every=-1)
    with pytest.raises(DataError, match="returned no data for step 0"):
        train_with_stepping(one_dense(), None, lambda s: (None, None, False), 5)
    x = np.zeros(6, np.float32)
    with pytest.raises(ShapeError, match="train_with_stepping: the target has 3 values"):
        train_with_stepping(one_dense(), None, lambda s: (x, np.zeros(3), True), 2)
    with pytest.raises(ShapeError, match="train_with_stepping: the target is None"):
        train_with_stepping(one_dense(), None, lambda s: (x, None, True), 2)
    with pytest.raises(DataError, match="ok=True without an input for step 1"):
        train_with_stepping(one_dense(), None,
                            lambda s: (x if s == 0 else None, np.zeros(4), True), 3)
    with pytest.raises(ConfigError, match="learning_rate must be >= 0"):
        SteppingConfig(learning_rate=-0.1)


def test_the_network_method_runs_a_deeper_grid():
    net = loomdist.Network(0, 1, 1, 3, batch_size=1)
    for i, (n_in, n_out) in enumerate([(3, 4), (4, 4), (4, 2)]):
        net.set_layer(0, 0, i, dense.Spec(n_in, n_out, "tanh"), rng=i)
    before = net.param((0, 0, 2, "kernel")).copy()
    res = net.train_with_stepping(SteppingConfig(learning_rate=0.05, log_every=5),
                                  loader(samples(10, batch=1)), 10)
    assert len(res.loss_history) == 2 and not np.allclose(net.param((0, 0, 2, "kernel")),
                                                           before)
