"""Multi-head attention: LOOM's recorded forward, true gradients (finite differences, torch),
batch-awareness, causality, the float32 path, config round trip, init, and every error."""

from __future__ import annotations

import numpy as np
import pytest

from loomdist import ConfigError, ShapeError
from loomdist.gradcheck import check_layer
from loomdist.kernels.cpu import attention as ka
from loomdist.layers import multi_head_attention as M
from loomdist.registry import call_layer_init
from tests.cases import CASES
from tests.loomfix import f32, fixture_layer, perturbed_params

MHA_CASES = [c for c in CASES if c.kind == "multi_head_attention"]


def _params(spec, seed=7, dtype=np.float64, spread=0.3):
    return perturbed_params(M, spec, seed, dtype, spread)


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _fixture():
    return fixture_layer(M, "mha")


def _naive_sequence(spec, p, seq_x):
    """LOOM's loops for one sequence seq_x (seq, d) in float64, -1e9 causal mask."""
    d, nh, hd = spec.d_model, spec.num_heads, spec.head_dim
    ns = seq_x.shape[0]
    proj = {c: seq_x @ p[f"{c}_weights"] + p[f"{c}_bias"] for c in "qkv"}
    freq = 1e6 ** (-2.0 * np.arange(hd // 2) / hd)
    ctx = np.zeros((ns, d))
    for h in range(nh):
        q, k, v = (proj[c][:, h * hd:(h + 1) * hd].copy() for c in "qkv")
        for s in range(ns):
            for a in (q, k):
                x1, x2 = a[s, :hd // 2].copy(), a[s, hd // 2:].copy()
                c, sn = np.cos(s * freq), np.sin(s * freq)
                a[s] = np.concatenate([x1 * c - x2 * sn, x2 * c + x1 * sn])
        scores = q @ k.T / np.sqrt(hd)
        scores[np.triu_indices(ns, 1)] = -1e9
        w = np.exp(scores - scores.max(axis=1, keepdims=True))
        ctx[:, h * hd:(h + 1) * hd] = (w / w.sum(axis=1, keepdims=True)) @ v
    return ctx @ p["output_weight"] + p["output_bias"]


@pytest.mark.parametrize("case", MHA_CASES, ids=lambda c: c.name)
def test_finite_differences_registry_cases(case):
    check_layer(M, case.spec, _params(case.spec), case.input())


@pytest.mark.parametrize("spec, shape", [(M.Spec(6, 3), (3, 30)), (M.Spec(4, 2, 0, "tanh"),
                                                                 (2, 4)),
                                         (M.Spec(12, 2, 2), (2, 24))])
def test_finite_differences_more_shapes(spec, shape):
    check_layer(M, spec, _params(spec, seed=2), _x(shape, seed=1))


def test_forward_matches_loom_fixture():
    cfg, spec, params, data = _fixture()
    assert data["batch_size"] == 1
    x = f32(data["input"]).reshape(1, -1)
    y, _ = M.forward(spec, params, x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.ravel(), f32(data["output"]), rtol=1e-5, atol=1e-6)
    assert (y < 0).any()  # LOOM applies no activation although the cfg says relu


def test_output_bias_gradient_is_loom_s_the_rest_is_the_true_gradient():
    """LOOM's dOB = sum_s g is exact; its other gradients are its 'simplified' ones."""
    cfg, spec, params, data = _fixture()
    x = f32(data["input"]).reshape(1, -1)
    y, cache = M.forward(spec, params, x)
    dx, grads = M.backward(spec, params, cache, f32(data["grad_output"]).reshape(y.shape))
    kg, bg = M.loom_gradients(spec, grads)
    d = spec.d_model
    np.testing.assert_allclose(bg[-d:], f32(data["bias_gradients"][0])[-d:], atol=1e-6)
    assert np.abs(kg - f32(data["kernel_gradients"][0])).max() > 1e-2
    assert np.abs(dx.ravel() - f32(data["grad_input"])).max() > 1e-2


@pytest.mark.parametrize("spec, shape", [(M.Spec(8, 2, 4), (1, 32)), (M.Spec(6, 3), (3, 18))])
def test_forward_matches_naive_loops(spec, shape):
    p, x = _params(spec), _x(shape)
    y, _ = M.forward(spec, p, x)
    want = [_naive_sequence(spec, p, row.reshape(-1, spec.d_model)).ravel() for row in x]
    np.testing.assert_allclose(y, np.stack(want), rtol=1e-12, atol=1e-12)


def test_each_sample_is_its_own_sequence():
    spec = M.Spec(8, 2)
    p, x = _params(spec), _x((3, 40))
    y, _ = M.forward(spec, p, x)
    for b in range(3):
        np.testing.assert_allclose(y[b:b + 1], M.forward(spec, p, x[b:b + 1])[0], atol=1e-13)


def test_attention_is_causal():
    spec = M.Spec(4, 2)
    p, x = _params(spec), _x((1, 20))
    y, _ = M.forward(spec, p, x)
    x2 = x.copy()
    x2[0, 12:] += 1.0  # change positions 3 and 4 only
    y2, _ = M.forward(spec, p, x2)
    np.testing.assert_array_equal(y[0, :12], y2[0, :12])
    assert np.abs(y[0, 12:] - y2[0, 12:]).min() > 0


@pytest.mark.parametrize("spec, shape", [(M.Spec(8, 2, 4), (3, 32)), (M.Spec(12, 3), (2, 60))])
def test_torch_float64_oracle(spec, shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    p, x, dy = _params(spec), _x(shape, seed=3), _x(shape, seed=4)
    y, cache = M.forward(spec, p, x)
    dx, grads = M.backward(spec, p, cache, dy)
    nb, ns, d, nh, hd = shape[0], shape[1] // spec.d_model, spec.d_model, spec.num_heads, \
        spec.head_dim
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    tx = torch.tensor(x, requires_grad=True)
    cos, sin = (torch.tensor(a) for a in ka.rope_tables(ns, hd, np.float64))

    def heads(c):
        a = tx.view(nb, ns, d) @ tp[f"{c}_weights"] + tp[f"{c}_bias"]
        return a.view(nb, ns, nh, hd).transpose(1, 2)

    def rope(a):
        return a * cos + torch.cat((-a[..., hd // 2:], a[..., :hd // 2]), -1) * sin

    o = F.scaled_dot_product_attention(rope(heads("q")), rope(heads("k")), heads("v"),
                                       is_causal=True)
    ty = o.transpose(1, 2).reshape(nb, ns, d) @ tp["output_weight"] + tp["output_bias"]
    ty.reshape(shape).backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy().reshape(shape), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    assert list(grads) == list(M.WEIGHT_KEYS)
    for k in p:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=k)


def test_float32_path_tracks_float64():
    spec = M.Spec(16, 4)
    p32 = _params(spec, dtype=np.float32)
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    x32 = (_x((3, 16 * 20), seed=5) * 3).astype(np.float32)
    dy32 = _x(x32.shape, seed=6).astype(np.float32)
    y32, c32 = M.forward(spec, p32, x32)
    y64, c64 = M.forward(spec, p64, x32.astype(np.float64))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5 * np.abs(y64).max())
    dx32, g32 = M.backward(spec, p32, c32, dy32)
    dx64, g64 = M.backward(spec, p64, c64, dy32.astype(np.float64))
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, rtol=1e-3, atol=1e-4 * np.abs(dx64).max())
    for k in g32:
        assert g32[k].dtype == np.float32 and g32[k].flags.c_contiguous, k
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-3,
                                   atol=1e-4 * np.abs(g64[k]).max(), err_msg=k)


def test_pure_python_kernels_match_jit():
    """The py_func twins are what NUMBA_DISABLE_JIT=1 runs."""
    rng = np.random.default_rng(8)
    cos, sin = ka.rope_tables(5, 4, np.float64)
    qkv, bias = rng.standard_normal((10, 24)), rng.standard_normal(24)
    sc = rng.standard_normal((3, 5, 5))
    outs = []
    for k in (ka._bias_rope, ka._rope_backward, ka._causal_softmax, ka._causal_softmax_backward):
        py = getattr(k, "py_func", k)
        outs.append([])
        for fn in (k, py):
            if k is ka._bias_rope:
                a = qkv.copy()
                fn(a, bias, cos, sin)
            elif k is ka._rope_backward:
                a = qkv.copy()
                fn(a, cos, sin)
            else:
                a = np.empty_like(sc)
                fn(*((sc, 0.5, a) if k is ka._causal_softmax else (np.abs(sc), sc, 0.5, a)))
            outs[-1].append(a)
    for jit, py in outs:
        np.testing.assert_allclose(jit, py, rtol=1e-12, atol=1e-12)


def test_forward_backward_are_pure():
    spec = M.Spec(4, 2)
    p, x = _params(spec), _x((2, 12))
    p0, x0 = {k: v.copy() for k, v in p.items()}, x.copy()
    y, cache = M.forward(spec, p, x)
    dy = np.ones_like(y)
    dx1, g1 = M.backward(spec, p, cache, dy)
    dx2, g2 = M.backward(spec, p, cache, dy)  # the cache survives a second backward
    np.testing.assert_array_equal(dx1, dx2)
    assert all(np.array_equal(g1[k], g2[k]) for k in g1)
    assert np.array_equal(x, x0) and np.array_equal(dy, np.ones_like(y))
    assert all(np.array_equal(p[k], p0[k]) for k in p)


def test_init_is_xavier_with_zero_biases():
    spec = call_layer_init("InitMultiHeadAttentionLayer", [64, 4, 8, 10])
    assert spec == M.Spec(64, 4, 10)
    p = M.init(spec, np.random.default_rng(0))
    assert tuple(p) == M.WEIGHT_KEYS
    assert {k: v.shape for k, v in p.items()} == M.param_shapes(spec)
    std = np.sqrt(2 / (64 + 64))
    for k in ("q_weights", "k_weights", "v_weights", "output_weight"):
        assert p[k].dtype == np.float32 and abs(p[k].std() / std - 1) < 0.05, k
    assert not np.array_equal(p["q_weights"], p["k_weights"])
    for k in ("q_bias", "k_bias", "v_bias", "output_bias"):
        assert p[k].dtype == np.float32 and not p[k].any()
    assert M.init_multi_head_attention_layer(8, 2, 1, 4, "tanh") == M.Spec(8, 2, 4, "tanh")


def test_loom_gradients_concatenate_in_loom_order():
    spec = M.Spec(2, 1)
    grads = {k: np.full(s, i, np.float32) for i, (k, s) in
             enumerate(M.param_shapes(spec).items())}
    kg, bg = M.loom_gradients(spec, grads)
    np.testing.assert_array_equal(kg, [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4)
    np.testing.assert_array_equal(bg, [4] * 2 + [5] * 2 + [6] * 2 + [7] * 2)


def test_config_round_trip_matches_fixture():
    cfg, spec, _, _ = _fixture()
    assert spec == M.Spec(8, 2, 4)
    out = M.to_config(spec)
    assert out == cfg and list(out) == list(cfg)
    assert list(out) == ["type", "activation", "d_model", "num_heads", "seq_length"]
    assert M.to_config(spec, branch=True) == cfg
    assert M.RESIDUAL == "post_add" and M.TYPE == "multi_head_attention"


@pytest.mark.parametrize("args, match", [
    ((0, 1), r"d_model must be >= 1 \(got 0\)"),
    ((8, 0), r"num_heads must be >= 1 \(got 0\)"),
    ((8, 2, -1), r"seq_length must be >= 0 \(got -1\)"),
    ((8.5, 2), "d_model must be an integer"),
    ((8, 3), "d_model 8 is not divisible by num_heads 3"),
    ((6, 2), "head_dim 3 is odd"),
    ((8, 2, 4, "swish"), "unknown activation 'swish'"),
])
def test_config_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        M.Spec(*args)


@pytest.mark.parametrize("features", [7, 0])
def test_shape_errors(features):
    with pytest.raises(ShapeError, match=f"is {features}, not a positive multiple of d_model 4"):
        M.Spec(4, 2).out_features(features, "layer (0, 0, 0)")


def test_out_features_keeps_the_size():
    assert M.Spec(4, 2).out_features(12) == 12
    assert M.Spec(4, 2, 3).out_features(20) == 20  # seq_length is informational
