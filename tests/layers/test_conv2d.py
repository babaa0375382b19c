"""Conv2D: LOOM's recorded forward and exact gradients, finite differences, a torch oracle, the
chunked float32 path, the kernels' pure-Python twins, config round trip, init and errors."""

from __future__ import annotations

import numpy as np
import pytest

from loomdist import ConfigError, ShapeError
from loomdist.activations import ACTIVATIONS, activate
from loomdist.gradcheck import check_layer
from loomdist.kernels.cpu import conv as kc
from loomdist.layers import conv2d as L
from loomdist.registry import call_layer_init
from tests.cases import CASES
from tests.loomfix import f32, load

CONV_CASES = [c for c in CASES if c.kind == "conv2d"]
ACTS = ("relu", "sigmoid", "tanh", "softplus", "leaky_relu", "linear")


def _params(spec, seed=7, dtype=np.float64):
    """init() plus noise: nonzero biases and an asymmetric kernel."""
    rng = np.random.default_rng(seed)
    return {k: (v + rng.normal(0, 0.3, v.shape)).astype(dtype)
            for k, v in L.init(spec, rng).items()}


def _py(kernel):
    return getattr(kernel, "py_func", kernel)  # plain function under NUMBA_DISABLE_JIT=1


def _x(spec, batch, seed=0):
    n = spec.input_channels * spec.input_height * spec.input_width
    return np.random.default_rng(seed).standard_normal((batch, n))


def _fixture():
    cfgs, weights, data = load("conv2d")
    spec = L.from_config(cfgs[0])
    params = {k: f32(weights[0][k]).reshape(s) for k, s in L.param_shapes(spec).items()}
    return cfgs[0], spec, params, data


def _loom_forward(spec, p, x):
    """LOOM's direct loop: out[b][f][oy][ox] = act(bias[f] + sum_{c,ki,kj} in * kernel)."""
    s, (n, k) = spec, (x.shape[0], spec.kernel_size)
    xi = x.reshape(n, s.input_channels, s.input_height, s.input_width)
    z = np.zeros((n, s.filters, s.output_height, s.output_width))
    for b, f, oy, ox in np.ndindex(z.shape):
        acc = p["conv_bias"][f]
        for c, ki, kj in np.ndindex(s.input_channels, k, k):
            iy, ix = oy * s.stride - s.padding + ki, ox * s.stride - s.padding + kj
            if 0 <= iy < s.input_height and 0 <= ix < s.input_width:
                acc += xi[b, c, iy, ix] * p["kernel"][f, c, ki, kj]
        z[b, f, oy, ox] = acc
    return activate(s.activation, z).reshape(n, -1)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: c.name)
def test_finite_differences_registry_cases(case):
    check_layer(L, case.spec, _params(case.spec), case.input(), atol=case.tol)


@pytest.mark.parametrize("spec, batch", [
    (L.Spec(4, 5, 1, 2, 2, 1, 0, "sigmoid"), 2),
    (L.Spec(5, 4, 2, 1, 3, 2, 2, "softplus"), 1),
    (L.Spec(3, 3, 1, 2, 1, 1, 0, "relu"), 3),
    (L.Spec(7, 6, 2, 2, 4, 3, 1, "linear"), 2),
])
def test_finite_differences_more_geometries(spec, batch):
    check_layer(L, spec, _params(spec, seed=2), _x(spec, batch, seed=1))


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("geom", [(6, 5, 2, 3, 3, 1, 1), (7, 8, 2, 2, 3, 2, 2),
                                  (5, 5, 1, 2, 5, 1, 0)])
def test_forward_matches_loom_direct_loop(geom, act):
    spec = L.Spec(*geom, act)
    p, x = _params(spec), _x(spec, 2)
    y, _ = L.forward(spec, p, x)
    np.testing.assert_allclose(y, _loom_forward(spec, p, x), rtol=1e-12, atol=1e-12)


def test_fixture_forward_matches_loom():
    _, spec, params, data = _fixture()
    x = f32(data["input"]).reshape(data["batch_size"], -1)
    y, _ = L.forward(spec, params, x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.ravel(), f32(data["output"]), atol=1e-6, rtol=1e-5)


def test_fixture_gradients_match_loom():
    """LOOM's conv backward is exact: grad_input, kernel and bias gradients all agree."""
    _, spec, params, data = _fixture()
    x = f32(data["input"]).reshape(data["batch_size"], -1)
    y, cache = L.forward(spec, params, x)
    dx, grads = L.backward(spec, params, cache, f32(data["grad_output"]).reshape(y.shape))
    np.testing.assert_allclose(dx.ravel(), f32(data["grad_input"]), atol=1e-6, rtol=1e-5)
    kg, bg = L.loom_gradients(spec, grads)
    np.testing.assert_allclose(kg, f32(data["kernel_gradients"][0]), atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(bg, f32(data["bias_gradients"][0]), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("spec, batch", [
    (L.Spec(6, 7, 3, 4, 3, 1, 1, "leaky_relu"), 3),
    (L.Spec(9, 8, 2, 3, 3, 2, 1, "tanh"), 2),
    (L.Spec(5, 5, 2, 2, 2, 3, 2, "relu"), 2),
])
def test_torch_float64_oracle(spec, batch):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    p, x = _params(spec), _x(spec, batch, seed=3)
    y, cache = L.forward(spec, p, x)
    dy = np.random.default_rng(4).standard_normal(y.shape)
    dx, grads = L.backward(spec, p, cache, dy)
    tx = torch.tensor(x.reshape(batch, spec.input_channels, spec.input_height,
                                spec.input_width), requires_grad=True)
    tw = torch.tensor(p["kernel"], requires_grad=True)
    tb = torch.tensor(p["conv_bias"], requires_grad=True)
    z = F.conv2d(tx, tw, tb, spec.stride, spec.padding)
    ty = {"leaky_relu": lambda: F.leaky_relu(z, 0.1), "tanh": lambda: torch.tanh(z),
          "relu": lambda: torch.relu(1.1 * z)}[spec.activation]()
    ty.backward(torch.tensor(dy.reshape(ty.shape)))
    np.testing.assert_allclose(y, ty.detach().numpy().reshape(batch, -1), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy().reshape(batch, -1), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grads["kernel"], tw.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grads["conv_bias"], tb.grad.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("chunk", [1, 2 * 27 * 56 * 4])  # 1 sample, 2 samples (5 = 2+2+1)
@pytest.mark.parametrize("act", ACTS)
def test_float32_chunked_path_tracks_float64(monkeypatch, act, chunk):
    """Several batch chunks (small CHUNK_BYTES) in float32 against one float64 chunk."""
    spec = L.Spec(8, 7, 3, 4, 3, 1, 1, act)
    p32, x = _params(spec, dtype=np.float32), _x(spec, 5, seed=5).astype(np.float32)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    y64, c64 = L.forward(spec, p64, x.astype(np.float64))
    dy = np.random.default_rng(6).standard_normal(y64.shape)
    dx64, g64 = L.backward(spec, p64, c64, dy)
    assert L._geometry(spec, 5, np.float64)[2] == 5
    monkeypatch.setattr(L, "CHUNK_BYTES", chunk)
    assert L._geometry(spec, 5, np.float32)[2] == max(1, chunk // (27 * 56 * 4))
    y32, c32 = L.forward(spec, p32, x)
    dx32, g32 = L.backward(spec, p32, c32, dy.astype(np.float32))
    assert y32.dtype == dx32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-5, atol=1e-5)
    for k in g64:
        assert g32[k].dtype == np.float32
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-5, atol=1e-4, err_msg=k)


@pytest.mark.parametrize("geom", [(6, 5, 2, 3, 1), (7, 9, 3, 2, 2), (2, 3, 5, 1, 3)])
def test_pure_python_kernels_match_jit(geom):
    """The py_func twins are what NUMBA_DISABLE_JIT=1 runs; im2col is checked by hand."""
    H, W, k, stride, pad = geom
    x = np.random.default_rng(8).standard_normal((2, 3, H, W))
    oh, ow = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    want = np.empty((2, 3 * k * k, oh, ow))
    for c, ki, kj in np.ndindex(3, k, k):
        want[:, (c * k + ki) * k + kj] = xp[:, c, ki:ki + stride * oh:stride,
                                            kj:kj + stride * ow:stride]
    for im2col, col2im in ((kc._im2col, kc._col2im),
                           (_py(kc._im2col), _py(kc._col2im))):
        cols = np.full_like(want, np.nan)  # padding must be written, not assumed
        im2col(x, k, stride, pad, cols)
        np.testing.assert_array_equal(cols, want)
        r, dx = np.random.default_rng(1).standard_normal(want.shape), np.full_like(x, np.nan)
        col2im(r, k, stride, pad, dx)
        # col2im is im2col's adjoint: <im2col(x), r> == <x, col2im(r)> for every x and r
        np.testing.assert_allclose(np.sum(dx * x), np.sum(want * r), rtol=1e-12)
        e = np.zeros_like(x)
        e[1, 2, H - 1, W - 1] = 1  # col2im of im2col(one-hot) counts the windows covering it
        im2col(e, k, stride, pad, cols)
        col2im(cols, k, stride, pad, dx)
        assert dx[1, 2, H - 1, W - 1] == (want[1, 2 * k * k:] == x[1, 2, H - 1, W - 1]).sum()


@pytest.mark.parametrize("act", ACTS)
def test_pure_python_activation_kernels_match_jit(act):
    rng = np.random.default_rng(9)
    z0, b, dy = rng.standard_normal((2, 3, 5)), rng.standard_normal(3), rng.standard_normal(
        (2, 3, 5))
    outs = []
    for fwd, bwd in ((kc._bias_act, kc._act_back_bias),
                     (_py(kc._bias_act), _py(kc._act_back_bias))):
        z, y, dz, db = z0.copy(), np.empty_like(z0), np.empty_like(z0), np.ones(3)
        fwd(z, b, ACTIVATIONS[act], y)
        bwd(z, y, dy, ACTIVATIONS[act], dz, db)
        outs.append((z, y, dz, db))
    for u, v in zip(*outs):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(outs[0][3], 1 + outs[0][2].sum(axis=(0, 2)), rtol=1e-12)


def test_forward_backward_are_pure():
    spec = L.Spec(5, 5, 2, 3, 3, 1, 1, "tanh")
    p, x = _params(spec), _x(spec, 2)
    p0, x0 = {k: v.copy() for k, v in p.items()}, x.copy()
    y, cache = L.forward(spec, p, x)
    dy = np.ones_like(y)
    g1 = L.backward(spec, p, cache, dy)
    g2 = L.backward(spec, p, cache, dy)  # the cache survives a second backward
    assert np.array_equal(x, x0) and np.array_equal(dy, np.ones_like(y))
    assert all(np.array_equal(p[k], p0[k]) for k in p)
    assert np.array_equal(g1[0], g2[0])


def test_init_is_he_with_zero_bias():
    spec = call_layer_init("InitConv2DLayer", [16, 16, 8, 64, 3, 1, 1, "relu"])
    assert spec == L.Spec(16, 16, 8, 64, 3, 1, 1)
    p = L.init(spec, np.random.default_rng(0))
    assert tuple(p) == L.WEIGHT_KEYS == ("kernel", "conv_bias")
    assert {k: v.shape for k, v in p.items()} == L.param_shapes(spec)
    assert p["kernel"].dtype == p["conv_bias"].dtype == np.float32
    assert abs(p["kernel"].std() / np.sqrt(2 / (8 * 9)) - 1) < 0.03
    assert abs(p["kernel"].mean()) < 0.01 and not p["conv_bias"].any()


def test_output_size_and_features():
    spec = L.Spec(7, 6, 2, 3, 3, 2, 1)
    assert (spec.output_height, spec.output_width) == (4, 3)
    assert spec.out_features(2 * 7 * 6) == 3 * 4 * 3
    assert L.Spec(64, 64, 64, 128, 3, 1, 1).out_features(64 ** 3) == 128 * 64 * 64
    p = L.init(spec, np.random.default_rng(0))
    y, cache = L.forward(spec, p, np.zeros((0, 84), np.float32))  # an empty batch
    assert y.shape == (0, 36) and L.backward(spec, p, cache, y)[0].shape == (0, 84)


def test_loom_gradients_are_flat_kernel_then_bias():
    spec = L.Spec(4, 4, 2, 3, 2)
    grads = {"kernel": np.arange(24.0).reshape(3, 2, 2, 2), "conv_bias": np.arange(3.0)}
    kg, bg = L.loom_gradients(spec, grads)
    np.testing.assert_array_equal(kg, np.arange(24.0))
    np.testing.assert_array_equal(bg, [0, 1, 2])


def test_config_round_trip_matches_fixture():
    cfg, spec, _, _ = _fixture()
    assert spec == L.Spec(5, 5, 2, 3, 3, 1, 1, "leaky_relu")
    for branch in (False, True):
        out = L.to_config(spec, branch=branch)
        assert out == cfg and list(out) == list(cfg)
    assert L.from_config(L.to_config(spec)) == spec
    assert L.RESIDUAL is None and L.TYPE == "conv2d"


@pytest.mark.parametrize("args, match", [
    ((0, 5, 2, 3, 3), r"input_height must be >= 1 \(got 0\)"),
    ((5, -1, 2, 3, 3), r"input_width must be >= 1 \(got -1\)"),
    ((5, 5, 0, 3, 3), r"input_channels must be >= 1 \(got 0\)"),
    ((5, 5, 2, 0, 3), r"filters must be >= 1 \(got 0\)"),
    ((5, 5, 2, 3, 0), r"kernel_size must be >= 1 \(got 0\)"),
    ((5, 5, 2, 3, 3, 0), r"stride must be >= 1 \(got 0\)"),
    ((5, 5, 2, 3, 3, 1, -1), r"padding must be >= 0 \(got -1\)"),
    ((5, 5, 2, 3, 2.5), "kernel_size must be an integer"),
    ((5, 5, 2, 3, 3, 1, 0, "swish"), "unknown activation 'swish'"),
    ((4, 9, 2, 3, 7, 1, 1), r"kernel_size 7 exceeds the padded input height \(4 \+ 2\*padding "
                            r"1 = 6\); use a smaller kernel_size or a larger padding"),
    ((9, 2, 2, 3, 5, 1, 1), r"padded input width \(2 \+ 2\*padding 1 = 4\)"),
])
def test_config_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        L.Spec(*args)


def test_from_config_rejects_inconsistent_output_size():
    cfg, _, _, _ = _fixture()
    with pytest.raises(ConfigError, match="output_width is 4 but .* give 5; fix output_width"):
        L.from_config({**cfg, "output_width": 4})
    assert L.from_config({**cfg, "output_height": 0}).output_height == 5


def test_shape_errors():
    with pytest.raises(ShapeError, match="input features per sample is 49, the layer expects 50"):
        L.Spec(5, 5, 2, 3, 3, 1, 1).out_features(49, "layer (0, 0, 0)")
