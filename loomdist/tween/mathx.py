"""Tween's scalar rules: depth scale, derivative from the output, target clamps, clipping.

All on float32 vectors (LOOM's arithmetic); the depth scale uses float64 like Go's math.Pow.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .config import TweenConfig

F32 = np.float32


@lru_cache(maxsize=4096)
def depth_scale(d: int, factor: float = 1.2) -> float:
    """LOOM's depth boost: 1 for d <= 0; factor**d' with d' = d (d <= 10) else 10 + ln(d-9);
    capped at 100; NaN/Inf -> 1."""
    if d <= 0:
        return 1.0
    dd = float(d) if d <= 10 else 10.0 + math.log(d - 9)
    s = math.pow(factor, dd)
    if not math.isfinite(s):
        return 1.0
    return float(F32(min(s, 100.0)))


def derivative_from_output(activation: str | None, y: np.ndarray, cfg: TweenConfig):
    """LOOM's activateDerivativeFromOutput: phi'(y) from the post-activation value y."""
    y = np.asarray(y, F32)
    eps = F32(cfg.derivative_epsilon)
    if activation == "relu":
        return np.where(y > 0, F32(cfg.relu_slope), F32(0))
    if activation == "sigmoid":
        return y * (F32(1) - y) + eps
    if activation == "tanh":
        return F32(1) - y * y + eps
    if activation == "softplus":
        return _sigmoid(y) + eps
    if activation == "leaky_relu":
        return np.where(y >= 0, F32(1), F32(cfg.leaky_relu_slope))
    return np.ones_like(y)


def _sigmoid(y: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (F32(1) / (F32(1) + np.exp(-y))).astype(F32)


def target_bounds(activation: str | None, cfg: TweenConfig, chain: bool):
    """(lo, hi) clamp of a backward target for a layer with `activation`, or None.

    Legacy clamps ScaledReLU/LeakyReLU to [0, M], chain mode to [-M, M]; softplus and others
    are not clamped."""
    if activation == "tanh":
        return cfg.tanh_clamp_min, cfg.tanh_clamp_max
    if activation == "sigmoid":
        return cfg.sigmoid_clamp_min, cfg.sigmoid_clamp_max
    if activation in ("relu", "leaky_relu"):
        return (-cfg.relu_clamp_max if chain else 0.0), cfg.relu_clamp_max
    return None


def clamp_target(v: np.ndarray, activation: str | None, cfg: TweenConfig, chain: bool):
    """Clamp a target vector by the consuming layer's activation (LOOM's quirk, spec 4.5)."""
    b = target_bounds(activation, cfg, chain)
    return v if b is None else np.clip(v, F32(b[0]), F32(b[1]))


def clip(v, m: float):
    """Clamp to [-m, m] (element-wise, float32)."""
    return np.clip(np.asarray(v, F32), F32(-m), F32(m))


def safe(v: np.ndarray, m: float | None = None) -> np.ndarray:
    """NaN/Inf -> 0, then clip to [-m, m] when m is given."""
    out = np.where(np.isfinite(v), v, F32(0)).astype(F32)
    return out if m is None else clip(out, m)


def fit(v: np.ndarray, n: int) -> np.ndarray:
    """Truncate or zero-pad v to length n (LOOM's pass-through)."""
    if v.size == n:
        return v
    out = np.zeros(n, F32)
    m = min(n, v.size)
    out[:m] = v[:m]
    return out


def flat_rows(w: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """View a flat weight as (rows, cols) with LOOM's index i*cols + j; entries past the end
    of w read as 0 (LOOM's bounds checks)."""
    flat = w.reshape(-1)
    need = rows * cols
    if flat.size >= need:
        return flat[:need].reshape(rows, cols)
    return fit(flat, need).reshape(rows, cols)


def add_flat_rows(w: np.ndarray, delta: np.ndarray) -> None:
    """w.flat[i*cols + j] += delta[i, j] where that index exists (in place)."""
    flat = w.reshape(-1)
    d = delta.reshape(-1)
    n = min(flat.size, d.size)
    flat[:n] += d[:n]


def cyclic(x: np.ndarray, n: int) -> np.ndarray:
    """x[k mod len x] for k < n (LOOM's `x[k % len(x)]`)."""
    if x.size == 0:
        return np.zeros(n, F32)
    return np.resize(x, n).astype(F32, copy=False)
