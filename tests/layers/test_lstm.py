"""LSTM: LOOM's recorded forward, true BPTT gradients (finite differences, torch), LOOM's own
(inexact) backward reproduced to pin the gradient layout, float32 path, config, init, errors."""

from __future__ import annotations

import numpy as np
import pytest

from loomdist import ConfigError, ShapeError
from loomdist.gradcheck import check_layer
from loomdist.kernels.cpu import recurrent as kr
from loomdist.layers import lstm as L
from loomdist.registry import call_layer_init
from tests.cases import CASES
from tests.loomfix import f32, fixture_layer, perturbed_params

LSTM_CASES = [c for c in CASES if c.kind == "lstm"]


def _params(spec, seed=7, dtype=np.float64, spread=0.3):
    return perturbed_params(L, spec, seed, dtype, spread)


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _fixture():
    cfg, spec, params, data = fixture_layer(L, "lstm")
    return cfg, spec, params, f32(data["input"]).reshape(data["batch_size"], -1), data


def _sig(v):
    return 1 / (1 + np.exp(-v))


def _loom_forward_states(p, x3):
    """Per step gates (i, f, g, o), c_{t-1}, c_t, h_{t-1}, in float64 (reference)."""
    nb, seq, _ = x3.shape
    n = p["bias_i"].shape[0]
    h, c, states = np.zeros((nb, n)), np.zeros((nb, n)), []
    for t in range(seq):
        z = {g: x3[:, t] @ p[f"weight_i{g}"].T + h @ p[f"weight_h{g}"].T + p[f"bias_{g}"]
             for g in L.GATES}
        i, f, o, u = _sig(z["i"]), _sig(z["f"]), _sig(z["o"]), np.tanh(z["g"])
        c_new = f * c + i * u
        states.append((i, f, u, o, c, c_new, h))
        h, c = o * np.tanh(c_new), c_new
    return states


def _loom_backward(p, x3, g3):
    """LOOM's lstmBackwardCPU loop order (spec): gradHidden is never reset and is updated in
    place while the hidden-unit loop still reads it."""
    nb, seq, _ = x3.shape
    n = p["bias_i"].shape[0]
    states = _loom_forward_states(p, x3)
    gi = np.zeros_like(x3)
    grads = {k: np.zeros_like(v, dtype=np.float64) for k, v in p.items()}
    gh, gc = np.zeros((nb, n)), np.zeros((nb, n))
    for t in range(seq - 1, -1, -1):
        i, f, u, o, c_prev, c, h_prev = states[t]
        for b in range(nb):
            gh[b] += g3[b, t]
            for k in range(n):
                tc = np.tanh(c[b, k])
                dh = gh[b, k]
                gc[b, k] += dh * o[b, k] * (1 - tc * tc)
                dc = gc[b, k]
                gc[b, k] = dc * f[b, k]
                pre = {"i": dc * u[b, k] * i[b, k] * (1 - i[b, k]),
                       "f": dc * c_prev[b, k] * f[b, k] * (1 - f[b, k]),
                       "g": dc * i[b, k] * (1 - u[b, k] ** 2),
                       "o": dh * tc * o[b, k] * (1 - o[b, k])}
                for g, d in pre.items():
                    grads[f"bias_{g}"][k] += d
                    gi[b, t] += p[f"weight_i{g}"][k] * d
                    grads[f"weight_i{g}"][k] += d * x3[b, t]
                    gh[b] += p[f"weight_h{g}"][k] * d
                    grads[f"weight_h{g}"][k] += d * h_prev[b]
    return gi, grads


def _torch_lstm(torch, spec, p):
    m = torch.nn.LSTM(spec.input_size, spec.hidden_size, batch_first=True, dtype=torch.float64)
    with torch.no_grad():  # torch's gate order is also i, f, g, o; its second bias stays 0
        m.weight_ih_l0.copy_(torch.tensor(np.concatenate([p[f"weight_i{g}"] for g in L.GATES])))
        m.weight_hh_l0.copy_(torch.tensor(np.concatenate([p[f"weight_h{g}"] for g in L.GATES])))
        m.bias_ih_l0.copy_(torch.tensor(np.concatenate([p[f"bias_{g}"] for g in L.GATES])))
        m.bias_hh_l0.zero_()
    return m


@pytest.mark.parametrize("case", LSTM_CASES, ids=lambda c: c.name)
def test_finite_differences_registry_cases(case):
    check_layer(L, case.spec, _params(case.spec), case.input())


@pytest.mark.parametrize("spec, shape", [(L.Spec(2, 3), (3, 8)), (L.Spec(4, 2, 1), (1, 4)),
                                         (L.Spec(1, 5, 6), (2, 6))])
def test_finite_differences_more_shapes(spec, shape):
    check_layer(L, spec, _params(spec, seed=2), _x(shape, seed=1))


def test_forward_matches_loom_fixture():
    cfg, spec, params, x, data = _fixture()
    y, _ = L.forward(spec, params, x)
    assert y.dtype == np.float32 and y.shape == (2, 12)
    np.testing.assert_allclose(y.ravel(), f32(data["output"]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y.ravel(), f32(data["activations"][1]), rtol=1e-5, atol=1e-5)


def test_loom_backward_port_reproduces_fixture_and_pins_gradient_layout():
    """LOOM's numbers come from its inexact loop; our port of it matches them, so
    loom_gradients' per-gate concat(dW_ih, dW_hh, db) layout is LOOM's."""
    cfg, spec, params, x, data = _fixture()
    y, cache = L.forward(spec, params, x)
    g = f32(data["grad_output"]).reshape(y.shape)
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    gi, grads = _loom_backward(p64, x.reshape(2, 3, 3).astype(np.float64), g.reshape(2, 3, 4))
    kg, bg = L.loom_gradients(spec, grads)
    assert bg is None and data["bias_gradients"] == [None]
    np.testing.assert_allclose(gi.ravel(), f32(data["grad_input"]), atol=1e-5)
    np.testing.assert_allclose(kg, f32(data["kernel_gradients"][0]), atol=1e-5)
    dx, true = L.backward(spec, params, cache, g)  # the true gradient differs (quirk 2)
    assert np.abs(dx.ravel() - f32(data["grad_input"])).max() > 0.05
    assert np.abs(L.loom_gradients(spec, true)[0] - kg).max() > 0.05


def test_true_gradient_on_fixture_weights():
    _, spec, params, x, _ = _fixture()
    check_layer(L, spec, params, x)


@pytest.mark.parametrize("spec, shape", [(L.Spec(3, 5, 4), (3, 12)), (L.Spec(6, 4), (1, 42))])
def test_torch_float64_oracle(spec, shape):
    torch = pytest.importorskip("torch")
    p, x = _params(spec), _x(shape, seed=3)
    y, cache = L.forward(spec, p, x)
    dy = _x(y.shape, seed=4)
    dx, grads = L.backward(spec, p, cache, dy)
    m = _torch_lstm(torch, spec, p)
    tx = torch.tensor(x.reshape(shape[0], -1, spec.input_size), requires_grad=True)
    ty, _ = m(tx)
    ty.backward(torch.tensor(dy).view(ty.shape))
    np.testing.assert_allclose(y, ty.detach().numpy().reshape(y.shape), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy().reshape(shape), rtol=1e-9, atol=1e-11)
    assert list(grads) == list(L.WEIGHT_KEYS)
    n = spec.hidden_size
    for tk, keys in (("weight_ih_l0", L._IH), ("weight_hh_l0", L._HH), ("bias_ih_l0", L._B)):
        tg = getattr(m, tk).grad.numpy()
        for s, k in enumerate(keys):
            np.testing.assert_allclose(grads[k], tg[s * n:(s + 1) * n], rtol=1e-9, atol=1e-11,
                                       err_msg=k)


def test_each_sample_is_its_own_sequence():
    spec = L.Spec(3, 4)
    p, x = _params(spec), _x((3, 15))
    y, _ = L.forward(spec, p, x)
    for b in range(3):
        np.testing.assert_allclose(y[b:b + 1], L.forward(spec, p, x[b:b + 1])[0], atol=1e-14)


def test_float32_path_tracks_float64():
    spec = L.Spec(16, 32)
    p32 = _params(spec, dtype=np.float32, spread=0.1)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    x32 = (_x((5, 16 * 20), seed=5) * 2).astype(np.float32)
    y32, c32 = L.forward(spec, p32, x32)
    y64, c64 = L.forward(spec, p64, x32.astype(np.float64))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, atol=5e-6)
    dy32 = _x(y32.shape, seed=6).astype(np.float32)
    dx32, g32 = L.backward(spec, p32, c32, dy32)
    dx64, g64 = L.backward(spec, p64, c64, dy32.astype(np.float64))
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, rtol=1e-3, atol=1e-4 * np.abs(dx64).max())
    for k in g32:
        assert g32[k].dtype == np.float32 and g32[k].flags.c_contiguous, k
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3,
                                   atol=1e-4 * np.abs(g64[k]).max(), err_msg=k)


def _kernel_outputs(fn, rng, forward):
    nb, seq, n = 2, 3, 4
    gates, hh, b = rng.standard_normal((nb, seq, 4 * n)), rng.standard_normal((nb, 4 * n)), \
        rng.standard_normal(4 * n)
    c, y = rng.standard_normal((nb, seq, n)), np.zeros((nb, seq, n))
    if forward:
        fn(gates, hh, b, c[:, 0].copy(), c, y, 1)
        return gates, c, y
    dz, dcn = np.zeros((nb, seq, 4 * n)), rng.standard_normal((nb, n))
    fn(rng.standard_normal((nb, seq, n)), hh[:, :n].copy(), dcn, _sig(gates), c[:, 1].copy(), c,
       2, dz)
    return dz, dcn


@pytest.mark.parametrize("kernel", [kr._lstm_step, kr._lstm_step_back],
                         ids=lambda k: k.__name__)
def test_pure_python_kernels_match_jit(kernel):
    """The py_func twins are what NUMBA_DISABLE_JIT=1 runs."""
    forward = kernel is kr._lstm_step
    jit = _kernel_outputs(kernel, np.random.default_rng(8), forward)
    py = _kernel_outputs(getattr(kernel, "py_func", kernel), np.random.default_rng(8), forward)
    for a, b in zip(jit, py):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


def test_float32_sigmoid_is_accurate():
    v = np.linspace(-30, 30, 20001).astype(np.float32)
    n = v.size
    gates = np.zeros((1, 1, 4 * n), np.float32)
    gates[0, 0, :n] = v  # input gate (sigmoid) row
    gates[0, 0, 2 * n:3 * n] = v  # candidate (tanh) row
    c, y = np.zeros((1, 1, n), np.float32), np.zeros((1, 1, n), np.float32)
    kr._lstm_step(gates, np.zeros((1, 4 * n), np.float32), np.zeros(4 * n, np.float32),
                  np.zeros((1, n), np.float32), c, y, 0)
    v64 = v.astype(np.float64)
    np.testing.assert_allclose(gates[0, 0, :n], 1 / (1 + np.exp(-v64)), rtol=0, atol=3e-7)
    np.testing.assert_allclose(gates[0, 0, 2 * n:3 * n], np.tanh(v64), rtol=0, atol=4e-7)


def test_forward_backward_are_pure():
    spec = L.Spec(2, 3)
    p, x = _params(spec), _x((2, 8))
    p0, x0 = {k: v.copy() for k, v in p.items()}, x.copy()
    y, cache = L.forward(spec, p, x)
    y0, dy = y.copy(), np.ones_like(y)
    dx1, g1 = L.backward(spec, p, cache, dy)
    dx2, g2 = L.backward(spec, p, cache, dy)  # the cache survives a second backward
    np.testing.assert_array_equal(dx1, dx2)
    assert all(np.array_equal(g1[k], g2[k]) for k in g1)
    assert np.array_equal(x, x0) and np.array_equal(y, y0)
    assert all(np.array_equal(p[k], p0[k]) for k in p)


def test_init_is_xavier_with_forget_bias_one():
    spec = call_layer_init("InitLSTMLayer", [64, 192, 8, 10])
    assert spec == L.Spec(64, 192, 10) and spec.activation == "tanh"
    p = L.init(spec, np.random.default_rng(0))
    assert tuple(p) == L.WEIGHT_KEYS
    assert {k: v.shape for k, v in p.items()} == L.param_shapes(spec)
    for keys, std in ((L._IH, np.sqrt(2 / (64 + 192))), (L._HH, np.sqrt(2 / 384))):
        for k in keys:
            assert p[k].dtype == np.float32 and abs(p[k].std() / std - 1) < 0.05, k
    assert not np.array_equal(p["weight_ii"], p["weight_if"])
    for k in L._B:
        assert p[k].dtype == np.float32
        np.testing.assert_array_equal(p[k], 1.0 if k == "bias_f" else 0.0, err_msg=k)
    assert L.init_lstm_layer(3, 4, 2, 0) == L.Spec(3, 4)


def test_loom_gradients_concatenate_per_gate():
    spec = L.Spec(2, 3)
    grads = {k: np.full(s, L.WEIGHT_KEYS.index(k), np.float32) for k, s in
             L.param_shapes(spec).items()}
    kg, bg = L.loom_gradients(spec, grads)
    want = []
    for g in range(4):  # gate g: W_i (3x2), W_h (3x3), b (3,)
        want += [g] * 6 + [4 + g] * 9 + [8 + g] * 3
    np.testing.assert_array_equal(kg, want)
    assert bg is None


def test_config_round_trip_matches_fixture():
    cfg, spec, _, _, _ = _fixture()
    assert spec == L.Spec(3, 4, 3)
    out = L.to_config(spec)
    assert out == cfg and list(out) == list(cfg)
    assert list(out) == ["type", "activation", "input_size", "seq_length", "hidden_size"]
    assert L.to_config(spec, branch=True) == cfg
    assert L.from_config({"type": "lstm", "input_size": 2, "hidden_size": 3}) == L.Spec(2, 3)
    assert L.RESIDUAL is None and L.TYPE == "lstm"


@pytest.mark.parametrize("args, match", [
    ((0, 4), r"lstm\(0->4\): input_size must be >= 1 \(got 0\)"),
    ((3, 0), r"hidden_size must be >= 1 \(got 0\)"),
    ((3, 4, -1), r"seq_length must be >= 0 \(got -1\)"),
    ((3, "4"), "hidden_size must be an integer"),
    ((3, 4, 0, "swish"), "unknown activation 'swish'"),
])
def test_config_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        L.Spec(*args)


@pytest.mark.parametrize("spec, features, match", [
    (L.Spec(3, 4, 3), 6, "input features per sample is 6, the layer expects 9"),
    (L.Spec(3, 4), 10, "is 10, not a positive multiple of input_size 3"),
])
def test_shape_errors(spec, features, match):
    with pytest.raises(ShapeError, match=match):
        spec.out_features(features, "layer (0, 0, 0)")
    with pytest.raises(ShapeError, match=match):
        L.forward(spec, _params(spec), np.zeros((2, features)))


def test_out_features():
    assert L.Spec(3, 4, 3).out_features(9) == 12
    assert L.Spec(3, 4).out_features(15) == 20  # seq_length 0: inferred (5 steps)
