"""Spec audit: LOOM's forward semantics and file format (shared/spec/loom-layers.md,
loom-training.md) checked on small random models written in LOOM's JSON format and loaded
through loomdist's own loader, against numpy references written from the spec text alone.

Each test names the spec section it checks. The fixtures (tests/fixtures/loom) cover one
shape per kind; these cover the options and combinations they leave out.
"""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest

import loomdist
from loomdist.eval.metrics import evaluate_model

RNG = np.random.default_rng(20251218)


# ----------------------------------------------------------------------------- helpers
def rand(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def bundle(layers, weights, batch=1, rows=1, cols=1, lpc=None, mid="m"):
    """LOOM bundle text: cfg layer dicts + per-layer weight dicts (lists of floats)."""
    lpc = len(layers) // (rows * cols) if lpc is None else lpc
    payload = {"type": "float32", "layers": [
        {k: _plain(v) for k, v in w.items()} for w in weights]}
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    cfg = {"id": mid, "batch_size": batch, "grid_rows": rows, "grid_cols": cols,
           "layers_per_cell": lpc, "layers": layers}
    return json.dumps({"type": "modelhost/bundle", "version": 1,
                       "models": [{"id": mid, "cfg": cfg,
                                   "weights": {"fmt": "jsonModelB64", "data": data}}]})


def _plain(v):
    if isinstance(v, np.ndarray):
        return [float(x) for x in v.ravel()]
    if isinstance(v, list):
        return [_plain(x) if isinstance(x, (dict, list, np.ndarray)) else x for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def run(text, x, mid="m"):
    net = loomdist.load_model_from_string(text, mid)
    return net.forward(np.asarray(x, np.float32).ravel()), net


def close(a, b, atol=1e-5, rtol=1e-4):
    np.testing.assert_allclose(np.ravel(a), np.ravel(b), atol=atol, rtol=rtol)


# ----------------------------------------------------------------- spec references
def act(name, v):
    """loom-layers.md "Activations"."""
    v = np.asarray(v, np.float64)
    return {"relu": lambda: np.maximum(0, 1.1 * v), "sigmoid": lambda: 1 / (1 + np.exp(-v)),
            "tanh": lambda: np.tanh(v), "softplus": lambda: np.log1p(np.exp(v)),
            "leaky_relu": lambda: np.where(v >= 0, v, 0.1 * v)}[name]()


def ref_dense(x, K, b, n_in, n_out, batch, a):
    x = np.asarray(x, np.float64).reshape(batch, n_in)
    return act(a, x @ K.reshape(n_in, n_out) + b).ravel()


def ref_conv(x, K, b, B, C, H, W, F, k, s, p, a):
    x = np.asarray(x, np.float64).reshape(B, C, H, W)
    K = K.reshape(F, C, k, k)
    oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    xp = np.zeros((B, C, H + 2 * p, W + 2 * p))
    xp[:, :, p:p + H, p:p + W] = x
    y = np.zeros((B, F, oh, ow))
    for n in range(B):
        for f in range(F):
            for i in range(oh):
                for j in range(ow):
                    patch = xp[n, :, i * s:i * s + k, j * s:j * s + k]
                    y[n, f, i, j] = np.sum(patch * K[f]) + b[f]
    return act(a, y).ravel()


def ref_mha(x, w, d, heads):
    """loom-layers.md "MHA": the whole flat input is one sequence [seq][d_model]."""
    x = np.asarray(x, np.float64).reshape(-1, d)
    seq, hd = x.shape[0], d // heads
    q = x @ w["q_weights"].reshape(d, d) + w["q_bias"]
    k = x @ w["k_weights"].reshape(d, d) + w["k_bias"]
    v = x @ w["v_weights"].reshape(d, d) + w["v_bias"]
    freq = 1e6 ** (-2 * np.arange(hd // 2) / hd)
    ang = np.arange(seq)[:, None] * np.concatenate([freq, freq])[None, :]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(t):
        t = t.reshape(seq, heads, hd)
        rot = np.concatenate([-t[..., hd // 2:], t[..., :hd // 2]], axis=-1)
        return t * cos[:, None, :] + rot * sin[:, None, :]

    q, k, v = rope(q), rope(k), v.reshape(seq, heads, hd)
    out = np.zeros((seq, heads, hd))
    for h in range(heads):
        s = q[:, h] @ k[:, h].T / math.sqrt(hd)
        s = np.where(np.tril(np.ones((seq, seq))) > 0, s, -1e9)
        s = np.exp(s - s.max(axis=1, keepdims=True))
        out[:, h] = (s / s.sum(axis=1, keepdims=True)) @ v[:, h]
    return (out.reshape(seq, d) @ w["output_weight"].reshape(d, d) + w["output_bias"]).ravel()


def ref_layer_norm(x, g, b, n, batch, eps):
    x = np.asarray(x, np.float64).reshape(batch, n)
    mu, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    return ((x - mu) / np.sqrt(var + eps) * g + b).ravel()


def ref_rms_norm(x, g, n, eps):
    x = np.asarray(x, np.float64).reshape(-1, n)
    return (x / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps) * g).ravel()


def ref_swiglu(x, w, hidden, inter):
    x = np.asarray(x, np.float64).reshape(-1, hidden)
    a = x @ w["gate_weights"].reshape(hidden, inter) + w["gate_bias"]
    u = x @ w["up_weights"].reshape(hidden, inter) + w["up_bias"]
    h = a / (1 + np.exp(-a)) * u
    return (h @ w["down_weights"].reshape(inter, hidden) + w["down_bias"]).ravel()


def softmax(v, t=1.0):
    v = np.asarray(v, np.float64) / t
    e = np.exp(v - v.max())
    return e / e.sum()


def sparsemax(x):
    s = np.sort(np.asarray(x, np.float64))[::-1]
    k = max(i for i in range(1, len(s) + 1) if s[i - 1] - (s[:i].sum() - 1) / i > 0)
    tau = (s[:k].sum() - 1) / k
    return np.maximum(0, np.asarray(x, np.float64) - tau)


def dense_layer(n_in, n_out, a="relu"):
    cfg = {"type": "dense", "activation": a, "width": 1, "height": 1,
           "input_height": n_in, "output_height": n_out}
    return cfg, {"biases": rand(n_out, scale=0.1), "kernel": rand(n_in * n_out)}


def mha_layer(d, heads, seq):
    cfg = {"type": "multi_head_attention", "activation": "relu", "d_model": d,
           "num_heads": heads, "seq_length": seq}
    w = {k: rand(d * d, scale=0.4) for k in ("q_weights", "k_weights", "v_weights",
                                            "output_weight")}
    w.update({k: rand(d, scale=0.1) for k in ("q_bias", "k_bias", "v_bias", "output_bias")})
    return cfg, w


def swiglu_layer(hidden, inter):
    cfg = {"type": "swiglu", "activation": "relu", "input_height": hidden,
           "output_height": inter}
    w = {"gate_weights": rand(hidden * inter), "up_weights": rand(hidden * inter),
         "down_weights": rand(inter * hidden), "gate_bias": rand(inter, scale=0.1),
         "up_bias": rand(inter, scale=0.1), "down_bias": rand(hidden, scale=0.1)}
    return cfg, w


# ------------------------------------------------------------------------ layers
@pytest.mark.parametrize("C, H, W, F, k, s, p, a, B", [
    (2, 7, 5, 3, 3, 2, 0, "relu", 2),     # stride 2, H != W, no padding
    (1, 6, 6, 2, 2, 2, 1, "sigmoid", 1),  # even kernel, stride 2, padding 1
    (3, 5, 4, 2, 3, 1, 2, "tanh", 3),     # padding 2, batch 3
    (2, 8, 8, 4, 3, 3, 1, "softplus", 1),
])
def test_conv2d_shapes_stride_padding(C, H, W, F, k, s, p, a, B):
    """loom-layers.md "Conv2D": NCHW, kernel [F][C][k][k], zero padding, out=(in+2p-k)/s+1."""
    oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    cfg = {"type": "conv2d", "activation": a, "input_channels": C, "filters": F,
           "kernel_size": k, "stride": s, "padding": p, "input_height": H, "input_width": W,
           "output_height": oh, "output_width": ow}
    if p == 0:
        del cfg["padding"]  # Go's omitempty drops padding 0
    w = {"kernel": rand(F * C * k * k), "conv_bias": rand(F, scale=0.1)}
    x = rand(B * C * H * W)
    y, _ = run(bundle([cfg], [w], batch=B), x)
    close(y, ref_conv(x, w["kernel"], w["conv_bias"], B, C, H, W, F, k, s, p, a))


@pytest.mark.parametrize("d, heads, seq", [(12, 3, 5), (6, 1, 3), (16, 4, 7), (8, 2, 1)])
def test_mha_heads_and_lengths(d, heads, seq):
    """loom-layers.md "MHA": heads, RoPE theta 1e6 rotate_half, causal mask, 1/sqrt(hd)."""
    cfg, w = mha_layer(d, heads, seq)
    x = rand(seq * d)
    y, _ = run(bundle([cfg], [w]), x)
    close(y, ref_mha(x, w, d, heads))


def test_layer_norm_batch_and_default_epsilon():
    """loom-layers.md "LayerNorm": per sample b < BatchSize, biased var, eps 1e-5 when 0."""
    n, batch = 5, 3
    cfg = {"type": "layer_norm", "activation": "relu", "norm_size": n}  # epsilon omitted
    w = {"gamma": rand(n) + 1, "beta": rand(n)}
    x = rand(batch * n, scale=0.01)  # small variance: epsilon matters
    y, _ = run(bundle([cfg], [w], batch=batch), x)
    close(y, ref_layer_norm(x, w["gamma"], w["beta"], n, batch, 1e-5), atol=1e-4)


def test_rms_norm_rows_and_default_epsilon():
    """loom-layers.md "RMSNorm": len/N rows regardless of batch, eps 1e-6 when 0."""
    n = 4
    cfg = {"type": "rms_norm", "activation": "relu", "norm_size": n}
    w = {"gamma": rand(n) + 1}
    x = rand(2 * 3 * n, scale=0.001)
    y, _ = run(bundle([cfg], [w], batch=2), x)
    close(y, ref_rms_norm(x, w["gamma"], n, 1e-6), atol=1e-4)


def test_swiglu_layout():
    """loom-layers.md "SwiGLU": down(silu(x G + bg) * (x U + bu)) + bd, G[j*inter+i]."""
    cfg, w = swiglu_layer(4, 6)
    x = rand(2 * 4)
    y, _ = run(bundle([cfg], [w], batch=2), x)
    close(y, ref_swiglu(x, w, 4, 6))


# ---------------------------------------------------------------- residual bookkeeping
def test_residual_bookkeeping_chain():
    """loom-layers.md "Residual bookkeeping inside ForwardCPU": RMSNorm stores its input;
    MHA/SwiGLU add the residual to their output and store it; LayerNorm adds it before
    normalising and stores its output."""
    d, seq = 8, 3
    rms = ({"type": "rms_norm", "activation": "relu", "norm_size": d,
            "epsilon": 1e-6}, {"gamma": rand(d) + 1})
    mha = mha_layer(d, 2, seq)
    ln = ({"type": "layer_norm", "activation": "relu", "norm_size": d * seq,
           "epsilon": 1e-5}, {"gamma": rand(d * seq) + 1, "beta": rand(d * seq)})
    sw = swiglu_layer(d, 5)
    dn = dense_layer(d * seq, 4, "tanh")
    layers = [rms, mha, ln, sw, rms, sw, dn]
    x = rand(seq * d)
    y, net = run(bundle([c for c, _ in layers], [w for _, w in layers]), x)

    h0 = x.astype(np.float64)
    r = h0                                                   # rms: residual := input
    h1 = ref_rms_norm(h0, rms[1]["gamma"], d, 1e-6)
    h2 = ref_mha(h1, mha[1], d, 2) + r                       # mha: += residual
    r = h2
    h3 = ref_layer_norm(h2 + r, ln[1]["gamma"], ln[1]["beta"], d * seq, 1, 1e-5)
    r = h3                                                   # layer norm: residual := out
    h4 = ref_swiglu(h3, sw[1], d, 5) + r
    r = h4
    r, h5 = h4, ref_rms_norm(h4, rms[1]["gamma"], d, 1e-6)  # rms: residual := its input
    h6 = ref_swiglu(h5, sw[1], d, 5) + r
    h7 = ref_dense(h6, dn[1]["kernel"], dn[1]["biases"], d * seq, 4, 1, "tanh")
    for i, ref in enumerate([h1, h2, h3, h4, h5, h6, h7]):
        close(net.activations()[i + 1], ref, atol=1e-4)
    close(y, h7, atol=1e-4)


@pytest.mark.parametrize("after", ["mha", "swiglu"])
def test_layer_norm_starts_no_residual(after):
    """loom-layers.md "Residual bookkeeping" / loom-training.md 3.2 (ForwardCPU column): the
    residual is "the output of a LayerNorm once a residual exists"; a LayerNorm that finds no
    residual stores none, so a following MHA/SwiGLU adds nothing (a pre-LN block that opens
    the network)."""
    d, seq = 4, 3
    ln = ({"type": "layer_norm", "activation": "relu", "norm_size": d * seq,
           "epsilon": 1e-5}, {"gamma": rand(d * seq) + 1, "beta": rand(d * seq)})
    nxt = mha_layer(d, 2, seq) if after == "mha" else swiglu_layer(d, 6)
    ln2 = ({"type": "layer_norm", "activation": "relu", "norm_size": d * seq,
            "epsilon": 1e-5}, {"gamma": rand(d * seq) + 1, "beta": rand(d * seq)})
    layers = [ln, nxt, ln2]
    x = rand(seq * d)
    y, _ = run(bundle([c for c, _ in layers], [w for _, w in layers]), x)
    h = ref_layer_norm(x, ln[1]["gamma"], ln[1]["beta"], d * seq, 1, 1e-5)
    h = ref_mha(h, nxt[1], d, 2) if after == "mha" else ref_swiglu(h, nxt[1], d, 6)
    h = ref_layer_norm(h + h, ln2[1]["gamma"], ln2[1]["beta"], d * seq, 1, 1e-5)
    close(y, h, atol=1e-4)


# ----------------------------------------------------------------------- softmax
def softmax_cfg(variant, **kw):
    return {"type": "softmax", "activation": "relu", "softmax_variant": variant, **kw}


@pytest.mark.parametrize("cfg, ref", [
    (softmax_cfg("standard"), lambda x: softmax(x)),  # temperature omitted: 0 -> 1
    (softmax_cfg("standard", temperature=0.5), lambda x: softmax(x, 0.5)),
    (softmax_cfg("temperature", temperature=2.5), lambda x: softmax(x, 2.5)),
    (softmax_cfg("grid", softmax_rows=3, softmax_cols=4, temperature=0.7),
     lambda x: np.concatenate([softmax(r, 0.7) for r in x.reshape(3, 4)])),
    (softmax_cfg("hierarchical", hierarchy_levels=[2, 2, 3], temperature=1.5),
     lambda x: np.concatenate([softmax(r, 1.5) for r in x.reshape(4, 3)])),
    (softmax_cfg("masked", temperature=2, mask=[True, False] * 6),
     lambda x: softmax(np.where(np.arange(12) % 2 == 0, x, -1e9), 2)),
    (softmax_cfg("sparse", temperature=1), sparsemax),
    (softmax_cfg("entmax", temperature=1, entmax_alpha=1.5),
     lambda x: (lambda b: b / b.sum())(0.5 * softmax(x) + 0.5 * sparsemax(x))),
    (softmax_cfg("entmax", temperature=3, entmax_alpha=1), lambda x: softmax(x)),
    (softmax_cfg("entmax", temperature=1, entmax_alpha=2), sparsemax),
    (softmax_cfg("adaptive", temperature=3), lambda x: softmax(x)),  # T ignored
    (softmax_cfg("mixture", temperature=3), lambda x: softmax(x)),   # T ignored
])
def test_softmax_variants(cfg, ref):
    """loom-layers.md "Softmax" forward of each variant (batch 1, 12 logits)."""
    x = rand(12, scale=1.5)
    y, _ = run(bundle([cfg], [{}]), x)
    close(y, ref(x.astype(np.float64)), atol=1e-6)


@pytest.mark.parametrize("alpha, ref", [(0.5, softmax), (3.0, sparsemax)])
def test_entmax_alpha_outside_one_two(alpha, ref):
    """loom-layers.md "Softmax": entmax alpha <= 1 gives standard, alpha >= 2 sparsemax."""
    x = rand(8, scale=1.5)
    y, _ = run(bundle([softmax_cfg("entmax", temperature=1, entmax_alpha=alpha)], [{}]), x)
    close(y, ref(x.astype(np.float64)), atol=1e-6)


def test_entmax_alpha_omitted_is_standard():
    """loom-layers.md "Softmax" + model file (omitempty): entmax_alpha 0 -> standard."""
    x = rand(8, scale=1.5)
    y, _ = run(bundle([softmax_cfg("entmax", temperature=1)], [{}]), x)
    close(y, softmax(x), atol=1e-6)


# ---------------------------------------------------------------------- parallel
def _branch(cfg):
    cfg = dict(cfg)
    cfg.pop("width", None)
    cfg.pop("height", None)
    return cfg


def test_parallel_avg_batch():
    """loom-layers.md "Parallel": avg is the element-wise mean of the branch outputs."""
    (c1, w1), (c2, w2) = dense_layer(5, 3, "tanh"), dense_layer(5, 3, "sigmoid")
    cfg = {"type": "parallel", "activation": "relu", "branches": [_branch(c1), _branch(c2)],
           "combine_mode": "avg"}
    x = rand(2 * 5)
    y, _ = run(bundle([cfg], [{"branch_weights": [w1, w2]}], batch=2), x)
    refs = [ref_dense(x, w["kernel"], w["biases"], 5, 3, 2, a)
            for w, a in ((w1, "tanh"), (w2, "sigmoid"))]
    close(y, (refs[0] + refs[1]) / 2)


def test_parallel_grid_scatter_per_sample_with_empty_cells():
    """loom-layers.md "Parallel": grid_scatter is per sample, cells in flat order
    r*cols*layers + c*layers + l, empty cells contribute nothing."""
    specs = [dense_layer(4, 2, "tanh"), dense_layer(4, 3, "relu"), dense_layer(4, 1, "sigmoid")]
    # branch 0 -> cell (1,0,1) = 5, branch 1 -> (0,1,0) = 2, branch 2 -> (0,0,1) = 1
    pos = [(0, 1, 0, 1), (1, 0, 1, 0), (2, 0, 0, 1)]
    cfg = {"type": "parallel", "activation": "relu",
           "branches": [_branch(c) for c, _ in specs], "combine_mode": "grid_scatter",
           "grid_positions": [{"branch_index": b, "target_row": r, "target_col": c,
                               "target_layer": lay} for b, r, c, lay in pos],
           "grid_output_rows": 2, "grid_output_cols": 2, "grid_output_layers": 2}
    x = rand(3 * 4)
    y, _ = run(bundle([cfg], [{"branch_weights": [w for _, w in specs]}], batch=3), x)
    outs = [ref_dense(x, w["kernel"], w["biases"], 4, c["output_height"], 3,
                      c["activation"]).reshape(3, -1) for c, w in specs]
    close(y, np.concatenate([outs[2], outs[1], outs[0]], axis=1))


def test_parallel_nested_concat_inside_add():
    """loom-layers.md "Parallel": nesting; inner concat branch-major, outer add."""
    (c1, w1), (c2, w2), (c3, w3) = (dense_layer(3, 2, "tanh"), dense_layer(3, 2, "relu"),
                                    dense_layer(3, 4, "leaky_relu"))
    inner = {"type": "parallel", "activation": "relu", "branches": [_branch(c1), _branch(c2)],
             "combine_mode": "concat"}
    outer = {"type": "parallel", "activation": "relu", "branches": [inner, _branch(c3)],
             "combine_mode": "add"}
    weights = [{"branch_weights": [{"branch_weights": [w1, w2]}, w3]}]
    x = rand(2 * 3)
    y, _ = run(bundle([outer], weights, batch=2), x)
    a = ref_dense(x, w1["kernel"], w1["biases"], 3, 2, 2, "tanh")
    b = ref_dense(x, w2["kernel"], w2["biases"], 3, 2, 2, "relu")
    c = ref_dense(x, w3["kernel"], w3["biases"], 3, 4, 2, "leaky_relu")
    close(y, np.concatenate([a, b]) + c)


def test_parallel_missing_combine_mode_is_concat():
    """Model file: combine_mode omitted (omitempty "") combines as concat."""
    (c1, w1), (c2, w2) = dense_layer(3, 2, "tanh"), dense_layer(3, 3, "relu")
    cfg = {"type": "parallel", "activation": "relu", "branches": [_branch(c1), _branch(c2)]}
    x = rand(2 * 3)
    y, _ = run(bundle([cfg], [{"branch_weights": [w1, w2]}], batch=2), x)
    close(y, np.concatenate([ref_dense(x, w1["kernel"], w1["biases"], 3, 2, 2, "tanh"),
                             ref_dense(x, w2["kernel"], w2["biases"], 3, 3, 2, "relu")]))


# -------------------------------------------------------------------------- grid
def test_grid_order_rows_cols_layers():
    """loom-layers.md "Grid order": idx = row*cols*lpc + col*lpc + layer, strictly sequential."""
    sizes = [5, 4, 6, 3, 5, 2, 4, 3, 2]  # 2x2x2 grid: 8 dense layers
    acts = ["relu", "tanh", "sigmoid", "softplus", "leaky_relu", "tanh", "relu", "sigmoid"]
    layers = [dense_layer(sizes[i], sizes[i + 1], acts[i]) for i in range(8)]
    text = bundle([c for c, _ in layers], [w for _, w in layers], batch=2, rows=2, cols=2,
                  lpc=2)
    x = rand(2 * 5)
    y, net = run(text, x)
    h = x
    for i, (_, w) in enumerate(layers):
        h = ref_dense(h, w["kernel"], w["biases"], sizes[i], sizes[i + 1], 2, acts[i])
        assert net.get_layer(*net.coords(i)).output_height == sizes[i + 1]
    assert net.coords(5) == (1, 0, 1)
    close(y, h)


# ------------------------------------------------------------------ loader tolerance
def test_loader_tolerates_loom_spellings_and_missing_fields():
    """Model file: "mha"/"layernorm"/"rmsnorm" type spellings, activation omitted (""),
    dense without width/height."""
    d, seq = 4, 2
    mc, mw = mha_layer(d, 2, seq)
    mc = dict(mc, type="mha")
    lc = {"type": "layernorm", "norm_size": d * seq}
    lw = {"gamma": rand(d * seq) + 1, "beta": rand(d * seq)}
    rc = {"type": "rmsnorm", "norm_size": d}
    rw = {"gamma": rand(d) + 1}
    dc, dw = dense_layer(d * seq, 3)
    dc = {k: v for k, v in dc.items() if k not in ("width", "height", "activation")}
    x = rand(seq * d)
    y, _ = run(bundle([mc, lc, rc, dc], [mw, lw, rw, dw]), x)
    h = ref_mha(x, mw, d, 2)
    h = ref_layer_norm(h + h, lw["gamma"], lw["beta"], d * seq, 1, 1e-5)
    h = ref_rms_norm(h, rw["gamma"], d, 1e-6)
    close(y, ref_dense(h, dw["kernel"], dw["biases"], d * seq, 3, 1, "relu"), atol=1e-4)


@pytest.mark.parametrize("name", ["gelu", "softmax", "swish", "RELU"])
def test_unknown_activation_strings_load_as_scaled_relu(name):
    """loom-layers.md "Activations": on load, "linear" and unknown strings map to
    ScaledReLU (loom-training.md: "gelu", "softmax" ... all parse to ScaledReLU)."""
    c, w = dense_layer(4, 3)
    c["activation"] = name
    x = rand(4)
    y, net = run(bundle([c], [w]), x)
    close(y, ref_dense(x, w["kernel"], w["biases"], 4, 3, 1, "relu"))
    assert net.get_layer(0, 0, 0).activation == "relu"


# ------------------------------------------------------------------- evaluation
@pytest.mark.parametrize("expected, actual, dev, bucket", [
    (10.0, 11.0, 10.0, "0-10%"),        # exactly 10: upper bound inclusive
    (1.0, 2.0, 100.0, "50-100%"),       # exactly 100: not a failure
    (0.0, 0.5, 50.0, "40-50%"),         # |expected| < 1e-10: absolute * 100
    (5e-11, 0.0, 5e-9, "0-10%"),
    (2.0, float("nan"), 100.0, "50-100%"),
    (-4.0, -2.0, 50.0, "40-50%"),
    (1.0, 2.0000001, 100.00001, "100%+"),
])
def test_deviation_buckets_edges(expected, actual, dev, bucket):
    """loom-training.md 2.1: deviation formula, NaN -> 100, inclusive upper bounds."""
    m = evaluate_model([expected], [actual])
    r = m.results[0]
    assert r.bucket == bucket
    assert r.deviation == pytest.approx(dev, rel=1e-6)
    assert m.failures == (1 if bucket == "100%+" else 0)
    assert m.score == pytest.approx(max(0.0, 100 - dev))


def test_evaluate_network_argmax_first_maximum_and_scalar():
    """loom-training.md 2.3: prediction = output[0] for 1 output, else first argmax."""
    c, w = dense_layer(2, 3, "relu")
    w["kernel"] = np.zeros(6, np.float32)
    w["biases"] = np.array([0.1, 0.5, 0.5], np.float32)  # tie: first maximum (1) wins
    net = loomdist.load_model_from_string(bundle([c], [w], batch=4), "m")
    m = net.evaluate(np.zeros((2, 2), np.float32), [1.0, 2.0])
    assert [r.actual for r in m.results] == [1.0, 1.0]
    assert m.score == pytest.approx((100 + 50) / 2)


# --------------------------------------------------------------------- step mode
def test_step_mode_ticks_and_self_residuals():
    """loom-training.md 3.2: every layer runs each tick on its predecessor's previous-tick
    output (buffers start at zeros); SwiGLU adds its own previous output; LayerNorm
    normalises x + its own previous output."""
    from loomdist.tween import StepState
    dn = dense_layer(8, 8, "tanh")
    sw = swiglu_layer(4, 5)
    ln = ({"type": "layer_norm", "activation": "relu", "norm_size": 8, "epsilon": 1e-5},
          {"gamma": rand(8) + 1, "beta": rand(8)})
    layers = [dn, sw, ln]
    net = loomdist.load_model_from_string(bundle([c for c, _ in layers],
                                                 [w for _, w in layers]), "m")
    state = StepState(net)
    x = rand(8)
    state.set_input(x)
    f = [lambda h: ref_dense(h, dn[1]["kernel"], dn[1]["biases"], 8, 8, 1, "tanh"),
         lambda h: ref_swiglu(h, sw[1], 4, 5),
         lambda h: ref_layer_norm(h, ln[1]["gamma"], ln[1]["beta"], 8, 1, 1e-5)]
    data, res = [x.astype(np.float64), np.zeros(8), np.zeros(8), np.zeros(8)], np.zeros((3, 8))
    for _ in range(5):
        new = [f[0](data[0]), f[1](data[1]) + res[1], f[2](data[2] + res[2])]
        res[1], res[2] = new[1], new[2]
        data[1:] = new
        state.step_forward()
        for i in range(3):
            close(state.layer_output(i + 1), data[i + 1], atol=1e-4)


def test_sparsemax_edge_cases():
    """loom-layers.md "Softmax" sparse: one dominant logit -> one-hot; ties share equally."""
    x = np.array([5.0, 0.0, -1.0, 0.2, 0.1, 0.0], np.float32)
    y, _ = run(bundle([softmax_cfg("sparse")], [{}]), x)
    close(y, [1, 0, 0, 0, 0, 0], atol=1e-6)
    x = np.array([0.3, 0.3, 0.3, -2.0], np.float32)
    y, _ = run(bundle([softmax_cfg("sparse")], [{}]), x)
    close(y, [1 / 3, 1 / 3, 1 / 3, 0], atol=1e-6)


# ------------------------------------------- batch > 1: deviations docs/differences.md keeps
def test_mha_batch_runs_each_sample_as_its_own_sequence():
    """docs/differences.md 'MHA batch' (issue 2's deliberate exception, LOOM's README form
    [batch][seq][d_model]): at batch 2 each sample is one sequence; LOOM would run the whole
    flat input as one. At batch 1 the two agree (the test above)."""
    d, seq = 4, 3
    cfg, w = mha_layer(d, 2, seq)
    x = rand(2 * seq * d)
    y, _ = run(bundle([cfg], [w], batch=2), x)
    half = seq * d
    close(y, np.concatenate([ref_mha(x[:half], w, d, 2), ref_mha(x[half:], w, d, 2)]))


def test_softmax_batch_is_per_sample():
    """docs/differences.md 'Softmax batch': at batch 2 each sample's logits are normalised
    alone (LOOM normalises the whole flat buffer)."""
    x = rand(2 * 5)
    y, _ = run(bundle([softmax_cfg("standard", temperature=1)], [{}], batch=2), x)
    close(y, np.concatenate([softmax(x[:5]), softmax(x[5:])]), atol=1e-6)


def test_parallel_branches_of_every_stateless_kind():
    """loom-layers.md "Parallel": branches of norm, SwiGLU, softmax, conv2d and RMSNorm
    kinds run on the same input with no residual bookkeeping inside the layer (batch 1)."""
    n = 8
    ln = ({"type": "layer_norm", "activation": "relu", "norm_size": n, "epsilon": 1e-5},
          {"gamma": rand(n) + 1, "beta": rand(n)})
    rms = ({"type": "rms_norm", "activation": "relu", "norm_size": 4, "epsilon": 1e-6},
           {"gamma": rand(4) + 1})
    sw = swiglu_layer(4, 3)
    sm = (softmax_cfg("temperature", temperature=0.5), {})
    conv = ({"type": "conv2d", "activation": "tanh", "input_channels": 2, "filters": 1,
             "kernel_size": 2, "stride": 1, "input_height": 2, "input_width": 2,
             "output_height": 1, "output_width": 1},
            {"kernel": rand(8), "conv_bias": rand(1)})
    branches = [rms, ln, sw, sm, conv]
    cfg = {"type": "parallel", "activation": "relu", "branches": [c for c, _ in branches],
           "combine_mode": "concat"}
    first = ({"type": "rms_norm", "activation": "relu", "norm_size": n, "epsilon": 1e-6},
             {"gamma": rand(n) + 1})  # leaves a residual that no branch may pick up
    x = rand(n)
    y, _ = run(bundle([first[0], cfg], [first[1], {"branch_weights": [w for _, w in branches]}]),
               x)
    h = ref_rms_norm(x, first[1]["gamma"], n, 1e-6)
    parts = [ref_rms_norm(h, rms[1]["gamma"], 4, 1e-6),
             ref_layer_norm(h, ln[1]["gamma"], ln[1]["beta"], n, 1, 1e-5),
             ref_swiglu(h, sw[1], 4, 3), softmax(h, 0.5),
             ref_conv(h, conv[1]["kernel"], conv[1]["conv_bias"], 1, 2, 2, 2, 1, 2, 1, 0,
                      "tanh")]
    close(y, np.concatenate(parts), atol=1e-4)
