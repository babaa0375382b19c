"""Fused element-wise kernels: bias + activation forward, activation backward (+ bias grad).

Each activation gets its own loop (the activation test is outside the loop), so LLVM
vectorises the float32 loops; exp/tanh go through fastmath.fexp, which is a SIMD-friendly exp
for float32 and the exact exp for float64 (gradient checks) and in pure-Python mode.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ...activations import ACTIVATIONS
from .fastmath import FM, fexp

_JIT = dict(cache=True, nogil=True, fastmath=FM, error_model="numpy")


@numba.njit(cache=True, nogil=True)
def _act(a, v):
    """Scalar activation `a` (LOOM id) of v; used by kernels that need one value at a time."""
    if a == 0:
        w = v * 1.1
        return w if w > 0 else v * 0
    if a == 1:
        if v >= 0:
            return 1 / (1 + math.exp(-v))
        e = math.exp(v)
        return e / (1 + e)
    if a == 2:
        return math.tanh(v)
    if a == 3:
        return max(v, 0) + math.log1p(math.exp(-abs(v)))
    if a == 4:
        return v if v >= 0 else v * 0.1
    return v


@numba.njit(cache=True, nogil=True)
def _act_grad(a, z, y):
    """d act / d z at pre-activation z with output y."""
    if a == 0:
        return 1.1 if z > 0 else 0.0
    if a == 1:
        return y * (1 - y)
    if a == 2:
        return 1 - y * y
    if a == 3:
        if z >= 0:
            return 1 / (1 + math.exp(-z))
        e = math.exp(z)
        return e / (1 + e)
    if a == 4:
        return 1.0 if z >= 0 else 0.1
    return 1.0


@numba.njit(inline="always", **_JIT)
def _sigmoid(v):
    # 1/(1+e^-v) without overflow: e = exp(-|v|) <= 1
    e = fexp(-abs(v))
    s = 1 / (1 + e)
    return s if v >= 0 else e * s


@numba.njit(inline="always", **_JIT)
def _tanh(v):
    e = fexp(-2 * abs(v))
    t = (1 - e) / (1 + e)
    return t if v >= 0 else -t


@numba.njit(inline="always", **_JIT)
def _softplus(v):
    return max(v, v - v) + math.log1p(fexp(-abs(v)))


@numba.njit(**_JIT)
def _bias_act(z, b, a, y):
    # z: (n, m) gets the bias added in place; y: (n, m) receives act(z)
    n, m = z.shape
    one, zero = z.dtype.type(1.1), z.dtype.type(0)
    for i in range(n):
        for j in range(m):
            z[i, j] += b[j]
        if a == 0:
            for j in range(m):
                y[i, j] = max(z[i, j] * one, zero)
        elif a == 4:
            for j in range(m):
                v = z[i, j]
                y[i, j] = v if v >= 0 else v * z.dtype.type(0.1)
        elif a == 1:
            for j in range(m):
                y[i, j] = _sigmoid(z[i, j])
        elif a == 2:
            for j in range(m):
                y[i, j] = _tanh(z[i, j])
        elif a == 3:
            for j in range(m):
                y[i, j] = _softplus(z[i, j])
        else:
            for j in range(m):
                y[i, j] = z[i, j]


@numba.njit(**_JIT)
def _act_back_bias(z, y, dy, a, dz, db):
    # dz = dy * act'(z); db = column sums of dz
    n, m = z.shape
    for j in range(m):
        db[j] = 0
    for i in range(n):
        if a == 0:
            for j in range(m):
                dz[i, j] = dy[i, j] * z.dtype.type(1.1) if z[i, j] > 0 else z.dtype.type(0)
        elif a == 4:
            for j in range(m):
                dz[i, j] = dy[i, j] if z[i, j] >= 0 else dy[i, j] * z.dtype.type(0.1)
        elif a == 1:
            for j in range(m):
                dz[i, j] = dy[i, j] * y[i, j] * (1 - y[i, j])
        elif a == 2:
            for j in range(m):
                dz[i, j] = dy[i, j] * (1 - y[i, j] * y[i, j])
        elif a == 3:
            for j in range(m):
                dz[i, j] = dy[i, j] * _sigmoid(z[i, j])
        else:
            for j in range(m):
                dz[i, j] = dy[i, j]
        for j in range(m):
            db[j] += dz[i, j]


@numba.njit(cache=True, nogil=True)
def _act_only(z, a, y):
    flat_z, flat_y = z.ravel(), y.ravel()
    for i in range(flat_z.size):
        flat_y[i] = _act(a, flat_z[i])


def bias_act_forward(z: np.ndarray, b: np.ndarray, activation: str) -> np.ndarray:
    """Add bias `b` (m,) to `z` (n, m) in place and return act(z) as a new array."""
    z2 = z.reshape(-1, b.shape[0])
    y = np.empty_like(z2)
    _bias_act(z2, b.astype(z.dtype, copy=False), ACTIVATIONS[activation], y)
    return y.reshape(z.shape)


def act_forward(z: np.ndarray, activation: str) -> np.ndarray:
    """act(z) for a C-contiguous array of any shape."""
    z = np.ascontiguousarray(z)
    y = np.empty_like(z)
    _act_only(z, ACTIVATIONS[activation], y)
    return y


def act_backward_bias(z: np.ndarray, y: np.ndarray, dy: np.ndarray, activation: str):
    """(dL/dz, column sums of dL/dz) for 2-D z, y = act(z), dy (all (n, m))."""
    dz = np.empty_like(z)
    db = np.empty(z.shape[1], dtype=z.dtype)
    _act_back_bias(z, y, np.ascontiguousarray(dy, dtype=z.dtype), ACTIVATIONS[activation],
                   dz, db)
    return dz, db


def act_backward(z: np.ndarray, y: np.ndarray, dy: np.ndarray, activation: str) -> np.ndarray:
    """dL/dz given z, y = act(z) and dL/dy (same shapes, C-contiguous)."""
    if activation == "linear":
        return np.array(dy, dtype=z.dtype, copy=True)
    z2 = z.reshape(-1, z.shape[-1]) if z.ndim > 1 else z.reshape(1, -1)
    dz, _ = act_backward_bias(z2, y.reshape(z2.shape), np.reshape(dy, z2.shape), activation)
    return dz.reshape(z.shape)
