"""Fused element-wise kernels: bias + activation forward, activation backward."""

from __future__ import annotations

import math

import numba
import numpy as np

from ...activations import ACTIVATIONS


@numba.njit(cache=True, nogil=True)
def _act(a, v):
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


@numba.njit(cache=True, nogil=True)
def _bias_act(z, b, a, y):
    # z: (n, m) gets the bias added in place; y: (n, m) receives act(z)
    n, m = z.shape
    for i in range(n):
        for j in range(m):
            v = z[i, j] + b[j]
            z[i, j] = v
            y[i, j] = _act(a, v)


@numba.njit(cache=True, nogil=True)
def _act_back(z, y, dy, a, dz):
    flat_z, flat_y, flat_dy, flat_dz = z.ravel(), y.ravel(), dy.ravel(), dz.ravel()
    for i in range(flat_z.size):
        flat_dz[i] = flat_dy[i] * _act_grad(a, flat_z[i], flat_y[i])


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


def act_backward(z: np.ndarray, y: np.ndarray, dy: np.ndarray, activation: str) -> np.ndarray:
    """dL/dz given z, y = act(z) and dL/dy (same shapes, C-contiguous)."""
    if activation == "linear":
        return np.array(dy, dtype=z.dtype, copy=True)
    dz = np.empty_like(z)
    _act_back(z, y, np.ascontiguousarray(dy, dtype=z.dtype), ACTIVATIONS[activation], dz)
    return dz
