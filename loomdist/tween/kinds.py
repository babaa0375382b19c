"""Per-layer-kind tween rules, keyed by LOOM's type name (the only place that knows kinds).

A rule is a class of static methods (spec 4.6, 4.9):

    chain_backward(p, spec, g, x, y, s, cfg) -> error for the layer input
    chain_update(p, spec, g, x, y, r, cfg, vel)        (r = rate * TypeRate * depthScale)
    legacy_backward(p, spec, cur, x, cfg) -> heuristic target for the layer input
    legacy_update(p, spec, gap, x, r, cfg, vel)        (r = lambda * TypeRate)

`p` is the layer's live params dict (updated in place), `g`/`x`/`y` flat float32 vectors.
`RATE` names the TweenConfig multiplier, `BP_PARAMS` the parameters LOOM's UpdateWeights
touches (NormalBP), `APPLY_PARAMS` those ApplyGradients touches
(Step+BP), `HAS_KERNEL` whether LOOM keeps a velocity slot and SaveBest copies it,
`FUSED_DENSE` whether TweenStep may run the layer through the fused Dense kernels.
"""

from __future__ import annotations

import numpy as np

from .mathx import F32, fit

RULES: dict[str, type] = {}


def register(kind: str):
    """Class decorator: make `cls` the tween rule of layer kind `kind`."""
    def wrap(cls):
        RULES[kind] = cls
        return cls
    return wrap


class PassRule:
    """Softmax, Parallel, Residual and unknown kinds: the error passes through unchanged
    (truncated / zero-padded to the input length); no parameters change."""

    RATE = None
    BP_PARAMS: tuple = ()
    APPLY_PARAMS: tuple = ()
    HAS_KERNEL = False
    FUSED_DENSE = False

    @staticmethod
    def chain_backward(p, spec, g, x, y, s, cfg):
        return fit(g, x.size)

    @staticmethod
    def chain_update(p, spec, g, x, y, r, cfg, vel):
        return None

    @staticmethod
    def legacy_backward(p, spec, cur, x, cfg):
        return cur

    @staticmethod
    def legacy_update(p, spec, gap, x, r, cfg, vel):
        return None


def rule_for(kind: str) -> type:
    """The rule of `kind`; kinds without one pass through (LOOM's default branch)."""
    return RULES.get(kind, PassRule)


def type_rate(kind: str, cfg) -> float:
    """The TweenConfig per-kind rate multiplier of `kind` (0 for parameter-free kinds)."""
    name = rule_for(kind).RATE
    return 0.0 if name is None else float(getattr(cfg, name))


def mean32(v: np.ndarray) -> F32:
    """float32 mean (0 for an empty vector)."""
    return F32(v.sum(dtype=F32) / F32(v.size)) if v.size else F32(0)


def kind_of(slot) -> str:
    return slot.spec.kind


def activation_of(slot) -> str | None:
    return getattr(slot.spec, "activation", None)


register("softmax")(PassRule)
register("parallel")(PassRule)

# The modules below register themselves; importing them fills RULES.
from . import kinds_attn, kinds_dense, kinds_norm, kinds_seq  # noqa: E402,F401
