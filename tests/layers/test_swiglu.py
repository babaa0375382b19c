"""SwiGLU: LOOM's flat-layout forward, true gradients (finite differences, torch), the float32
fast path, config round trip, init, and every error branch."""

from __future__ import annotations

import numpy as np
import pytest

from loomdist import ConfigError, ShapeError
from loomdist.gradcheck import check_layer
from loomdist.kernels.cpu import norm as kn
from loomdist.layers import swiglu as S
from loomdist.registry import call_layer_init
from tests.cases import CASES

SWIGLU_CASES = [c for c in CASES if c.kind == "swiglu"]


def _params(spec, seed=7, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {k: (v + rng.normal(0, 0.3, v.shape)).astype(dtype)
            for k, v in S.init(spec, rng).items()}


def _py(kernel):
    return getattr(kernel, "py_func", kernel)  # plain function under NUMBA_DISABLE_JIT=1


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * 2


def _loom_forward(spec, p, x):
    """LOOM's loop over flat arrays: G[j*inter+i], U[j*inter+i], D[j*hidden+i], per row."""
    hid, inter = spec.input_height, spec.output_height
    G, U, D = (p[k].ravel() for k in ("gate_weights", "up_weights", "down_weights"))
    flat, out = x.ravel(), np.zeros(x.size)
    for r in range(x.size // hid):
        row = flat[r * hid:(r + 1) * hid]
        h = np.zeros(inter)
        for i in range(inter):
            g = sum(row[j] * G[j * inter + i] for j in range(hid)) + p["gate_bias"][i]
            u = sum(row[j] * U[j * inter + i] for j in range(hid)) + p["up_bias"][i]
            h[i] = g / (1 + np.exp(-g)) * u
        for i in range(hid):
            out[r * hid + i] = sum(h[j] * D[j * hid + i] for j in range(inter)) \
                + p["down_bias"][i]
    return out.reshape(x.shape)


@pytest.mark.parametrize("case", SWIGLU_CASES, ids=lambda c: c.name)
def test_finite_differences_registry_cases(case):
    check_layer(S, case.spec, _params(case.spec), case.input())


@pytest.mark.parametrize("spec, shape", [(S.Spec(3, 5, "tanh"), (3, 3)),
                                         (S.Spec(2, 1), (1, 6)),
                                         (S.Spec(5, 2), (2, 10))])
def test_finite_differences_more_shapes(spec, shape):
    check_layer(S, spec, _params(spec, seed=2), _x(shape, seed=1))


@pytest.mark.parametrize("spec, shape", [(S.Spec(4, 6), (2, 8)), (S.Spec(3, 2), (3, 3))])
def test_forward_matches_loom_flat_layout(spec, shape):
    p, x = _params(spec), _x(shape)
    y, _ = S.forward(spec, p, x)
    np.testing.assert_allclose(y, _loom_forward(spec, p, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec, shape", [(S.Spec(4, 6), (3, 8)), (S.Spec(8, 3), (2, 8))])
def test_torch_float64_oracle(spec, shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    p, x, dy = _params(spec), _x(shape, seed=3), _x(shape, seed=4)
    y, cache = S.forward(spec, p, x)
    dx, grads = S.backward(spec, p, cache, dy)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx = torch.tensor(x, requires_grad=True)
    rows = tx.reshape(-1, spec.input_height)
    h = F.silu(rows @ tp["gate_weights"] + tp["gate_bias"]) * (rows @ tp["up_weights"]
                                                                + tp["up_bias"])
    ty = (h @ tp["down_weights"] + tp["down_bias"]).reshape(shape)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    assert set(grads) == set(p)
    for k in p:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=k)


def test_float32_path_tracks_float64():
    spec = S.Spec(16, 40)
    p32 = _params(spec, dtype=np.float32)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    x32 = (_x((50, 32), seed=5) * 4).astype(np.float32)  # gate values up to ~+-100
    dy32 = _x(x32.shape, seed=6).astype(np.float32)
    y32, c32 = S.forward(spec, p32, x32)
    y64, c64 = S.forward(spec, p64, x32.astype(np.float64))
    assert y32.dtype == np.float32
    scale = np.abs(y64).max()
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5 * scale)
    dx32, g32 = S.backward(spec, p32, c32, dy32)
    dx64, g64 = S.backward(spec, p64, c64, dy32.astype(np.float64))
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5 * np.abs(dx64).max())
    for k in g32:
        assert g32[k].dtype == np.float32
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-4,
                                   atol=1e-5 * np.abs(g64[k]).max(), err_msg=k)


def test_float32_sigmoid_is_accurate_over_its_range():
    a = np.concatenate([np.linspace(-100, 100, 20001), [-1e4, 1e4, 0.0]]).astype(np.float32)
    a = a.reshape(1, -1)
    zero = np.zeros(a.shape[1], np.float32)
    h32 = kn.glu_forward(a.copy(), np.ones_like(a), zero, zero)
    a64 = a.astype(np.float64)
    exact = a64 * np.exp(-np.logaddexp(0, -a64))
    np.testing.assert_allclose(h32, exact, rtol=3e-7, atol=1e-30)


def test_pure_python_glu_kernels_match_jit():
    """The py_func twins are what NUMBA_DISABLE_JIT=1 runs."""
    rng = np.random.default_rng(8)
    a, u, d = (rng.standard_normal((4, 5)) * 3 for _ in range(3))
    bg, bu = rng.standard_normal(5), rng.standard_normal(5)
    outs = []
    for fwd, bwd in ((kn._glu_forward, kn._glu_backward),
                     (_py(kn._glu_forward), _py(kn._glu_backward))):
        aa, uu, h, dh, du, part = a.copy(), u.copy(), np.empty_like(a), d.copy(), \
            np.empty_like(a), np.zeros((3, 2, 5))
        fwd(aa, uu, bg, bu, h)
        bwd(aa, uu, dh, du, part)
        outs.append((aa, uu, h, dh, du, part.sum(0)))
    for x, y in zip(*outs):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


def test_forward_backward_are_pure():
    spec = S.Spec(3, 4)
    p, x = _params(spec), _x((2, 6))
    p0, x0 = {k: v.copy() for k, v in p.items()}, x.copy()
    y, cache = S.forward(spec, p, x)
    dy = np.ones_like(y)
    S.backward(spec, p, cache, dy)
    S.backward(spec, p, cache, dy)  # the cache survives a second backward
    assert np.array_equal(x, x0) and np.array_equal(dy, np.ones_like(y))
    assert all(np.array_equal(p[k], p0[k]) for k in p)


def test_init_is_xavier_with_zero_biases():
    spec = call_layer_init("InitSwiGLULayer", [64, 192])
    assert spec == S.Spec(64, 192)
    p = S.init(spec, np.random.default_rng(0))
    assert tuple(p) == ("gate_weights", "up_weights", "down_weights", "gate_bias", "up_bias",
                        "down_bias") == S.WEIGHT_KEYS
    assert {k: v.shape for k, v in p.items()} == S.param_shapes(spec)
    std = np.sqrt(2 / (64 + 192))
    for k in ("gate_weights", "up_weights", "down_weights"):
        assert p[k].dtype == np.float32 and abs(p[k].std() / std - 1) < 0.03, k
    assert not np.array_equal(p["gate_weights"], p["up_weights"])
    for k in ("gate_bias", "up_bias", "down_bias"):
        assert not p[k].any()


def test_loom_gradients_concatenate_in_loom_order():
    spec = S.Spec(2, 3)
    grads = {k: np.full(s, i, np.float32) for i, (k, s) in
             enumerate(S.param_shapes(spec).items())}
    kg, bg = S.loom_gradients(spec, grads)
    np.testing.assert_array_equal(kg, [0] * 6 + [1] * 6 + [2] * 6)
    np.testing.assert_array_equal(bg, [3] * 3 + [4] * 3 + [5] * 2)


def test_config_round_trip():
    cfg = {"type": "swiglu", "activation": "sigmoid", "input_height": 4, "output_height": 6}
    spec = S.from_config(cfg)
    assert spec == S.Spec(4, 6, "sigmoid")
    out = S.to_config(spec)
    assert out == cfg and list(out) == list(cfg)
    assert S.to_config(spec, branch=True) == cfg
    assert S.RESIDUAL == "post_add"


@pytest.mark.parametrize("args, match", [
    ((0, 4), r"input_height must be >= 1 \(got 0\)"),
    ((4, -2), r"output_height must be >= 1 \(got -2\)"),
    ((4.5, 2), "input_height must be an integer"),
    ((4, 2, "swish"), "unknown activation 'swish'"),
])
def test_config_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        S.Spec(*args)


def test_shape_errors():
    with pytest.raises(ShapeError, match="is 7, not a multiple of input_height 4"):
        S.Spec(4, 6).out_features(7, "layer (0, 0, 0)")
    assert S.Spec(4, 6).out_features(12) == 12


def test_reference_sigmoid_does_not_overflow():
    # regression: the pure-Python reference raised OverflowError for large negative inputs
    assert kn._sigmoid(-1e4) == 0.0 and kn._sigmoid(1e4) == 1.0
    assert abs(kn._sigmoid(-2.0) - 1 / (1 + np.exp(2.0))) < 1e-16
