"""Literal values of tween's scalar rules: depth scale, derivative from output, clamps,
link budgets, explosion multiplier, and a hand-checked TweenStep on a one-layer network."""

import numpy as np
import pytest

from loomdist.errors import ConfigError
from loomdist.layers import dense
from loomdist.network import Network
from loomdist.tween.config import TweenConfig, default_tween_config, validated_for
from loomdist.tween.explosion import ExplosionTracker
from loomdist.tween.mathx import clamp_target, depth_scale, derivative_from_output
from loomdist.tween.passes import link_budgets
from loomdist.tween.state import TweenState

# spec 4.6: depthScale(d) for d = 0..19
DEPTH = [1, 1.2, 1.44, 1.728, 2.074, 2.488, 2.986, 3.583, 4.300, 5.160, 6.192, 7.026, 7.565,
         7.972, 8.303, 8.584, 8.829, 9.046, 9.243, 9.422]


def test_depth_scale_literal_values():
    assert [round(depth_scale(d), 3) for d in range(20)] == DEPTH
    assert depth_scale(-3) == 1.0
    assert depth_scale(500, 10.0) == 100.0  # the cap


def test_derivative_from_output_literals():
    cfg = TweenConfig()
    y = np.array([-0.5, 0.0, 0.5], np.float32)
    np.testing.assert_allclose(derivative_from_output("relu", y, cfg), [0, 0, 1.1])
    np.testing.assert_allclose(derivative_from_output("leaky_relu", y, cfg), [0.1, 1, 1])
    np.testing.assert_allclose(derivative_from_output("sigmoid", y, cfg),
                               [-0.74, 0.01, 0.26], rtol=1e-6)
    np.testing.assert_allclose(derivative_from_output("tanh", y, cfg), [0.76, 1.01, 0.76],
                               rtol=1e-6)
    # softplus: sigma of the *output* + 0.01 (LOOM's quirk)
    np.testing.assert_allclose(derivative_from_output("softplus", y, cfg),
                               [0.38754067, 0.51, 0.63245933], rtol=1e-6)
    np.testing.assert_allclose(derivative_from_output("linear", y, cfg), [1, 1, 1])


def test_target_clamps_legacy_and_chain():
    cfg = TweenConfig()
    v = np.array([-20, -0.99, 0.5, 0.99, 20], np.float32)
    np.testing.assert_allclose(clamp_target(v, "tanh", cfg, True),
                               [-0.95, -0.95, 0.5, 0.95, 0.95])
    np.testing.assert_allclose(clamp_target(v, "sigmoid", cfg, False),
                               [0.05, 0.05, 0.5, 0.95, 0.95])
    np.testing.assert_allclose(clamp_target(v, "relu", cfg, False), [0, 0, 0.5, 0.99, 10])
    np.testing.assert_allclose(clamp_target(v, "leaky_relu", cfg, True),
                               [-10, -0.99, 0.5, 0.99, 10])
    np.testing.assert_array_equal(clamp_target(v, "softplus", cfg, True), v)


def test_link_budget_gap_and_barrier_literals():
    acts = [np.zeros(2, np.float32), np.array([1, 0], np.float32),
            np.array([0.01, 0.01], np.float32)]
    targets = [None, np.array([0, 1], np.float32), np.array([1, 0], np.float32)]
    b, g, barrier = link_budgets(acts, targets)
    np.testing.assert_allclose(b, [0.5, 0.5])       # orthogonal; tiny norm -> 0.5
    np.testing.assert_allclose(g, [1.0, 0.4901], rtol=1e-5)
    np.testing.assert_allclose(barrier, [0.5, 0.25])


def test_explosion_multiplier_sequence():
    e = ExplosionTracker()
    assert e.multiplier(5.0, False) == 1.0 and e.gap_samples == 0
    seq = [round(e.multiplier(g, True), 6) for g in [1.0] * 10 + [1, 2, 4, 8, 1, 1]]
    assert seq == [1.0] * 11 + [0.7, 0.49, 0.343, 0.36015, 0.378157]
    assert e.baseline_gap == 1.0 and e.explosion_count == 0


def test_explosion_strong_damping_and_floor():
    e = ExplosionTracker(prev_avg_gap=1.0, baseline_gap=1.0, gap_samples=10)
    rates = [e.multiplier(2.0 ** (k + 1), True) for k in range(14)]
    assert e.explosion_count == 14
    assert rates[5] == pytest.approx(0.7 ** 5 * 0.5)   # count 6 -> x0.5
    assert rates[-1] == 0.01                           # floor


def _one_layer():
    net = Network(2, 1, 1, 1)
    net.set_layer(0, 0, 0, dense.Spec(2, 2, "sigmoid"),
                  params={"kernel": np.array([[0.5, -0.5], [0.25, 0.75]]),
                          "biases": np.zeros(2)})
    return net


def test_tween_step_hand_checked():
    """y = sigmoid([1, 1]) = 0.7310586; g = [0.2689414, -0.7310586];
    d = g * (y(1-y) + 0.01) = [0.0555664, -0.1510448]; r = 0.1 * DenseRate 1 * depth 1;
    b += r d; W += (1 - 0.9) * r * x d^T (velocity starts at 0)."""
    net = _one_layer()
    ts = TweenState(net)
    loss = ts.tween_step(net, np.array([1.0, 2.0]), 0, 2, 0.1)
    assert loss == pytest.approx(0.6067761, rel=1e-6)
    p = net.layers[0].params
    np.testing.assert_allclose(p["biases"], [0.00555664, -0.01510448], rtol=1e-5)
    np.testing.assert_allclose(p["kernel"], [[0.50055566, -0.50151045],
                                             [0.25111133, 0.74697910]], rtol=1e-6)
    # diagnostic error for the input: W d / sqrt(2)
    np.testing.assert_allclose(ts.chain_gradients[0], [0.07304835, -0.07028107], rtol=1e-5)
    np.testing.assert_allclose(ts.link_budgets, [0.8535534], rtol=1e-6)
    np.testing.assert_allclose(ts.gaps, [0.3033881], rtol=1e-6)
    assert ts.tween_steps == 1


def test_legacy_tween_step_hand_checked():
    """Legacy: budget 0.8535534 -> lambda = 0.1 (0.5 + 0.5 B); gap = onehot - y;
    b += lambda gap 0.1; W += 0.1 * lambda x gap 0.01."""
    net = _one_layer()
    ts = TweenState(net, TweenConfig(use_chain_rule=False))
    ts.tween_step(net, np.array([1.0, 2.0]), 0, 2, 0.1)
    lam = 0.1 * (0.5 + 0.5 * 0.8535534)
    gap = np.array([0.2689414, -0.7310586])
    np.testing.assert_allclose(net.layers[0].params["biases"], lam * gap * 0.1, rtol=1e-5)
    dW = 0.1 * lam * np.outer([1, 2], gap) * 0.01
    np.testing.assert_allclose(net.layers[0].params["kernel"],
                               np.array([[0.5, -0.5], [0.25, 0.75]]) + dW, rtol=1e-6)


def test_config_defaults_and_errors():
    cfg = default_tween_config(6)
    assert cfg.frontier_min == 5 and cfg.use_chain_rule and not cfg.explosion_detection
    assert (cfg.dense_rate, cfg.rnn_rate, cfg.lstm_rate, cfg.attention_rate, cfg.norm_rate,
            cfg.swiglu_rate, cfg.conv2d_rate) == (1.0, 0.5, 0.5, 0.2, 0.1, 0.2, 0.1)
    assert validated_for(TweenConfig(frontier_min=9), 4).frontier_min == 3
    with pytest.raises(ConfigError, match="total_layers must be an int"):
        default_tween_config(0)
    with pytest.raises(ConfigError, match="pass a finite number"):
        TweenConfig(dense_rate=float("nan"))
    with pytest.raises(ConfigError, match="eval_frequency must be >= 1"):
        TweenConfig(eval_frequency=0)
    with pytest.raises(ConfigError, match="prune_patience must be >= 0"):
        TweenConfig(prune_patience=-1)
