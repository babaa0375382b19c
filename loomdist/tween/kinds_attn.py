"""Tween rules of MultiHeadAttention and SwiGLU (spec 4.6, 4.9).

Flat LOOM indices: OutputWeight[i*len(g) + j], VWeights[i*len(h) + j], Down[i*len(g) + j];
weights past the end read as 0 and are not written (LOOM's bounds checks).
"""

from __future__ import annotations

import numpy as np

from .kinds import PassRule, mean32, register
from .mathx import F32, add_flat_rows, clip, cyclic, flat_rows

_CLIP = 0.5


def _add_cyclic(w: np.ndarray, x: np.ndarray, scale) -> None:
    """w.flat[k] += clip(scale * x[k mod len x], 0.5) for every k."""
    flat = w.reshape(-1)
    flat += clip(F32(scale) * cyclic(x, flat.size), _CLIP)


def _cos(a: np.ndarray, b: np.ndarray) -> F32:
    na, nb = np.sqrt(np.dot(a, a)), np.sqrt(np.dot(b, b))
    return F32(0) if na == 0 or nb == 0 else F32(np.dot(a, b) / (na * nb))


@register("multi_head_attention")
class MHARule(PassRule):
    """MHA: q/k/v/output weights (D, D), biases (D,)."""

    RATE = "attention_rate"
    BP_PARAMS = ("q_weights", "k_weights", "v_weights", "output_weight", "q_bias", "k_bias",
                 "v_bias", "output_bias")

    @staticmethod
    def chain_backward(p, spec, g, x, y, s, cfg):
        d = g * F32(s)
        D = spec.d_model
        h = flat_rows(p["output_weight"], D, d.size) @ d  # (D,)
        return flat_rows(p["v_weights"], D, h.size) @ h

    @staticmethod
    def chain_update(p, spec, g, x, y, r, cfg, vel):
        r = F32(r)
        n = min(spec.d_model, x.size)
        add_flat_rows(p["output_weight"], clip(r * np.outer(x[:n], g), _CLIP))
        ob = p["output_bias"]
        m = min(ob.size, g.size)
        ob[:m] += clip(r * g[:m], _CLIP)
        gm = clip(mean32(g), _CLIP)
        for name, f in (("v", 0.5), ("q", 0.3), ("k", 0.3)):
            _add_cyclic(p[f"{name}_weights"], x, F32(f) * r * gm)
            p[f"{name}_bias"] += clip(F32(f) * r * gm, _CLIP)

    @staticmethod
    def legacy_update(p, spec, gap, x, r, cfg, vel):
        r = F32(r)
        D, nh = spec.d_model, spec.num_heads or 2
        hd = max(1, D // nh)
        head_gap = flat_rows(p["output_weight"], D, gap.size) @ gap  # (D,)
        ow = p["output_weight"].reshape(-1)
        ow += F32(0.1) * r * cyclic(gap, ow.size)
        gm = mean32(gap)
        p["output_bias"] += gm * F32(0.1) * r
        xd = cyclic(x, D) if x.size < D else x[:D]
        for h in range(nh):
            _legacy_head(p, h, hd, D, head_gap[h * hd:(h + 1) * hd], xd, r)
        p["q_bias"] += gm * F32(0.05) * r
        p["k_bias"] += gm * F32(0.05) * r
        p["v_bias"] += gm * F32(0.1) * r


def _legacy_head(p, h, hd, D, hg, x, r) -> None:
    """One head of LOOM's legacy MHA rule: V rows from the head gap, Q/K by alignment."""
    alpha = _cos(x[:hd], hg[:hd]) if hg.size else F32(0)
    p0, n = h * hd * D, hd * D
    idx = np.arange(n)
    hgp = np.zeros(hd, F32)
    hgp[:hg.size] = hg
    dv = r * hgp[idx // D] * x[idx % D]
    dq = x[idx % D] * r * alpha * F32(0.2)
    for name, delta in (("v_weights", dv), ("q_weights", dq), ("k_weights", dq)):
        flat = p[name].reshape(-1)
        m = max(0, min(n, flat.size - p0))
        flat[p0:p0 + m] += delta[:m]


@register("swiglu")
class SwiGLURule(PassRule):
    """SwiGLU: gate/up (hidden, inter), down (inter, hidden), biases."""

    RATE = "swiglu_rate"

    @staticmethod
    def chain_backward(p, spec, g, x, y, s, cfg):
        d = g * F32(s)
        return flat_rows(p["down_weights"], x.size, d.size) @ d

    @staticmethod
    def chain_update(p, spec, g, x, y, r, cfg, vel):
        r = F32(r)
        add_flat_rows(p["down_weights"], clip(r * np.outer(x, g), _CLIP))
        db = p["down_bias"]
        m = min(db.size, g.size)
        db[:m] += clip(r * g[:m], _CLIP)
        gm = clip(mean32(g), _CLIP)
        for name in ("gate", "up"):
            _add_cyclic(p[f"{name}_weights"], x, F32(0.8) * r * gm)
            p[f"{name}_bias"] += clip(F32(0.5) * r * gm, _CLIP)

    @staticmethod
    def legacy_update(p, spec, gap, x, r, cfg, vel):
        gm = mean32(gap)
        rho = F32(r) * gm * F32(0.001)
        for name in ("gate_weights", "up_weights"):
            w = p[name].reshape(-1)
            w += rho * cyclic(x, w.size)
        dw = p["down_weights"].reshape(-1)
        dw += rho * cyclic(gap, dw.size)
        for name in ("gate_bias", "up_bias", "down_bias"):
            p[name] += gm * F32(0.1) * F32(r)
