"""Optimizers, schedules and clipping against LOOM's formulas (and torch where equivalent)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loomdist import ConfigError
from loomdist.optim import OptimConfig, Optimizer, Schedule, clip_global_norm, decays

K = (0, 0, 0, "kernel")


def _run(cfg, steps=3, lr=0.1):
    w = np.array([1.0, -2.0, 0.5], np.float32)
    opt = Optimizer(cfg)
    gs = [np.array([0.1, 0.2, -0.3], np.float32) * (i + 1) for i in range(steps)]
    for g in gs:
        opt.step([(K, w)], [(K, g)], lr)
    return w, gs


def test_sgd():
    w, gs = _run(OptimConfig("sgd"))
    np.testing.assert_allclose(w, [1.0, -2.0, 0.5] - 0.1 * sum(gs), rtol=1e-6)


def test_momentum_first_step_uses_dampening_like_loom():
    w, gs = _run(OptimConfig("momentum", momentum=0.9, dampening=0.5), steps=1)
    np.testing.assert_allclose(w, np.array([1.0, -2.0, 0.5]) - 0.1 * 0.5 * gs[0], rtol=1e-6)


def test_adamw_matches_formula_and_skips_bias_decay():
    cfg = OptimConfig("adamw", weight_decay=0.1)
    w = np.array([1.0], np.float32)
    b = np.array([1.0], np.float32)
    opt = Optimizer(cfg)
    g = np.array([0.5], np.float32)
    opt.step([(K, w), ((0, 0, 0, "biases"), b)], [(K, g), ((0, 0, 0, "biases"), g)], 0.01)
    m, v = 0.1 * 0.5, 0.001 * 0.25
    upd = (m / 0.1) / (math.sqrt(v / 0.001) + 1e-8)
    np.testing.assert_allclose(w, 1 - 0.01 * (upd + 0.1), rtol=1e-6)
    np.testing.assert_allclose(b, 1 - 0.01 * upd, rtol=1e-6)
    assert not decays((0, 0, 0, "branch1.conv_bias")) and not decays((0, 0, 0, "gamma"))


def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    w0 = np.array([1.0, -2.0, 0.5], np.float32)
    t = torch.tensor(w0.copy(), requires_grad=True)
    topt = torch.optim.Adam([t], lr=0.1)
    w, gs = _run(OptimConfig("adam"))
    for g in gs:
        t.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(w, t.detach().numpy(), rtol=1e-5)


def test_rmsprop_has_eps_inside_sqrt():
    w, gs = _run(OptimConfig("rmsprop", alpha=0.9, epsilon=1e-2), steps=1)
    v = 0.1 * gs[0] ** 2
    np.testing.assert_allclose(w, [1.0, -2.0, 0.5] - 0.1 * gs[0] / np.sqrt(v + 1e-2), rtol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="lion"), "unknown"), (dict(momentum=1.5), "momentum must be in"),
    (dict(epsilon=0.0), "epsilon must be > 0"),
])
def test_bad_optimizer_configs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        OptimConfig(**kwargs)


def test_schedules_follow_loom():
    s = Schedule("linear", 1.0, total_steps=10)
    assert s(0) == 1.0 and s(5) == pytest.approx(0.505) and s(10) == pytest.approx(0.01)
    c = Schedule("cosine", 1.0, total_steps=10, min_lr=0.1)
    assert c(0) == 1.0 and c(5) == pytest.approx(0.55) and c(10) == pytest.approx(0.1)
    assert Schedule("exponential", 1.0, decay_rate=0.5, decay_steps=2)(3) == \
        pytest.approx(0.5 ** 1.5)
    assert Schedule("step", 1.0, decay_rate=0.5, step_size=2)(5) == 0.25
    assert Schedule("polynomial", 1.0, total_steps=4, power=2)(2) == 0.25
    w = Schedule("warmup", 1.0, warmup_steps=4)
    assert [w(i) for i in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    wc = Schedule("warmup_cosine", 1.0, total_steps=12, warmup_steps=2)
    assert wc(0) == 0.5 and wc(2) == 1.0 and wc(12) == 0.0
    with pytest.raises(ConfigError, match="lr_schedule 'cyclic' is unknown"):
        Schedule("cyclic")


def test_clip_global_norm():
    g = [np.array([3.0], np.float32), np.array([4.0], np.float32)]
    assert clip_global_norm(g, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate(g), [0.6, 0.8], rtol=1e-6)
    g2 = [np.array([0.3], np.float32)]
    clip_global_norm(g2, 0.0)
    assert g2[0][0] == np.float32(0.3)
