"""Conv2D kernels: batched im2col / col2im and the per-channel fused bias + activation.

Layouts are LOOM's NCHW: x (n, C, H, W); columns (n, C*k*k, oh, ow) with row
`(c*k + ki)*k + kj`, the kernel's flat `[F][C][k][k]` order, so `W (F, C*k*k) @ cols[b]` is
sample b's output (F, oh*ow) already in NCHW. Zero padding is written explicitly: column
buffers are reused between batch chunks.

The kernels are serial on purpose. They are memory-bound and run between the per-sample BLAS
GEMMs; prange twins (over (sample, channel) pairs, race-free) made the conv2d benchmark 2.5x
slower on 2 cores, Numba's OpenMP workers and OpenBLAS's spinning threads fighting over them.
Serial, they cost ~60 ms of a ~470 ms forward+backward at LOOM's benchmark config.
"""

from __future__ import annotations

import numba
import numpy as np

from ...activations import ACTIVATIONS
from .elementwise import _act, _act_grad
from .fastmath import FM as _FM

_U = np.uintp  # unsigned flat offsets: Numba skips the negative-index wraparound select,
# which otherwise turns every contiguous loop below into scalar gathers and scatters


@numba.njit(cache=True, inline="always")
def _valid_range(kj, stride, pad, w, ow):
    # output columns ox whose input column ox*stride - pad + kj lies inside [0, w)
    lo = min(max(0, -((kj - pad) // stride)), ow)
    hi = min(ow, max(lo, (w - 1 + pad - kj) // stride + 1))
    return lo, hi


@numba.njit(cache=True)
def _im2col(x, k, stride, pad, cols):
    # x: (n, C, H, W) -> cols: (n, C*k*k, oh, ow). Flat arrays, no views inside the loops:
    # their refcounts would bounce one cache line between the threads.
    n, C, H, W = x.shape
    oh, ow = cols.shape[2], cols.shape[3]
    xf, cf, st = x.reshape(x.size), cols.reshape(cols.size), _U(stride)
    for t in range(n * C):  # t = b*C + c
        for ki in range(k):
            for kj in range(k):
                lo, hi = _valid_range(kj, stride, pad, W, ow)
                for oy in range(oh):
                    iy = oy * stride - pad + ki
                    d = _U((((t * k + ki) * k + kj) * oh + oy) * ow)
                    if iy < 0 or iy >= H:  # a padding row
                        for ox in range(_U(ow)):
                            cf[d + ox] = 0
                        continue
                    for ox in range(_U(lo)):
                        cf[d + ox] = 0
                    if hi > lo:
                        dv, src = d + _U(lo), _U((t * H + iy) * W - pad + kj + lo * stride)
                        for ox in range(_U(hi - lo)):
                            cf[dv + ox] = xf[src + ox * st]
                    for ox in range(_U(hi), _U(ow)):
                        cf[d + ox] = 0


@numba.njit(cache=True)
def _col2im(cols, k, stride, pad, dx):
    # cols: (n, C*k*k, oh, ow) -> dx: (n, C, H, W), overwritten (scatter-add of the columns)
    n, C, H, W = dx.shape
    oh, ow = cols.shape[2], cols.shape[3]
    cf, df, st = cols.reshape(cols.size), dx.reshape(dx.size), _U(stride)
    for t in range(n * C):
        base = _U(t * H * W)
        for j in range(_U(H * W)):
            df[base + j] = 0
        for ki in range(k):
            for kj in range(k):
                lo, hi = _valid_range(kj, stride, pad, W, ow)
                for oy in range(oh):
                    iy = oy * stride - pad + ki
                    if iy < 0 or iy >= H:
                        continue
                    d = _U((t * H + iy) * W - pad + kj + lo * stride)
                    s = _U((((t * k + ki) * k + kj) * oh + oy) * ow + lo)
                    for ox in range(_U(hi - lo)):
                        df[d + ox * st] += cf[s + ox]


@numba.njit(cache=True)
def _bias_act(z, b, a, y):
    # z: (n, F, P) gets the per-channel bias b (F,) in place; y: (n, F, P) = act(z)
    n, F, P = z.shape
    zf, yf = z.reshape(z.size), y.reshape(y.size)
    for t in range(n * F):
        bf, base = b[t % F], _U(t * P)
        for j in range(_U(P)):
            zf[base + j] += bf
        if a == 4:  # leaky_relu and relu spelled out: loops without calls vectorise
            for j in range(_U(P)):
                v = zf[base + j]
                yf[base + j] = v if v >= 0 else v * 0.1
        elif a == 0:
            for j in range(_U(P)):
                w = zf[base + j] * 1.1
                yf[base + j] = w if w > 0 else w * 0
        else:
            for j in range(_U(P)):
                yf[base + j] = _act(a, zf[base + j])


@numba.njit(cache=True, fastmath=_FM)  # reassociation vectorises the bias sum
def _act_back_bias(z, y, dy, a, dz, db):
    # dz = dy * act'(z) for (n, F, P) arrays; db (F,) += sum of dz over samples and positions
    n, F, P = z.shape
    zf, yf, gf = z.reshape(z.size), y.reshape(y.size), dy.reshape(dy.size)
    df = dz.reshape(dz.size)
    for f in range(F):
        s = 0.0  # float64 accumulator: a sum over n*P terms
        for i in range(n):
            base = _U((i * F + f) * P)
            if a == 4:  # leaky_relu and relu spelled out: loops without calls vectorise
                for j in range(_U(P)):
                    g = gf[base + j]
                    g = g if zf[base + j] >= 0 else g * 0.1
                    df[base + j] = g
                    s += g
            elif a == 0:
                for j in range(_U(P)):
                    g = gf[base + j] * 1.1 if zf[base + j] > 0 else gf[base + j] * 0
                    df[base + j] = g
                    s += g
            else:
                for j in range(_U(P)):
                    g = gf[base + j] * _act_grad(a, zf[base + j], yf[base + j])
                    df[base + j] = g
                    s += g
        db[f] += s


def im2col(x: np.ndarray, k: int, stride: int, pad: int, cols: np.ndarray) -> np.ndarray:
    """Fill `cols` (n, C*k*k, oh, ow) from `x` (n, C, H, W), both C-contiguous, same dtype."""
    _im2col(x, k, stride, pad, cols)
    return cols


def col2im(cols: np.ndarray, k: int, stride: int, pad: int, dx: np.ndarray) -> np.ndarray:
    """Overwrite `dx` (n, C, H, W) with the scatter-add of `cols` (n, C*k*k, oh, ow)."""
    _col2im(cols, k, stride, pad, dx)
    return dx


def bias_act(z: np.ndarray, b: np.ndarray, activation: str, y: np.ndarray) -> np.ndarray:
    """Add `b` (F,) to channel f of `z` (n, F, P) in place and write act(z) into `y`."""
    _bias_act(z, b.astype(z.dtype, copy=False), ACTIVATIONS[activation], y)
    return y


def act_back_bias(z: np.ndarray, y: np.ndarray, dy: np.ndarray, activation: str,
                  db: np.ndarray) -> np.ndarray:
    """dL/dz for (n, F, P) arrays; adds its per-channel sum to `db` (F,) float64 in place."""
    dz = np.empty_like(z)
    _act_back_bias(z, y, np.ascontiguousarray(dy, dtype=z.dtype), ACTIVATIONS[activation],
                   dz, db)
    return dz
