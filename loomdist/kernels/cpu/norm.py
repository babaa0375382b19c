"""Row-wise LayerNorm / RMSNorm kernels and SwiGLU's fused gate, forward and backward.

Every kernel works on C-contiguous (rows, n) arrays of one float dtype. Scalars that enter the
inner loops (eps, 1/n) are passed in that dtype and per-row statistics are re-read from their
output arrays, so float32 data stays float32 inside the loops (8-wide SIMD) and float64 data
(finite-difference tests) stays exact. Parameter-gradient reductions over rows go to per-chunk
partial buffers `(chunks, ..., n)` that the wrapper sums, so the row loop can run in parallel.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import overload

from .fastmath import FM as _FM
from .fastmath import exp32 as _exp32
from .jit import sized_njit


def _sigmoid(v):
    """Logistic 1 / (1 + exp(-v)); exact here, a vectorisable float32 twin under Numba."""
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)  # no OverflowError in pure Python (NUMBA_DISABLE_JIT) for v << 0
    return e / (1.0 + e)


@overload(_sigmoid, inline="always", jit_options={"fastmath": _FM})
def _sigmoid_jit(v):
    if isinstance(v, numba.types.Float) and v.bitwidth == 32:
        def f32(v):
            return np.float32(1.0) / (np.float32(1.0) + _exp32(-v))
        return f32

    def exact(v):  # exp overflows to inf under Numba: the result is still 0
        return 1.0 / (1.0 + math.exp(-v))
    return exact


@sized_njit(_FM)
def _ln_forward(x, gamma, beta, eps, inv_n, y, mean, rstd):
    # x, y: (rows, n); mean, rstd: (rows,)
    rows, n = x.shape
    for r in numba.prange(rows):
        k = x[r, 0]  # shift: one pass over the row without catastrophic cancellation
        s = k - k
        ss = k - k
        for j in range(n):
            d = x[r, j] - k
            s += d
            ss += d * d
        m = s * inv_n
        mean[r] = k + m
        rstd[r] = 1.0 / math.sqrt(max(ss * inv_n - m * m, 0.0) + eps)
        a = rstd[r]
        b = -mean[r] * a
        for j in range(n):
            y[r, j] = (x[r, j] * a + b) * gamma[j] + beta[j]


@sized_njit(_FM)
def _ln_backward(x, gamma, mean, rstd, dy, inv_n, dx, part):
    # part: (chunks, 2, n) partial sums of dy * xhat (dgamma) and dy (dbeta)
    rows, n = x.shape
    chunks = part.shape[0]
    step = (rows + chunks - 1) // chunks
    for c in numba.prange(chunks):
        for r in range(c * step, min(rows, (c + 1) * step)):
            a = rstd[r]
            b = -mean[r] * a
            s1 = a - a
            s2 = a - a
            for j in range(n):
                xh = x[r, j] * a + b
                g = dy[r, j] * gamma[j]
                s1 += g
                s2 += g * xh
                part[c, 0, j] += dy[r, j] * xh
                part[c, 1, j] += dy[r, j]
            s1 *= inv_n
            s2 *= inv_n
            for j in range(n):
                xh = x[r, j] * a + b
                dx[r, j] = a * (dy[r, j] * gamma[j] - s1 - xh * s2)


@sized_njit(_FM)
def _rms_forward(x, gamma, eps, inv_n, y, rstd):
    rows, n = x.shape
    for r in numba.prange(rows):
        ss = x[r, 0] - x[r, 0]
        for j in range(n):
            ss += x[r, j] * x[r, j]
        rstd[r] = 1.0 / math.sqrt(ss * inv_n + eps)
        a = rstd[r]
        for j in range(n):
            y[r, j] = x[r, j] * a * gamma[j]


@sized_njit(_FM)
def _rms_backward(x, gamma, rstd, dy, inv_n, dx, part):
    # part: (chunks, n) partial sums of dy * xhat (dgamma)
    rows, n = x.shape
    chunks = part.shape[0]
    step = (rows + chunks - 1) // chunks
    for c in numba.prange(chunks):
        for r in range(c * step, min(rows, (c + 1) * step)):
            a = rstd[r]
            s = a - a
            for j in range(n):
                xh = x[r, j] * a
                s += dy[r, j] * gamma[j] * xh
                part[c, j] += dy[r, j] * xh
            s *= inv_n
            for j in range(n):
                dx[r, j] = a * (dy[r, j] * gamma[j] - x[r, j] * a * s)


@sized_njit(_FM)
def _glu_forward(a, u, bg, bu, h):
    # a, u: (rows, m) gate / up pre-activations get their biases in place; h = silu(a) * u
    rows, m = a.shape
    for r in numba.prange(rows):
        for j in range(m):
            g = a[r, j] + bg[j]
            v = u[r, j] + bu[j]
            a[r, j] = g
            u[r, j] = v
            h[r, j] = g * _sigmoid(g) * v


@sized_njit(_FM)
def _glu_backward(a, u, dh, du, part):
    # dh: (rows, m) is overwritten with d(gate); du receives d(up); part: (chunks, 2, m) bias sums
    rows, m = a.shape
    chunks = part.shape[0]
    step = (rows + chunks - 1) // chunks
    for c in numba.prange(chunks):
        for r in range(c * step, min(rows, (c + 1) * step)):
            for j in range(m):
                g = a[r, j]
                s = _sigmoid(g)
                d = dh[r, j]
                dv = d * g * s
                dg = d * u[r, j] * (s + g * (s - s * s))  # silu' = s (1 + g (1 - s))
                du[r, j] = dv
                dh[r, j] = dg
                part[c, 0, j] += dg
                part[c, 1, j] += dv


def _chunks(rows: int) -> int:
    return max(1, min(rows, numba.get_num_threads()))


def _rows(x: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(x).reshape(-1, n)


def _like(p: np.ndarray, dtype) -> np.ndarray:
    return np.ascontiguousarray(p, dtype=dtype)


def layer_norm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float):
    """x: (rows, n) -> (y (rows, n), mean (rows,), rstd (rows,)), all in x's dtype."""
    t = x.dtype.type
    n = gamma.shape[0]
    x = _rows(x, n)
    y = np.empty_like(x)
    mean = np.empty(x.shape[0], x.dtype)
    rstd = np.empty(x.shape[0], x.dtype)
    _ln_forward(x, _like(gamma, x.dtype), _like(beta, x.dtype), t(eps), t(1.0 / n), y, mean,
                rstd)
    return y, mean, rstd


def layer_norm_backward(x, gamma, mean, rstd, dy):
    """Returns (dx (rows, n), dgamma (n,), dbeta (n,)) for the cached forward of x."""
    n = gamma.shape[0]
    dy = _rows(np.asarray(dy, dtype=x.dtype), n)
    dx = np.empty_like(x)
    part = np.zeros((_chunks(x.shape[0]), 2, n), x.dtype)
    _ln_backward(x, _like(gamma, x.dtype), mean, rstd, dy, x.dtype.type(1.0 / n), dx, part)
    sums = part.sum(axis=0)
    return dx, sums[0], sums[1]


def rms_norm_forward(x: np.ndarray, gamma: np.ndarray, eps: float):
    """x: (rows, n) -> (y (rows, n), rstd (rows,))."""
    t = x.dtype.type
    n = gamma.shape[0]
    x = _rows(x, n)
    y = np.empty_like(x)
    rstd = np.empty(x.shape[0], x.dtype)
    _rms_forward(x, _like(gamma, x.dtype), t(eps), t(1.0 / n), y, rstd)
    return y, rstd


def rms_norm_backward(x, gamma, rstd, dy):
    """Returns (dx (rows, n), dgamma (n,))."""
    n = gamma.shape[0]
    dy = _rows(np.asarray(dy, dtype=x.dtype), n)
    dx = np.empty_like(x)
    part = np.zeros((_chunks(x.shape[0]), n), x.dtype)
    _rms_backward(x, _like(gamma, x.dtype), rstd, dy, x.dtype.type(1.0 / n), dx, part)
    return dx, part.sum(axis=0)


def glu_forward(a: np.ndarray, u: np.ndarray, bg: np.ndarray, bu: np.ndarray) -> np.ndarray:
    """Adds bg / bu to the fresh GEMM outputs a, u (rows, m) in place; returns silu(a) * u."""
    h = np.empty_like(a)
    _glu_forward(a, u, _like(bg, a.dtype), _like(bu, a.dtype), h)
    return h


def glu_backward(a: np.ndarray, u: np.ndarray, dh: np.ndarray):
    """Overwrites the fresh dh (rows, m) with d(gate); returns (dgate, dup, dbg, dbu)."""
    du = np.empty_like(a)
    part = np.zeros((_chunks(a.shape[0]), 2, a.shape[1]), a.dtype)
    _glu_backward(a, u, dh, du, part)
    sums = part.sum(axis=0)
    return dh, du, sums[0], sums[1]
