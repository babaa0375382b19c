"""numpy references written from the spec text alone (shared/spec/loom-layers.md,
loom-training.md), and builders of small models in LOOM's JSON bundle format, for the spec
audit tests (test_spec_audit*.py)."""

from __future__ import annotations

import base64
import json
import math

import numpy as np

import loomdist

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


def softmax_cfg(variant, **kw):
    return {"type": "softmax", "activation": "relu", "softmax_variant": variant, **kw}
