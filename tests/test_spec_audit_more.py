"""Spec audit, continued: the loader's tolerance, DeviationMetrics edges, step mode,
sparsemax edges, LOOM's flat buffer at batch > 1, and Parallel branches of
the stateless kinds (see test_spec_audit.py for the method).
"""

from __future__ import annotations

import numpy as np
import pytest

import loomdist
from loomdist.eval.metrics import evaluate_model
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
    swiglu_layer,
)


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


@pytest.mark.parametrize("name", ["gelu", "softmax", "swish", "Sigmoid", None])
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


# ------------------------------------------------ batch > 1: LOOM's flat buffer
def test_mha_on_the_flat_layout_is_one_sequence():
    """loom-layers.md "MHA": batch is ignored, seqLen = len(input) / d_model, the whole input
    is one causal sequence. A batched array runs one sequence per sample instead
    (docs/differences.md, "MHA batch")."""
    d, seq = 4, 3
    cfg, w = mha_layer(d, 2, seq)
    x = rand(2 * seq * d)
    y, net = run(bundle([cfg], [w], batch=2), x)
    close(y, ref_mha(x, w, d, 2))
    half = seq * d
    per_sample = net.forward(x.reshape(2, half))
    close(per_sample, np.concatenate([ref_mha(x[:half], w, d, 2),
                                      ref_mha(x[half:], w, d, 2)]))


def test_softmax_on_the_flat_layout_normalises_the_whole_buffer():
    """loom-layers.md "Softmax": the plain JVP 'over the whole vector'; the forward sees the
    flat buffer of every sample. A batched array is one distribution per row."""
    x = rand(2 * 5)
    y, net = run(bundle([softmax_cfg("standard", temperature=1)], [{}], batch=2), x)
    close(y, softmax(x), atol=1e-6)
    close(net.forward(x.reshape(2, 5)), np.concatenate([softmax(x[:5]), softmax(x[5:])]),
          atol=1e-6)


def test_flat_layout_through_dense_mha_softmax_and_a_parallel_branch():
    """Dense and LayerNorm cut the buffer into batch_size samples, MHA and Softmax do not,
    also inside a Parallel branch; backward is the true gradient of that forward."""
    batch, d, seq = 3, 4, 2
    feat = d * seq
    dn_cfg, dn_w = dense_layer(feat, feat, "tanh")
    mh_cfg, mh_w = mha_layer(d, 2, seq)
    par = {"type": "parallel", "activation": "relu", "combine_mode": "add",
           "branches": [softmax_cfg("temperature", temperature=0.5),
                        dense_layer(feat, feat, "sigmoid")[0]]}
    br_w = dense_layer(feat, feat, "sigmoid")[1]
    par_w = {"branch_weights": [{}, br_w]}
    text = bundle([dn_cfg, mh_cfg, par], [dn_w, mh_w, par_w], batch=batch)
    x = rand(batch * feat)
    y, net = run(text, x)
    h = ref_dense(x, dn_w["kernel"], dn_w["biases"], feat, feat, batch, "tanh")
    h = ref_mha(h, mh_w, d, 2)  # the whole buffer: one sequence of batch * seq positions
    want = softmax(h, 0.5) + ref_dense(h, br_w["kernel"], br_w["biases"], feat, feat, batch,
                                       "sigmoid")
    close(y, want)
    g = rand(y.size)
    dx = net.backward(g)
    eps, i = 1e-2, 5
    net64 = loomdist.load_model_from_string(text, "m").astype(np.float64)
    xp, xm = x.astype(np.float64), x.astype(np.float64)
    xp[i] += eps
    xm[i] -= eps
    fd = (g @ net64.forward(xp) - g @ net64.forward(xm)) / (2 * eps)
    assert dx[i] == pytest.approx(fd, rel=1e-3, abs=1e-5)


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
