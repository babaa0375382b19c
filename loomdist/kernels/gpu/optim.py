"""Optimizer updates on the GPU (optim.wgsl), matching loomdist.optim.Optimizer's formulas.

    opt = GpuOptimizer(cfg)                    cfg: loomdist.optim.OptimConfig
    opt.step(stream, params, grads, lr, t)     params: [(key, GpuArray)], grads: {key: GpuArray}
    clip_global_norm(stream, grads, max_norm) -> GpuArray (1,): sum of squares before clipping
State (velocity, moments) stays on the device in `opt.slots[key]` (the runner syncs it).
"""

from __future__ import annotations

import numpy as np

from loomdist.kernels.gpu.array import GpuArray, zeros
from loomdist.kernels.gpu.stream import Stream
from loomdist.optim import OptimConfig, decays

SHADER = "optim"
SLOTS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2, "rmsprop": 2}


def _f32(v: float) -> float:
    return float(np.float32(v))


class GpuOptimizer:
    """One update rule over device-resident parameters; state in `slots`."""

    def __init__(self, cfg: OptimConfig):
        self.cfg = cfg
        self.slots: dict = {}

    def _uniform(self, n: int, key) -> dict:
        """optim.wgsl's Opt struct (field order matters); the same every step."""
        c = self.cfg
        f = {k: _f32(v) for k, v in (
            ("momentum", c.momentum), ("one_minus_damp", 1 - c.dampening),
            ("beta1", c.beta1), ("one_minus_b1", 1 - c.beta1), ("beta2", c.beta2),
            ("one_minus_b2", 1 - c.beta2), ("eps", c.epsilon),
            ("weight_decay", c.weight_decay))}
        return {"n": n, "momentum": f["momentum"], "one_minus_damp": f["one_minus_damp"],
                "nesterov": int(c.nesterov),
                **{k: f[k] for k in ("beta1", "one_minus_b1", "beta2", "one_minus_b2", "eps",
                                     "weight_decay")},
                "decoupled": int(c.name == "adamw"), "decays": int(decays(key)),
                "alpha": _f32(c.alpha), "one_minus_alpha": _f32(1 - c.alpha),
                "rms_momentum": _f32(c.rms_momentum)}

    def step(self, s: Stream, params, grads: dict, lr: float, t: int) -> None:
        """Record one update of every (key, w) in `params` that has a gradient; t >= 1."""
        c, name = self.cfg, self.cfg.name
        entry = "adam" if name == "adamw" else name
        step_k = s.upload(np.array([lr, 1 - c.beta1 ** t, 1 - c.beta2 ** t], np.float32),
                          "optimizer step constants")
        for key, w in params:
            g = grads.get(key)
            if g is None or w.size == 0:
                continue
            if key not in self.slots:
                self.slots[key] = [zeros(w.shape, s.device) for _ in range(SLOTS[name])]
            s.dispatch(SHADER, [w, g, *self.slots[key], step_k], self._uniform(w.size, key),
                       s.groups(w.size), entry=entry)

def clip_global_norm(s: Stream, grads: list, max_norm: float) -> GpuArray:
    """Scale `grads` (in place) so their global L2 norm is <= max_norm (<= 0: no clipping).

    Returns a (1,) device array holding the sum of squares before clipping.
    """
    sq = s.empty((1,), "clip sum of squares")  # zero-filled
    for g in grads:
        if g.size:
            s.dispatch("reduce", [g, sq], {"n": g.size, "scale": 1.0, "accumulate": 1},
                       (1, 1, 1), entry="sumsq")
    if max_norm > 0:
        for g in grads:
            if g.size:
                s.dispatch(SHADER, [g, sq], {"n": g.size, "max_norm": float(max_norm)},
                           s.groups(g.size), entry="clip_scale")
    return sq
