"""Row-wise softmax and sparsemax kernels (forward and Jacobian-vector products)."""

from __future__ import annotations

import numba
import numpy as np

from .fastmath import FM, fexp
from .jit import SizedKernel


def _softmax_rows(x, inv_t, y):
    # x, y: (rows, n); y = softmax(x * inv_t) per row. Arithmetic stays in x's dtype so
    # float32 rows vectorise (fexp is a SIMD-friendly exp for float32).
    rows, n = x.shape
    for r in numba.prange(rows):
        m = x[r, 0] * inv_t
        for j in range(1, n):
            m = max(m, x[r, j] * inv_t)
        s = m - m
        for j in range(n):
            e = fexp(x[r, j] * inv_t - m)
            y[r, j] = e
            s += e
        inv = 1 / s
        for j in range(n):
            y[r, j] *= inv


def _softmax_rows_backward(y, g, scale, dx):
    # dx = scale * y * (g - <g, y>) per row
    rows, n = y.shape
    for r in numba.prange(rows):
        dot = scale - scale
        for j in range(n):
            dot += g[r, j] * y[r, j]
        for j in range(n):
            dx[r, j] = scale * y[r, j] * (g[r, j] - dot)


def _sparsemax_rows(x, y):
    # tau by Michelot's fixed point: start with every entry in the support, set
    # tau = (sum(S) - 1) / |S| and drop entries <= tau until the support stops shrinking.
    # It finds the same tau as sorting (k = last i with s_i > (cumsum_i - 1) / i) in a few
    # O(n) passes instead of an O(n log n) sort per row.
    rows, n = x.shape
    for r in numba.prange(rows):
        total = 0.0
        for j in range(n):
            total += x[r, j]
        count = n
        tau = (total - 1.0) / n
        while True:
            total = 0.0
            kept = 0
            for j in range(n):
                if x[r, j] > tau:
                    total += x[r, j]
                    kept += 1
            if kept == count or kept == 0:
                break
            count = kept
            tau = (total - 1.0) / kept
        for j in range(n):
            y[r, j] = max(0.0, x[r, j] - tau)


def _sparsemax_rows_backward(y, g, dx):
    # On the support S = {y > 0}: dx = g - mean_S(g); zero elsewhere
    rows, n = y.shape
    for r in numba.prange(rows):
        total = 0.0
        count = 0
        for j in range(n):
            if y[r, j] > 0:
                total += g[r, j]
                count += 1
        mean = total / count if count > 0 else 0.0
        for j in range(n):
            dx[r, j] = g[r, j] - mean if y[r, j] > 0 else 0.0


# Each kernel in two builds (jit.SizedKernel): prange threads pay off only on large arrays;
# on small ones (and on a busy machine) waking the thread pool costs more than the work.
_KERNELS = {f.__name__: SizedKernel(f, fm) for f, fm in (
    (_softmax_rows, FM), (_softmax_rows_backward, FM), (_sparsemax_rows, False),
    (_sparsemax_rows_backward, False))}


def _kernel(name: str, size: int):
    return _KERNELS[name].pick(size)


def softmax_rows(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(x / T) over the last axis of a 2-D array."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _kernel("_softmax_rows", x.size)(x, x.dtype.type(1.0 / temperature), y)
    return y


def softmax_rows_backward(y: np.ndarray, g: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """JVP of softmax_rows: (y * (g - <g, y>)) / T per row."""
    dx = np.empty_like(y)
    _kernel("_softmax_rows_backward", y.size)(
        y, np.ascontiguousarray(g, dtype=y.dtype), y.dtype.type(1.0 / temperature), dx)
    return dx


def sparsemax_rows(x: np.ndarray) -> np.ndarray:
    """Sparsemax (Euclidean projection onto the simplex) over the last axis."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _kernel("_sparsemax_rows", x.size)(x, y)
    return y


def sparsemax_rows_backward(y: np.ndarray, g: np.ndarray) -> np.ndarray:
    """JVP of sparsemax_rows given its output y."""
    dx = np.empty_like(y)
    _kernel("_sparsemax_rows_backward", y.size)(y, np.ascontiguousarray(g, dtype=y.dtype), dx)
    return dx
