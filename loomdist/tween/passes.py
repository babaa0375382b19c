"""Tween's backward passes and weight updates over a layer range [lo, hi) (spec 4.5-4.9).

Range API, so an actor owning a slice of the grid runs its part with global depth indices:

    g_lo, grads, targets = chain_backward(layers, acts, g_hi, lo, hi, L, cfg)
    chain_update(layers, acts, grads, lo, L, cfg, rate, vel)

`layers` are the slots of global indices lo..hi-1, `acts` the flat activations a_lo..a_hi
(a_{i+1} = output of layer i), `grads[k]` = LOOM's ChainGradients[lo+k] (k = 0..hi-lo; the
last is g_hi), `targets[k]` = BackwardTargets[lo+k] (k < hi-lo), `vel[k]` the Dense velocity
of layer lo+k or None. The whole network is lo=0, hi=L.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from . import jit_dense as jd
from .config import TweenConfig
from .kinds import activation_of, kind_of, rule_for, type_rate
from .mathx import F32, depth_scale, target_bounds

EMPTY = np.zeros(0, F32)


def output_error(y: np.ndarray, c: int, out_size: int) -> np.ndarray:
    """g_L[j] = onehot_j - y_j for j < out_size (chain mode's output error)."""
    g = np.zeros(out_size, F32)
    m = min(out_size, y.size)
    g[:m] = -y[:m]
    if 0 <= c < out_size:
        g[c] += F32(1)
    return g


def one_hot(c: int, n: int) -> np.ndarray:
    t = np.zeros(n, F32)
    if 0 <= c < n:
        t[c] = 1
    return t


def _check_range(layers, acts, lo: int, hi: int, L: int, where: str) -> None:
    if not 0 <= lo <= hi <= L or len(layers) != hi - lo or len(acts) != hi - lo + 1:
        raise ConfigError(f"{where}: range [{lo}, {hi}) of L={L} needs {hi - lo} layers and "
                          f"{hi - lo + 1} activations (got {len(layers)} and {len(acts)}); "
                          f"pass layers[lo:hi] and acts[lo:hi+1]")


def chain_backward(layers, acts, g_hi, lo: int, hi: int, L: int, cfg: TweenConfig):
    """Chain-rule error sweep from boundary hi down to lo. Returns (g_lo, grads, targets)."""
    _check_range(layers, acts, lo, hi, L, "chain_backward")
    n = hi - lo
    grads, targets = [None] * (n + 1), [None] * n
    cur = np.asarray(g_hi, F32)
    grads[n] = cur
    for k in range(n - 1, -1, -1):
        x, y = acts[k], acts[k + 1]
        if x.size == 0 or y.size == 0:
            grads[k], targets[k] = cur, x
            continue
        slot = layers[k]
        s = depth_scale(L - 1 - (lo + k), cfg.depth_scale_factor)
        cur = np.array(rule_for(kind_of(slot)).chain_backward(slot.params, slot.spec, cur, x,
                                                              y, s, cfg), F32)
        jd.safe_clip(cur, F32(10))
        grads[k] = cur
        targets[k] = _chain_target(x, cur, activation_of(slot), cfg)
    return cur, grads, targets


def _chain_target(x, g, activation, cfg) -> np.ndarray:
    """BackwardTargets[i] = x + 0.1 g (NaN -> x), clamped by layer i's activation."""
    b = target_bounds(activation, cfg, chain=True)
    out = np.empty_like(x)
    lo, hi = (0.0, 0.0) if b is None else b
    jd.chain_target(x, g, F32(cfg.gradient_scale), F32(lo), F32(hi), b is not None, out)
    return out


def chain_update(layers, acts, grads, lo: int, L: int, cfg: TweenConfig, rate: float, vel,
                 targets=None) -> None:
    """TweenWeightsChainRule over layers lo..lo+len(layers)-1 (link budgets not consulted).

    grads[k+1] is the error of layer lo+k's output; when it is None, targets[k+1] - y is used
    (LOOM's fallback)."""
    for k, slot in enumerate(layers):
        x, y = acts[k], acts[k + 1]
        g = grads[k + 1]
        if g is None and targets is not None and targets[k + 1] is not None:
            g = gap_of(targets[k + 1], y)
        if g is None or x.size == 0 or g.size == 0:
            continue
        s = depth_scale(L - 1 - (lo + k), cfg.depth_scale_factor)
        r = rate * type_rate(kind_of(slot), cfg) * s
        rule_for(kind_of(slot)).chain_update(slot.params, slot.spec, g, x, y, r, cfg, vel[k])


def gap_of(target: np.ndarray, y: np.ndarray) -> np.ndarray:
    """target - actual over their common length."""
    m = min(target.size, y.size)
    return (target[:m] - y[:m]).astype(F32)


def legacy_backward(layers, acts, c: int, out_size: int, cfg: TweenConfig) -> list:
    """Heuristic targets (BackwardPass): Dense estimates, other kinds pass through. L+1."""
    L = len(layers)
    targets = [None] * (L + 1)
    cur = one_hot(c, out_size)
    targets[L] = cur
    for i in range(L - 1, -1, -1):
        slot = layers[i]
        cur = rule_for(kind_of(slot)).legacy_backward(slot.params, slot.spec, cur, acts[i], cfg)
        targets[i] = cur
    return targets


def legacy_update(layers, acts, gaps, budgets, cfg: TweenConfig, rate: float, vel) -> None:
    """TweenWeights: lambda = rate (S + budget S); layers below IgnoreThreshold skipped.

    gaps[i] is target - actual of layer i's output (None: skip)."""
    S = cfg.link_budget_scale
    for i, slot in enumerate(layers):
        if budgets[i] < cfg.ignore_threshold or gaps[i] is None or acts[i].size == 0:
            continue
        lam = rate * (S + budgets[i] * S)
        r = lam * type_rate(kind_of(slot), cfg)
        rule_for(kind_of(slot)).legacy_update(slot.params, slot.spec, gaps[i], acts[i], r, cfg,
                                              vel[i])


def link_budgets(acts, targets):
    """(LinkBudgets, Gaps, DepthBarrier) for every layer (spec 4.7)."""
    L = len(acts) - 1
    budgets, gaps = np.zeros(L, np.float32), np.zeros(L, np.float32)
    for i in range(L):
        f, b = acts[i + 1], targets[i + 1]
        budgets[i], gaps[i] = _budget(f, EMPTY if b is None else b)
    return budgets, gaps, np.cumprod(budgets.astype(np.float64)).astype(np.float32)


def _budget(f: np.ndarray, b: np.ndarray):
    return jd.budget_gap(f, b)
