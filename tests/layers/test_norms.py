"""LayerNorm and RMSNorm: LOOM's forward (fixture), true gradients (finite differences, torch),
config round trips, every error branch, and the pure-Python (NUMBA_DISABLE_JIT) kernels."""

from __future__ import annotations

import numpy as np
import pytest

from loomdist import ConfigError, ShapeError
from loomdist.gradcheck import check_layer
from loomdist.kernels.cpu import norm as kn
from loomdist.layers import layer_norm as LN
from loomdist.layers import rms_norm as RMS
from loomdist.registry import call_layer_init
from tests.cases import CASES
from tests.loomfix import f32, load

NORM_CASES = [c for c in CASES if c.kind in ("layer_norm", "rms_norm")]
MODULES = {"layer_norm": LN, "rms_norm": RMS}


def _params(module, spec, seed=7):
    rng = np.random.default_rng(seed)
    return {k: v + rng.normal(0, 0.3, v.shape) for k, v in module.init(spec, rng).items()}


def _py(kernel):
    return getattr(kernel, "py_func", kernel)  # plain function under NUMBA_DISABLE_JIT=1


def _x(shape, seed=0, scale=1.0, shift=0.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale + shift


@pytest.mark.parametrize("case", NORM_CASES, ids=lambda c: c.name)
def test_finite_differences_registry_cases(case):
    module = MODULES[case.kind]
    check_layer(module, case.spec, _params(module, case.spec), case.input())


@pytest.mark.parametrize("module, spec, shape", [
    (LN, LN.Spec(5, 0.0), (4, 5)),                 # epsilon 0 -> LOOM's default
    (LN, LN.Spec(3, 0.5, "tanh"), (2, 3)),         # large eps: the eps term matters
    (LN, LN.Spec(1), (3, 1)),                      # single feature: y = beta, dx = 0
    (RMS, RMS.Spec(3, 0.0), (2, 9)),               # three rows per sample
    (RMS, RMS.Spec(6, 0.25), (1, 6)),
])
def test_finite_differences_more_shapes(module, spec, shape):
    check_layer(module, spec, _params(module, spec), _x(shape, shift=0.5))


def test_layer_norm_stats_survive_a_large_offset():
    spec = LN.Spec(8)
    x = _x((3, 8), scale=1e-2, shift=1e3)  # mean >> std: one-pass sums must not cancel
    y, _ = LN.forward(spec, LN.init(spec, None), x)
    mu, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(var + 1e-5), rtol=1e-9, atol=1e-9)
    check_layer(LN, spec, _params(LN, spec), x)


def test_layer_norm_matches_loom_fixture():
    cfgs, weights, data = load("layernorm")
    spec = LN.from_config(cfgs[0])
    params = {k: f32(weights[0][k]).reshape(s) for k, s in LN.param_shapes(spec).items()}
    x = f32(data["input"]).reshape(data["batch_size"], -1)
    y, _ = LN.forward(spec, params, x)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y.ravel(), f32(data["output"]), atol=1e-6, rtol=1e-5)


def test_layer_norm_config_round_trip_equals_fixture():
    cfgs, _, _ = load("layernorm")
    cfg = LN.to_config(LN.from_config(cfgs[0]))
    assert cfg == cfgs[0] and list(cfg) == list(cfgs[0])
    assert isinstance(cfg["epsilon"], float)


@pytest.mark.parametrize("module", [LN, RMS])
def test_config_round_trip_keeps_order_and_zero_epsilon(module):
    spec = module.Spec(4, 0.0, "tanh")
    cfg = module.to_config(spec, branch=True)
    assert list(cfg) == ["type", "activation", "norm_size", "epsilon"]
    assert cfg["type"] == module.TYPE and cfg["epsilon"] == 0.0
    assert module.from_config(cfg) == spec and spec.eps == module.DEFAULT_EPSILON


def _torch_layer_norm(torch, x, p, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), p["gamma"], p["beta"], eps)


def _torch_rms_norm(torch, x, p, eps):
    rows = x.reshape(-1, p["gamma"].shape[0])
    y = rows / torch.sqrt((rows * rows).mean(-1, keepdim=True) + eps) * p["gamma"]
    return y.reshape(x.shape)


@pytest.mark.parametrize("module, spec, shape, oracle", [
    (LN, LN.Spec(7), (5, 7), _torch_layer_norm),
    (LN, LN.Spec(4, 0.0), (3, 4), _torch_layer_norm),
    (RMS, RMS.Spec(4), (3, 12), _torch_rms_norm),
    (RMS, RMS.Spec(5, 0.0), (2, 5), _torch_rms_norm),
])
def test_torch_float64_oracle(module, spec, shape, oracle):
    torch = pytest.importorskip("torch")
    p, x = _params(module, spec), _x(shape, seed=3)
    dy = _x(shape, seed=4)
    y, cache = module.forward(spec, p, x)
    dx, grads = module.backward(spec, p, cache, dy)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx = torch.tensor(x, requires_grad=True)
    ty = oracle(torch, tx, tp, spec.eps)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    assert set(grads) == set(p)
    for k in p:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=k)


@pytest.mark.parametrize("module, spec", [(LN, LN.Spec(512)), (RMS, RMS.Spec(64))])
def test_float32_path_tracks_float64(module, spec):
    p64, x64 = _params(module, spec), _x((37, 512), seed=5, shift=0.3)
    dy64 = _x(x64.shape, seed=6)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    y32, c32 = module.forward(spec, p32, x64.astype(np.float32))
    y64, c64 = module.forward(spec, {k: v.astype(np.float64) for k, v in p32.items()},
                              x64.astype(np.float32).astype(np.float64))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=2e-5)
    dx32, g32 = module.backward(spec, p32, c32, dy64.astype(np.float32))
    dx64, g64 = module.backward(spec, p64, c64, dy64.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(dx32, dx64, rtol=1e-3, atol=1e-4)
    for k in g32:
        assert g32[k].dtype == np.float32
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3, atol=1e-3, err_msg=k)


def test_epsilon_zero_means_loom_default():
    x = _x((2, 6)).astype(np.float32)
    for module in (LN, RMS):
        p = _params(module, module.Spec(6), seed=1)
        a = module.forward(module.Spec(6, 0.0), p, x)[0]
        b = module.forward(module.Spec(6, module.DEFAULT_EPSILON), p, x)[0]
        assert np.array_equal(a, b)
        c = module.forward(module.Spec(6, 0.5), p, x)[0]
        assert not np.allclose(a, c)


def test_rms_norm_rows_ignore_the_batch():
    spec, x = RMS.Spec(3), _x((2, 6), seed=2)
    p = _params(RMS, spec)
    y, _ = RMS.forward(spec, p, x)
    rows = x.reshape(4, 3)
    expect = rows / np.sqrt((rows ** 2).mean(1, keepdims=True) + 1e-6) * p["gamma"]
    np.testing.assert_allclose(y, expect.reshape(2, 6), rtol=1e-12)


def test_forward_backward_are_pure():
    for module, spec, shape in ((LN, LN.Spec(4), (3, 4)), (RMS, RMS.Spec(2), (2, 4))):
        p, x = _params(module, spec), _x(shape)
        p0, x0 = {k: v.copy() for k, v in p.items()}, x.copy()
        y, cache = module.forward(spec, p, x)
        dy = np.ones_like(y)
        module.backward(spec, p, cache, dy)
        assert np.array_equal(x, x0) and np.array_equal(dy, np.ones_like(y))
        assert all(np.array_equal(p[k], p0[k]) for k in p)


def test_init_loom_gradients_and_init_functions():
    ln = call_layer_init("InitLayerNormLayer", [6])
    assert ln == LN.Spec(6, 1e-5)
    p = LN.init(ln, np.random.default_rng(0))
    assert np.array_equal(p["gamma"], np.ones(6)) and np.array_equal(p["beta"], np.zeros(6))
    assert p["gamma"].dtype == np.float32 and tuple(p) == LN.WEIGHT_KEYS
    rms = call_layer_init("init_rms_norm_layer", [4, 0.01])
    assert rms == RMS.Spec(4, 0.01) and tuple(RMS.init(rms, None)) == RMS.WEIGHT_KEYS
    g = {"gamma": np.arange(3.0), "beta": -np.arange(3.0)}
    kg, bg = LN.loom_gradients(LN.Spec(3), g)
    assert np.array_equal(kg, g["gamma"]) and np.array_equal(bg, g["beta"])
    kg, bg = RMS.loom_gradients(RMS.Spec(3), {"gamma": np.ones(3)})
    assert np.array_equal(kg, np.ones(3)) and bg is None
    assert (LN.RESIDUAL, RMS.RESIDUAL) == ("pre_add", "store_input")


@pytest.mark.parametrize("module", [LN, RMS])
@pytest.mark.parametrize("args, match", [
    ((0,), r"norm_size must be >= 1 \(got 0\)"),
    (("six",), "norm_size must be an integer"),
    ((4, -1e-3), r"epsilon must be a finite number >= 0 \(got -0.001\)"),
    ((4, float("nan")), "epsilon must be a finite number >= 0"),
    ((4, "tiny"), "epsilon must be a number"),
    ((4, True), "epsilon must be a number"),
    ((4, 1e-5, "gelu"), "unknown activation 'gelu'"),
])
def test_config_errors(module, args, match):
    with pytest.raises(ConfigError, match=match):
        module.Spec(*args)


def test_shape_errors():
    with pytest.raises(ShapeError, match="input features per sample is 7, the layer expects 6"):
        LN.Spec(6).out_features(7)
    assert LN.Spec(6).out_features(6) == 6
    with pytest.raises(ShapeError, match="10, not a multiple of norm_size 4"):
        RMS.Spec(4).out_features(10, "layer (0, 0, 1)")
    assert RMS.Spec(4).out_features(12) == 12


def _run_ln(fwd, bwd, x, dy, g, b):
    y, mean, rstd, dx, part = (np.empty_like(x), np.empty(len(x)), np.empty(len(x)),
                               np.empty_like(x), np.zeros((2, 2, x.shape[1])))
    fwd(x, g, b, 1e-5, 1 / x.shape[1], y, mean, rstd)
    bwd(x, g, mean, rstd, dy, 1 / x.shape[1], dx, part)
    return y, dx, part.sum(0)


def _run_rms(fwd, bwd, x, dy, g, b):
    y, rstd, dx, part = np.empty_like(x), np.empty(len(x)), np.empty_like(x), np.zeros((3, 6))
    fwd(x, g, 1e-6, 1 / x.shape[1], y, rstd)
    bwd(x, g, rstd, dy, 1 / x.shape[1], dx, part)
    return y, dx, part.sum(0)


@pytest.mark.parametrize("run, fwd, bwd", [(_run_ln, kn._ln_forward, kn._ln_backward),
                                           (_run_rms, kn._rms_forward, kn._rms_backward)])
def test_pure_python_kernels_match_jit(run, fwd, bwd):
    """The py_func twins are what NUMBA_DISABLE_JIT=1 runs."""
    args = [np.random.default_rng(s).standard_normal(n) for s, n in
            ((1, (5, 6)), (2, (5, 6)), (3, 6), (4, 6))]
    for a, b in zip(run(fwd, bwd, *args), run(_py(fwd), _py(bwd), *args)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
