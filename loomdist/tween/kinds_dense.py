"""Tween rules of Dense and Conv2D (spec 4.5, 4.6, 4.9); kernels are LOOM's flat layouts."""

from __future__ import annotations

import numpy as np

from . import jit_dense as jd
from .kinds import PassRule, register
from .mathx import F32, clamp_target, cyclic, derivative_from_output


def _keep_finite(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """LOOM's safe() for weights: a NaN/Inf result keeps the old value."""
    return np.where(np.isfinite(new), new, old).astype(F32)


@register("dense")
class DenseRule(PassRule):
    """Dense: kernel (in, out) input-major, biases (out,)."""

    RATE = "dense_rate"
    BP_PARAMS = ("kernel", "biases")
    APPLY_PARAMS = ("kernel", "biases")
    HAS_KERNEL = True
    FUSED_DENSE = True  # TweenStep may run runs of these through jit_dense.fused_* (fastplan.py)

    @staticmethod
    def chain_backward(p, spec, g, x, y, s, cfg):
        W = p["kernel"]  # (in, out)
        out = np.empty(W.shape[0], F32)
        jd.dense_chain_backward(W, g, y, jd.act_id(spec.activation), F32(s),
                                cfg.derivative_consts, out)
        return out

    @staticmethod
    def chain_update(p, spec, g, x, y, r, cfg, vel):
        W, b = p["kernel"], p["biases"]
        if vel is None:
            vel = np.zeros_like(W)  # LOOM always has a slot for Dense; keeps the math one
        jd.dense_chain_update(W, b, vel, g, x, y, jd.act_id(spec.activation), F32(r),
                              F32(cfg.momentum), cfg.derivative_consts)

    @staticmethod
    def legacy_backward(p, spec, cur, x, cfg):
        W = p["kernel"]
        n = min(cur.size, W.shape[1])
        Wk = W[:, :n]
        num = Wk @ cur[:n]
        den = np.abs(Wk).sum(axis=1, dtype=F32)
        ok = den > F32(cfg.total_weight_threshold)
        est = np.where(ok, num / np.where(ok, den, F32(1)), F32(0)).astype(F32)
        return clamp_target(est, spec.activation, cfg, chain=False)

    @staticmethod
    def legacy_update(p, spec, gap, x, r, cfg, vel):
        W, b = p["kernel"], p["biases"]
        rr = F32(r)
        m = min(gap.size, W.shape[1])
        k = min(x.size, W.shape[0])
        b[:m] += rr * gap[:m] * F32(cfg.bias_rate_multiplier)
        delta = rr * np.outer(x[:k], gap[:m]) * F32(cfg.weight_rate_multiplier)
        _move(W, delta.astype(F32), k, m, vel, cfg, keep_finite=False)


def _move(W, delta, k, m, vel, cfg, keep_finite=True) -> None:
    """W[:k, :m] += v with the EMA velocity v = m v + (1-m) delta (plain += without a slot)."""
    if vel is None:
        step = delta
    else:
        mom = F32(cfg.momentum)
        vel[:k, :m] = mom * vel[:k, :m] + (F32(1) - mom) * delta
        step = vel[:k, :m]
    new = W[:k, :m] + step
    W[:k, :m] = _keep_finite(new, W[:k, :m]) if keep_finite else new


def _filter_means(v: np.ndarray, F: int) -> np.ndarray:
    """Mean of v over each filter's contiguous slice of P = max(1, len v // F) values."""
    P = max(1, v.size // F)
    sums = np.zeros(F, F32)
    for f in range(F):
        sums[f] = v[f * P:(f + 1) * P].sum(dtype=F32)
    return (sums / F32(P)).astype(F32)


@register("conv2d")
class Conv2DRule(PassRule):
    """Conv2D: kernel (F, C, k, k) flat per filter, conv_bias (F,); spatial structure ignored
    by LOOM's tween rules."""

    RATE = "conv2d_rate"
    BP_PARAMS = ()  # LOOM's UpdateWeights skips Conv2D
    APPLY_PARAMS = ("kernel", "conv_bias")
    HAS_KERNEL = True

    @staticmethod
    def chain_backward(p, spec, g, x, y, s, cfg):
        m = min(g.size, y.size)
        d = g[:m] * derivative_from_output(spec.activation, y[:m], cfg) * F32(s)
        F = spec.filters
        mf = _filter_means(d, F)
        K = p["kernel"].size // F
        contrib = (p["kernel"].reshape(F, K) * mf[:, None]).sum(axis=0, dtype=F32)  # (K,)
        n = max(1, x.size)
        return np.bincount(np.arange(K) % n, weights=contrib, minlength=n).astype(F32)[:x.size]

    @staticmethod
    def chain_update(p, spec, g, x, y, r, cfg, vel):
        F = spec.filters
        mf = _filter_means(g, F)
        kern = p["kernel"].reshape(F, -1)
        kern += F32(r) * cyclic(x, kern.shape[1])[None, :] * mf[:, None]
        p["conv_bias"] += F32(r) * mf

    @staticmethod
    def legacy_update(p, spec, gap, x, r, cfg, vel):
        F = spec.filters
        rr = F32(r)
        mf = _filter_means(gap, F)
        kern = p["kernel"].reshape(F, -1)
        kern += (mf * rr * F32(cfg.weight_rate_multiplier))[:, None]
        p["conv_bias"] += mf * rr * F32(cfg.bias_rate_multiplier)
