"""Tween rules of LayerNorm and RMSNorm: error scaled by gamma, gamma/beta nudged (spec 4.6)."""

from __future__ import annotations

import numpy as np

from .kinds import PassRule, mean32, register
from .mathx import F32


def _gamma_full(p, n: int) -> np.ndarray:
    """gamma padded with 1 where missing (LOOM: gamma = 1 beyond its length)."""
    out = np.ones(n, F32)
    m = min(n, p["gamma"].size)
    out[:m] = p["gamma"][:m]
    return out


def _nudge(v: np.ndarray, g: np.ndarray, r) -> None:
    m = min(v.size, g.size)
    v[:m] += F32(r) * g[:m]


@register("layer_norm")
class LayerNormRule(PassRule):
    """LayerNorm: gamma and beta (norm_size,)."""

    RATE = "norm_rate"
    HAS_BETA = True

    @staticmethod
    def chain_backward(p, spec, g, x, y, s, cfg):
        return g * _gamma_full(p, g.size) * F32(s)

    @classmethod
    def chain_update(cls, p, spec, g, x, y, r, cfg, vel):
        _nudge(p["gamma"], g, r)
        if cls.HAS_BETA:
            _nudge(p["beta"], g, r)

    @classmethod
    def legacy_update(cls, p, spec, gap, x, r, cfg, vel):
        gm = mean32(gap)
        p["gamma"] += gm * F32(r) * F32(0.01)
        if cls.HAS_BETA:
            p["beta"] += gm * F32(r) * F32(0.1)


@register("rms_norm")
class RMSNormRule(LayerNormRule):
    """RMSNorm: gamma only."""

    HAS_BETA = False
