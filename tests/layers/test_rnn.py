"""RNN: LOOM's recorded forward, true BPTT gradients (finite differences, torch), LOOM's own
(inexact) backward reproduced to pin the gradient layout, float32 path, config, init, errors."""

from __future__ import annotations

import numpy as np
import pytest

from loomdist import ConfigError, ShapeError
from loomdist.gradcheck import check_layer
from loomdist.kernels.cpu import recurrent as kr
from loomdist.layers import rnn as R
from loomdist.registry import call_layer_init
from tests.cases import CASES
from tests.loomfix import f32, fixture_layer, perturbed_params

RNN_CASES = [c for c in CASES if c.kind == "rnn"]


def _params(spec, seed=7, dtype=np.float64, spread=0.3):
    return perturbed_params(R, spec, seed, dtype, spread)


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _fixture():
    cfg, spec, params, data = fixture_layer(R, "rnn")
    return cfg, spec, params, f32(data["input"]).reshape(data["batch_size"], -1), data


def _loom_backward(p, x3, hs, g3):
    """LOOM's rnnBackwardCPU loop order (spec): gradHidden is never reset and is updated in
    place while the hidden-unit loop still reads it. float32, like Go."""
    nb, seq, _ = x3.shape
    n = hs.shape[2]
    gi, db = np.zeros_like(x3), np.zeros(n, np.float32)
    dwi, dwh = np.zeros_like(p["weight_ih"]), np.zeros_like(p["weight_hh"])
    gh = np.zeros((nb, n), np.float32)
    for t in range(seq - 1, -1, -1):
        for b in range(nb):
            gh[b] += g3[b, t]
            prev = hs[b, t - 1] if t else np.zeros(n, np.float32)
            for h in range(n):
                gp = gh[b, h] * (np.float32(1) - hs[b, t, h] ** 2)
                db[h] += gp
                gi[b, t] += p["weight_ih"][h] * gp
                dwi[h] += gp * x3[b, t]
                gh[b] += p["weight_hh"][h] * gp
                dwh[h] += gp * prev
    return gi, {"weight_ih": dwi, "weight_hh": dwh, "bias_h": db}


@pytest.mark.parametrize("case", RNN_CASES, ids=lambda c: c.name)
def test_finite_differences_registry_cases(case):
    check_layer(R, case.spec, _params(case.spec), case.input())


@pytest.mark.parametrize("spec, shape", [(R.Spec(2, 3), (3, 8)), (R.Spec(4, 2, 1), (1, 4)),
                                         (R.Spec(1, 5, 6), (2, 6))])
def test_finite_differences_more_shapes(spec, shape):
    check_layer(R, spec, _params(spec, seed=2), _x(shape, seed=1))


def test_forward_matches_loom_fixture():
    cfg, spec, params, x, data = _fixture()
    y, _ = R.forward(spec, params, x)
    assert y.dtype == np.float32 and y.shape == (2, 12)
    np.testing.assert_allclose(y.ravel(), f32(data["output"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.ravel(), f32(data["activations"][1]), rtol=1e-5, atol=1e-6)


def test_loom_backward_port_reproduces_fixture_and_pins_gradient_layout():
    """LOOM's numbers come from its inexact loop; our port of it matches them, so
    loom_gradients' concat(dW_ih, dW_hh, db) layout is LOOM's."""
    cfg, spec, params, x, data = _fixture()
    y, cache = R.forward(spec, params, x)
    g = f32(data["grad_output"]).reshape(y.shape)
    gi, grads = _loom_backward(params, x.reshape(2, 3, 3), y.reshape(2, 3, 4), g.reshape(2, 3, 4))
    kg, bg = R.loom_gradients(spec, grads)
    assert bg is None and data["bias_gradients"] == [None]
    np.testing.assert_allclose(gi.ravel(), f32(data["grad_input"]), atol=1e-6)
    np.testing.assert_allclose(kg, f32(data["kernel_gradients"][0]), atol=1e-6)
    dx, true = R.backward(spec, params, cache, g)  # the true gradient differs (quirk 2)
    assert np.abs(dx.ravel() - f32(data["grad_input"])).max() > 0.1
    assert np.abs(R.loom_gradients(spec, true)[0] - kg).max() > 0.1


def test_true_gradient_on_fixture_weights():
    _, spec, params, x, _ = _fixture()
    check_layer(R, spec, params, x)


@pytest.mark.parametrize("spec, shape", [(R.Spec(3, 5, 4), (3, 12)), (R.Spec(6, 4), (1, 42))])
def test_torch_float64_oracle(spec, shape):
    torch = pytest.importorskip("torch")
    p, x, = _params(spec), _x(shape, seed=3)
    y, cache = R.forward(spec, p, x)
    dy = _x(y.shape, seed=4)
    dx, grads = R.backward(spec, p, cache, dy)
    m = torch.nn.RNN(spec.input_size, spec.hidden_size, nonlinearity="tanh", batch_first=True,
                     dtype=torch.float64)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.tensor(p["weight_ih"]))
        m.weight_hh_l0.copy_(torch.tensor(p["weight_hh"]))
        m.bias_ih_l0.copy_(torch.tensor(p["bias_h"]))
        m.bias_hh_l0.zero_()
    tx = torch.tensor(x.reshape(shape[0], -1, spec.input_size), requires_grad=True)
    ty, _ = m(tx)
    ty.backward(torch.tensor(dy).view(ty.shape))
    np.testing.assert_allclose(y, ty.detach().numpy().reshape(y.shape), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy().reshape(shape), rtol=1e-9, atol=1e-11)
    assert list(grads) == list(R.WEIGHT_KEYS)
    for k, tk in (("weight_ih", "weight_ih_l0"), ("weight_hh", "weight_hh_l0"),
                  ("bias_h", "bias_ih_l0")):
        np.testing.assert_allclose(grads[k], getattr(m, tk).grad.numpy(), rtol=1e-9,
                                   atol=1e-11, err_msg=k)


def test_each_sample_is_its_own_sequence():
    spec = R.Spec(3, 4)
    p, x = _params(spec), _x((3, 15))
    y, _ = R.forward(spec, p, x)
    for b in range(3):
        np.testing.assert_allclose(y[b:b + 1], R.forward(spec, p, x[b:b + 1])[0], atol=1e-14)


def test_float32_path_tracks_float64():
    spec = R.Spec(16, 32)
    p32 = _params(spec, dtype=np.float32, spread=0.1)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    x32 = (_x((5, 16 * 20), seed=5) * 2).astype(np.float32)
    y32, c32 = R.forward(spec, p32, x32)
    y64, c64 = R.forward(spec, p64, x32.astype(np.float64))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, atol=5e-6)
    dy32 = _x(y32.shape, seed=6).astype(np.float32)
    dx32, g32 = R.backward(spec, p32, c32, dy32)
    dx64, g64 = R.backward(spec, p64, c64, dy32.astype(np.float64))
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, rtol=1e-3, atol=1e-4 * np.abs(dx64).max())
    for k in g32:
        assert g32[k].dtype == np.float32 and g32[k].flags.c_contiguous, k
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3,
                                   atol=1e-4 * np.abs(g64[k]).max(), err_msg=k)


def test_float32_tanh_is_accurate():
    v = np.linspace(-12, 12, 20001).astype(np.float32)
    y = np.zeros((1, 1, v.size), np.float32)
    y[0, 0] = v
    kr._rnn_step(y, np.zeros((1, v.size), np.float32), np.zeros(v.size, np.float32), 0)
    np.testing.assert_allclose(y[0, 0], np.tanh(v.astype(np.float64)), rtol=0, atol=4e-7)


def test_pure_python_kernels_match_jit():
    """The py_func twins are what NUMBA_DISABLE_JIT=1 runs."""
    rng = np.random.default_rng(8)
    pre, hh = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4))
    b = rng.standard_normal(4)
    dy, dhn = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4))
    outs = []
    for fn in (kr._rnn_step, getattr(kr._rnn_step, "py_func", kr._rnn_step)):
        y = pre.copy()
        fn(y, hh, b, 1)
        outs.append(y)
    for fn in (kr._rnn_step_back, getattr(kr._rnn_step_back, "py_func", kr._rnn_step_back)):
        dz = np.zeros_like(pre)
        fn(dy, dhn, np.tanh(pre), 2, dz)
        outs.append(dz)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(outs[2], outs[3], rtol=1e-13, atol=1e-14)
    assert np.abs(outs[2][:, 2]).min() > 0 and not outs[2][:, :2].any()


def test_forward_backward_are_pure():
    spec = R.Spec(2, 3)
    p, x = _params(spec), _x((2, 8))
    p0, x0 = {k: v.copy() for k, v in p.items()}, x.copy()
    y, cache = R.forward(spec, p, x)
    y0, dy = y.copy(), np.ones_like(y)
    dx1, g1 = R.backward(spec, p, cache, dy)
    dx2, g2 = R.backward(spec, p, cache, dy)  # the cache survives a second backward
    np.testing.assert_array_equal(dx1, dx2)
    assert all(np.array_equal(g1[k], g2[k]) for k in g1)
    assert np.array_equal(x, x0) and np.array_equal(y, y0)
    assert all(np.array_equal(p[k], p0[k]) for k in p)


def test_init_is_xavier_with_zero_bias():
    spec = call_layer_init("InitRNNLayer", [64, 192, 8, 10])
    assert spec == R.Spec(64, 192, 10) and spec.activation == "tanh"
    p = R.init(spec, np.random.default_rng(0))
    assert tuple(p) == R.WEIGHT_KEYS
    assert {k: v.shape for k, v in p.items()} == R.param_shapes(spec)
    for k, std in (("weight_ih", np.sqrt(2 / (64 + 192))), ("weight_hh", np.sqrt(2 / 384))):
        assert p[k].dtype == np.float32 and abs(p[k].std() / std - 1) < 0.05, k
    assert p["bias_h"].dtype == np.float32 and not p["bias_h"].any()
    assert R.init_rnn_layer(3, 4, 2, 0) == R.Spec(3, 4)


def test_loom_gradients_concatenate_in_loom_order():
    spec = R.Spec(2, 3)
    grads = {k: np.full(s, i, np.float32) for i, (k, s) in
             enumerate(R.param_shapes(spec).items())}
    kg, bg = R.loom_gradients(spec, grads)
    np.testing.assert_array_equal(kg, [0] * 6 + [1] * 9 + [2] * 3)
    assert bg is None


def test_config_round_trip_matches_fixture():
    cfg, spec, _, _, _ = _fixture()
    assert spec == R.Spec(3, 4, 3)
    out = R.to_config(spec)
    assert out == cfg and list(out) == list(cfg)
    assert list(out) == ["type", "activation", "input_size", "seq_length", "hidden_size"]
    assert R.to_config(spec, branch=True) == cfg
    assert R.from_config({"type": "rnn", "input_size": 2, "hidden_size": 3}) == R.Spec(2, 3)
    assert R.RESIDUAL is None and R.TYPE == "rnn"


@pytest.mark.parametrize("args, match", [
    ((0, 4), r"input_size must be >= 1 \(got 0\)"),
    ((3, 0), r"hidden_size must be >= 1 \(got 0\)"),
    ((3, 4, -1), r"seq_length must be >= 0 \(got -1\)"),
    ((3.5, 4), "input_size must be an integer"),
    ((3, 4, 0, "swish"), "unknown activation 'swish'"),
])
def test_config_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        R.Spec(*args)


@pytest.mark.parametrize("spec, features, match", [
    (R.Spec(3, 4, 3), 12, "input features per sample is 12, the layer expects 9"),
    (R.Spec(3, 4), 7, "is 7, not a positive multiple of input_size 3"),
    (R.Spec(3, 4), 0, "is 0, not a positive multiple of input_size 3"),
])
def test_shape_errors(spec, features, match):
    with pytest.raises(ShapeError, match=match):
        spec.out_features(features, "layer (0, 0, 0)")
    with pytest.raises(ShapeError, match=match):
        R.forward(spec, _params(spec), np.zeros((2, features)))


def test_out_features():
    assert R.Spec(3, 4, 3).out_features(9) == 12
    assert R.Spec(3, 4).out_features(15) == 20  # seq_length 0: inferred (5 steps)
