"""Causal attention core: RoPE packing, scaled causal softmax, and their backward kernels.

Layouts: `qkv` is the fused projection output (rows = batch*seq, 3*d_model) with the Q, K, V
column blocks side by side; q, k, v and the attention output are (batch, heads, seq, head_dim).
RoPE is rotate_half form with the cos/sin tables (seq, head_dim) built by `rope_tables`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .jit import sized_njit


@sized_njit(True)
def _bias_rope(qkv, bias, cos, sin):
    # In place on qkv (rows, 3*d): add the bias, then rotate every Q and K head (rows = b*s+s)
    rows, width = qkv.shape
    ns, hd = cos.shape
    half, dm = hd // 2, width // 3
    for row in numba.prange(rows):
        s = row % ns
        for c in range(width):
            qkv[row, c] += bias[c]
        for c0 in range(0, 2 * dm, hd):
            for i in range(half):
                x1, x2 = qkv[row, c0 + i], qkv[row, c0 + half + i]
                qkv[row, c0 + i] = x1 * cos[s, i] - x2 * sin[s, i]
                qkv[row, c0 + half + i] = x2 * cos[s, half + i] + x1 * sin[s, half + i]


@sized_njit(True)
def _rope_backward(dqkv, cos, sin):
    # In place on the Q and K blocks of dqkv (rows, 3*d): the adjoint (transposed) rotation
    rows, width = dqkv.shape
    ns, hd = cos.shape
    half, dm = hd // 2, width // 3
    for row in numba.prange(rows):
        s = row % ns
        for c0 in range(0, 2 * dm, hd):
            for i in range(half):
                g1, g2 = dqkv[row, c0 + i], dqkv[row, c0 + half + i]
                dqkv[row, c0 + i] = g1 * cos[s, i] + g2 * sin[s, half + i]
                dqkv[row, c0 + half + i] = g2 * cos[s, half + i] - g1 * sin[s, i]


@sized_njit(True)
def _causal_softmax(scores, scale, p):
    # scores, p: (n, s, s); p[i, j] = softmax_j(scale * scores[i, j]) over j <= i, 0 above
    n, ns, _ = scores.shape
    for r in numba.prange(n * ns):
        a, i = r // ns, r % ns
        m = scores[a, i, 0] * scale
        for j in range(1, i + 1):
            m = max(m, scores[a, i, j] * scale)
        total = 0.0
        for j in range(i + 1):
            e = math.exp(scores[a, i, j] * scale - m)
            p[a, i, j] = e
            total += e
        inv = 1.0 / total
        for j in range(i + 1):
            p[a, i, j] *= inv
        for j in range(i + 1, ns):
            p[a, i, j] = 0.0


@sized_njit(True)
def _causal_softmax_backward(p, dp, scale, ds):
    # ds = scale * p * (dp - <dp, p>) per row; the masked upper triangle stays exactly 0
    n, ns, _ = p.shape
    for r in numba.prange(n * ns):
        a, i = r // ns, r % ns
        dot = 0.0
        for j in range(i + 1):
            dot += dp[a, i, j] * p[a, i, j]
        for j in range(i + 1):
            ds[a, i, j] = scale * p[a, i, j] * (dp[a, i, j] - dot)
        for j in range(i + 1, ns):
            ds[a, i, j] = 0.0


def rope_tables(seq: int, head_dim: int, dtype, theta: float = 1e6):
    """cos, sin: (seq, head_dim) for positions 0..seq-1, freq_i = theta^(-2i/head_dim)
    for i < head_dim/2, duplicated to the second half (computed in float64)."""
    half = head_dim // 2
    freq = theta ** (-2.0 * np.arange(half) / head_dim)
    angle = np.arange(seq)[:, None] * np.concatenate([freq, freq])[None, :]
    return np.cos(angle).astype(dtype), np.sin(angle).astype(dtype)


def heads_view(a: np.ndarray, batch: int, heads: int, block: int = 0, blocks: int = 1):
    """(batch*seq, blocks*d) rows -> the (batch, heads, seq, hd) strided view of one block."""
    seq = a.shape[0] // batch
    hd = a.shape[1] // (blocks * heads)
    return a.reshape(batch, seq, blocks, heads, hd)[:, :, block].transpose(0, 2, 1, 3)


def bias_rope(qkv: np.ndarray, bias: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> None:
    """In place on qkv (batch*seq, 3*d): add bias (3*d,), RoPE on the Q and K blocks."""
    _bias_rope(qkv, bias, cos, sin)


def rope_backward(dqkv: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> None:
    """In place on dqkv (batch*seq, 3*d): gradients after RoPE -> before it (Q, K blocks)."""
    _rope_backward(dqkv, cos, sin)


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, o: np.ndarray):
    """Causal scaled dot-product attention; q, k, v, o may be strided (batch, heads, seq, hd)
    views with unit last stride (BLAS-able), all one float dtype.

    Writes the output into `o` and returns the attention weights p (batch, heads, seq, seq).
    """
    nb, nh, ns, hd = q.shape
    scores = np.matmul(q, k.swapaxes(-1, -2))  # (b, h, s, s)
    s3 = scores.reshape(nb * nh, ns, ns)
    _causal_softmax(s3, q.dtype.type(1.0 / math.sqrt(hd)), s3)  # in place: scores -> p
    np.matmul(scores, v, out=o)
    return scores


def attention_backward(q, k, v, p: np.ndarray, do: np.ndarray, dq, dk, dv) -> None:
    """Backward of `attention_forward`: do -> dq, dk, dv, written into the given (possibly
    strided) (batch, heads, seq, hd) views."""
    nb, nh, ns, hd = q.shape
    np.matmul(p.swapaxes(-1, -2), do, out=dv)
    dp = np.matmul(do, v.swapaxes(-1, -2))  # (b, h, s, s)
    d3 = dp.reshape(nb * nh, ns, ns)
    _causal_softmax_backward(p.reshape(d3.shape), d3, q.dtype.type(1.0 / math.sqrt(hd)), d3)
    np.matmul(dp, k, out=dq)
    np.matmul(dp.swapaxes(-1, -2), q, out=dk)
