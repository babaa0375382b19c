"""Spec audit: LOOM's forward semantics and file format (shared/spec/loom-layers.md,
loom-training.md) checked on small random models written in LOOM's JSON format and loaded
through loomdist's own loader, against numpy references written from the spec text alone.

Each test names the spec section it checks. The fixtures (tests/fixtures/loom) cover one
shape per kind; these cover the options and combinations they leave out.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.spec_refs import (
    bundle,
    close,
    dense_layer,
    mha_layer,
    rand,
    ref_conv,
    ref_dense,
    ref_layer_norm,
    ref_mha,
    ref_rms_norm,
    ref_swiglu,
    run,
    softmax,
    softmax_cfg,
    sparsemax,
    swiglu_layer,
)


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
