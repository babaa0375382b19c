"""Forward and true Jacobian-vector products of each softmax variant, per sample row."""

from __future__ import annotations

import numpy as np

from ..kernels.cpu import softmax as K

_GUMBEL = {"rng": np.random.default_rng()}


def set_gumbel_seed(seed) -> None:
    """Seed the Generator that unseeded gumbel layers draw their noise from."""
    _GUMBEL["rng"] = np.random.default_rng(seed)


def _rows(x, cols):
    return x.reshape(-1, cols)


# ------------------------------------------------------------------ plain and per-row
def _standard(spec, x, t=None):
    t = spec.effective_temperature if t is None else t
    y = K.softmax_rows(x, t)
    return y, (y, t)


def _standard_back(spec, cache, g):
    y, t = cache
    return K.softmax_rows_backward(y, g, t)


def _grid_cols(spec):
    return spec.cols if spec.variant == "grid" else spec.levels[-1]


def _grid(spec, x):
    cols = _grid_cols(spec)
    y = K.softmax_rows(_rows(x, cols), spec.effective_temperature)
    return y.reshape(x.shape), (y, spec.effective_temperature)


def _grid_back(spec, cache, g):
    y, t = cache
    return K.softmax_rows_backward(y, _rows(g, y.shape[1]), t).reshape(g.shape)


def _gumbel(spec, x):
    rng = (np.random.default_rng(spec.noise_seed) if spec.noise_seed is not None
           else _GUMBEL["rng"])
    u = np.maximum(rng.random(x.shape, dtype=np.float32), np.float32(1e-10))
    noise = (-np.log(-np.log(u.astype(np.float64)))).astype(x.dtype)
    t = spec.effective_temperature
    y = K.softmax_rows((x + noise) / x.dtype.type(t), 1.0)
    return y, (y, t)  # the noise is held fixed: d/dx = J_softmax / T


def _masked(spec, x):
    keep = np.asarray(spec.mask)
    y, cache = _standard(spec, np.where(keep, x, x.dtype.type(-1e9)))
    return y, (cache, keep)


def _masked_back(spec, cache, g):
    inner, keep = cache
    return np.where(keep, _standard_back(spec, inner, g), 0).astype(g.dtype, copy=False)


def _sparse(spec, x):
    y = K.sparsemax_rows(x)
    return y, y


def _sparse_back(spec, y, g):
    return K.sparsemax_rows_backward(y, g)


# ---------------------------------------------------------------------------- entmax
def _entmax(spec, x):
    a = spec.entmax_alpha
    if a <= 1.0:
        return _standard(spec, x, 1.0)
    if a >= 2.0:
        return _sparse(spec, x)
    w = x.dtype.type(a - 1.0)
    p, s = K.softmax_rows(x, 1.0), K.sparsemax_rows(x)
    b = (1 - w) * p + w * s
    total = b.sum(axis=1, keepdims=True)  # LOOM renormalises (mathematically 1)
    return b / total, (p, s, b / total, total, w)


def _entmax_back(spec, cache, g):
    a = spec.entmax_alpha
    if a <= 1.0:
        return _standard_back(spec, cache, g)
    if a >= 2.0:
        return _sparse_back(spec, cache, g)
    p, s, y, total, w = cache
    db = (g - np.sum(g * y, axis=1, keepdims=True)) / total
    return (1 - w) * K.softmax_rows_backward(p, db) + w * K.sparsemax_rows_backward(s, db)


# -------------------------------------------------------------------------- adaptive
def _membership(spec, n, dtype):
    """(cluster id per feature, one-hot (n, C)): listed clusters, then singletons."""
    cid = np.full(n, -1, dtype=np.int64)
    for c, idx in enumerate(spec.adaptive_clusters):
        cid[list(idx)] = c
    rest = np.flatnonzero(cid < 0)
    cid[rest] = len(spec.adaptive_clusters) + np.arange(rest.size)
    onehot = np.zeros((n, int(cid.max()) + 1), dtype=dtype)
    onehot[np.arange(n), cid] = 1
    return cid, onehot


def _adaptive(spec, x):
    if not spec.adaptive_clusters:
        return _standard(spec, x, 1.0)  # LOOM: plain softmax, temperature ignored
    cid, onehot = _membership(spec, x.shape[1], x.dtype)
    m = np.stack([x[:, onehot[:, c] > 0].max(axis=1) for c in range(onehot.shape[1])], 1)
    e = np.exp(x - m[:, cid])
    z = e @ onehot                                 # (batch, C)
    q = e / z[:, cid]                              # P(i | cluster)
    logits = m + np.log(z)                         # log-sum-exp of each cluster
    t = spec.effective_temperature
    p = K.softmax_rows(np.ascontiguousarray(logits), t)  # P(cluster)
    return p[:, cid] * q, (cid, onehot, q, p, t)


def _adaptive_back(spec, cache, g):
    if not spec.adaptive_clusters:
        return _standard_back(spec, cache, g)
    cid, onehot, q, p, t = cache
    dq = g * p[:, cid]
    dx = q * (dq - ((dq * q) @ onehot)[:, cid])
    dl = K.softmax_rows_backward(p, (g * q) @ onehot, t)
    return dx + dl[:, cid] * q


# --------------------------------------------------------------------------- mixture
def _mixture(spec, x):
    if not spec.mixture_weights:
        return _standard(spec, x, 1.0)  # LOOM: plain softmax, temperature ignored
    m = len(spec.mixture_weights)
    w = np.asarray(spec.mixture_weights, dtype=x.dtype)
    w = w / w.sum()
    s = K.softmax_rows(x.reshape(-1, x.shape[1] // m), 1.0).reshape(x.shape[0], m, -1)
    return np.einsum("m,bmk->bk", w, s), (s, w)


def _mixture_back(spec, cache, g):
    if not spec.mixture_weights:
        return _standard_back(spec, cache, g)
    s, w = cache
    gm = w[None, :, None] * g[:, None, :]          # (batch, M, k)
    b, m, k = s.shape
    return K.softmax_rows_backward(s.reshape(b * m, k), gm.reshape(b * m, k)).reshape(b, m * k)


FORWARD = {"standard": _standard, "temperature": _standard, "grid": _grid,
           "hierarchical": _grid, "gumbel": _gumbel, "masked": _masked, "sparse": _sparse,
           "entmax": _entmax, "adaptive": _adaptive, "mixture": _mixture}
BACKWARD = {"standard": _standard_back, "temperature": _standard_back, "grid": _grid_back,
            "hierarchical": _grid_back, "gumbel": _standard_back, "masked": _masked_back,
            "sparse": _sparse_back, "entmax": _entmax_back, "adaptive": _adaptive_back,
            "mixture": _mixture_back}
