"""Multi-head causal self-attention with RoPE on the GPU (multi_head_attention.wgsl).

Same semantics as loomdist/layers/multi_head_attention.py: each sample is its own sequence
of in_features // d_model positions (on LOOM's flat layout, layers._common.whole_buffer,
the whole buffer is one); Q, K, V projections (W[in, out] plus bias), RoPE with
theta 1e6 on Q and K, scores scaled by 1/sqrt(head_dim) with a causal mask, softmax, the
weighted sum of V, and the output projection. The projections and every weight gradient are
tiled GEMMs, the scores and weighted sums a batched strided GEMM over (sample, head) pairs
that reads the head-interleaved layouts in place; the backward is the true gradient.
"""

from __future__ import annotations

import math

import numpy as np

from loomdist.kernels.cpu.attention import rope_tables
from loomdist.kernels.gpu import ops
from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream
from loomdist.layers._common import buffer_rows
from loomdist.layers.multi_head_attention import ROPE_THETA, WEIGHT_KEYS

SKIPS_DX = True  # backward(..., need_dx=False) skips dL/dx (layers.backward)

SHADER = "multi_head_attention"
WHERE = "multi_head_attention gpu"  # names this layer in buffer-limit errors
WG = 64  # @workgroup_size of every entry point in multi_head_attention.wgsl
_QKV = (("q_weights", "q_bias"), ("k_weights", "k_bias"), ("v_weights", "v_bias"))


class _Geo:
    """Sizes of one call and the `Att` uniform of the shader."""

    def __init__(self, spec, x: GpuArray):
        self.d, self.nh, self.hd = spec.d_model, spec.num_heads, spec.head_dim
        self.nb = buffer_rows(x)
        self.seq = x.size // (self.nb * spec.d_model)
        self.rows = self.nb * self.seq

    def att(self, rotate: int = 0) -> dict:
        return {"nb": self.nb, "seq": self.seq, "nh": self.nh, "hd": self.hd, "d": self.d,
                "rotate": rotate, "scale": 1.0 / math.sqrt(self.hd), "p0": 0}


def _run(stream, entry: str, arrays: list, g: _Geo, items: int, rotate: int = 0) -> None:
    stream.dispatch(SHADER, arrays, g.att(rotate), stream.groups(items, WG), entry=entry)


def _rope_table(stream, g: _Geo) -> GpuArray:
    cos, sin = rope_tables(g.seq, g.hd, np.float32, ROPE_THETA)  # the CPU layer's tables
    return stream.upload(np.stack([cos, sin]), WHERE)  # (2, seq, hd)


# Operand layouts for `_bgemm`: strides (per sample, per head, per row, per column).
def _heads(g: _Geo, transposed: bool = False) -> tuple:
    """A (batch*seq, d) array seen as (seq, hd) per head, or (hd, seq) when transposed."""
    return (g.seq * g.d, g.hd) + ((1, g.d) if transposed else (g.d, 1))


def _probs(g: _Geo, transposed: bool = False) -> tuple:
    """A (batch, heads, seq, seq) array seen as (seq, seq) per head, or its transpose."""
    return (g.nh * g.seq * g.seq, g.seq * g.seq) + ((1, g.seq) if transposed else (g.seq, 1))


CAUSAL_OUT, LOWER_A, UPPER_A = 1, 2, 3  # bgemm modes (see multi_head_attention.wgsl)


def _bgemm(stream, a, a_layout, b, b_layout, g: _Geo, mode: int, scores: bool) -> GpuArray:
    """Per (sample, head): C = A @ B, C (seq, seq) probabilities-shaped when `scores`, else
    (seq, hd) head columns of a (batch*seq, d) array."""
    out = stream.scratch((g.nb, g.nh, g.seq, g.seq) if scores else (g.rows, g.d), WHERE)
    m, n, k = (g.seq, g.seq, g.hd) if scores else (g.seq, g.hd, g.seq)
    c_layout = _probs(g) if scores else _heads(g)
    limit = stream.device.limits.get("max-compute-workgroups-per-dimension", 65535)
    pairs = g.nb * g.nh
    for z0 in range(0, pairs, limit):
        params = {"m": m, "n": n, "k": k, "nh": g.nh, "z0": z0, "mode": mode, "p0": 0, "p1": 0}
        for name, layout in (("a", a_layout), ("b", b_layout), ("c", c_layout)):
            params.update({f"{name}{i}": v for i, v in enumerate(layout)})
        stream.dispatch(SHADER, [a, b, out], params,
                        (-(-n // 16), -(-m // 16), min(limit, pairs - z0)), entry="bgemm")
    return out


def forward(stream: Stream, spec, params: dict, x: GpuArray) -> tuple:
    """x: (batch, seq*d_model) -> (y of the same shape, cache); no activation, no residual.

    Raises:
        ShapeError: x's features are not a positive multiple of d_model.
    """
    spec.out_features(x.shape[1], "multi_head_attention gpu forward")
    g = _Geo(spec, x)
    table = _rope_table(stream, g)
    qkv = []
    for n, (wk, bk) in enumerate(_QKV):
        a = stream.scratch((g.rows, g.d), WHERE)
        stream.gemm(x, params[wk], a, g.rows, g.d, g.d)
        _run(stream, "bias_rope", [a, params[bk], table], g, g.rows * g.d // 2, int(n < 2))
        qkv.append(a)
    p = _bgemm(stream, qkv[0], _heads(g), qkv[1], _heads(g, True), g, CAUSAL_OUT, True)
    _run(stream, "causal_softmax", [p], g, g.nb * g.nh * g.seq)  # scores -> p, in place
    ctx = _bgemm(stream, p, _probs(g), qkv[2], _heads(g), g, LOWER_A, False)
    y = stream.scratch(x.shape, WHERE)
    stream.gemm(ctx, params["output_weight"], y, g.rows, g.d, g.d)
    _run(stream, "bias_rope", [y, params["output_bias"], table], g, g.rows * g.d // 2)
    return y, {"x": x, "qkv": qkv, "p": p, "ctx": ctx, "table": table, "geo": g}


def backward(stream: Stream, spec, params: dict, cache: dict, dy: GpuArray,
             need_dx: bool = True) -> tuple:
    """dy: (batch, seq*d_model) -> (dx, grads for all eight parameters), true gradients;
    need_dx=False skips dx's three GEMMs (None comes back)."""
    g, (q, k, v), p = cache["geo"], cache["qkv"], cache["p"]
    grads = {"output_weight": stream.scratch((g.d, g.d), WHERE),
             "output_bias": ops.colsum(stream, dy.reshape(g.rows, g.d))}
    stream.gemm(cache["ctx"], dy, grads["output_weight"], g.d, g.d, g.rows, trans_a=True)
    dctx = stream.scratch((g.rows, g.d), WHERE)
    stream.gemm(dy, params["output_weight"], dctx, g.rows, g.d, g.d, trans_b=True)
    dv = _bgemm(stream, p, _probs(g, True), dctx, _heads(g), g, UPPER_A, False)
    ds = _bgemm(stream, dctx, _heads(g), v, _heads(g, True), g, CAUSAL_OUT, True)  # dP
    _run(stream, "causal_softmax_back", [p, ds], g, g.nb * g.nh * g.seq)  # dP -> dS, in place
    dq = _bgemm(stream, ds, _probs(g), k, _heads(g), g, LOWER_A, False)
    dk = _bgemm(stream, ds, _probs(g, True), q, _heads(g), g, UPPER_A, False)
    for a in (dq, dk):
        _run(stream, "rope_back", [a, cache["table"]], g, g.rows * g.d // 2)
    dx = stream.scratch(dy.shape, WHERE) if need_dx else None
    for n, (da, (wk, bk)) in enumerate(zip((dq, dk, dv), _QKV)):
        grads[wk] = stream.scratch((g.d, g.d), WHERE)
        stream.gemm(cache["x"], da, grads[wk], g.d, g.d, g.rows, trans_a=True)
        grads[bk] = ops.colsum(stream, da)
        if need_dx:
            stream.gemm(da, params[wk], dx, g.rows, g.d, g.d, trans_b=True, accumulate=n > 0)
    return dx, {key: grads[key] for key in WEIGHT_KEYS}
