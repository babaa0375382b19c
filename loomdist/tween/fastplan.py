"""A cached plan that runs TweenStep's chain-rule sweep through the fused Dense kernels.

Built once per (network layers, parameter arrays, velocities, out_size) and reused: the
rule-level facts (activation ids, depth scales, type rates, target bounds) are resolved at
build time and the activations, errors and targets live in preallocated flat buffers, so a
TweenStep costs one forward call per layer plus two Numba calls (jit_dense.fused_*). A
network qualifies when every layer's tween rule says FUSED_DENSE (its kernel is a
C-contiguous float32 (in, out) matrix) and the layer sizes chain; otherwise `build_plan`
returns None and TweenState uses the generic per-layer path. The results are bit for bit
those of the generic path.
"""

from __future__ import annotations

import numpy as np
from numba import typed

from ..kernels.cpu.elementwise import _bias_act
from . import jit_dense as jd
from .jit_dense import fused_backward, fused_update
from .kinds import activation_of, kind_of, rule_for, type_rate
from .mathx import F32, depth_scale, target_bounds


def plan_key(net, vel, out_size: int) -> list:
    """Identity of everything a plan caches: out_size, then per layer its slot, params dict,
    kernel, biases and velocity (DensePlan.fits compares it object by object)."""
    key = [out_size]
    for s, v in zip(net.layers, vel):
        p = s.params
        key += [s, p, p.get("kernel"), p.get("biases"), v]
    return key


def same_objects(a, b) -> bool:
    """Whether two keys hold the very same objects, in order (None matches nothing)."""
    return a is not None and len(a) == len(b) and all(u is v for u, v in zip(a, b))


def _fusable(slot, vel) -> bool:
    if not getattr(rule_for(kind_of(slot)), "FUSED_DENSE", False) or vel is None:
        return False
    W, b = slot.params.get("kernel"), slot.params.get("biases")
    ok = [a is not None and a.dtype == F32 and a.flags.c_contiguous for a in (W, b, vel)]
    return all(ok) and W.ndim == 2 and vel.shape == W.shape and b.shape == (W.shape[1],)


def build_plan(net, vel, out_size: int, cfg):
    """A DensePlan for `net`, or None when some layer cannot take the fused path."""
    slots = net.layers
    if not all(_fusable(s, v) for s, v in zip(slots, vel)):
        return None
    sizes = [slots[0].params["kernel"].shape[0]] + [s.params["kernel"].shape[1] for s in slots]
    if any(s.params["kernel"].shape[0] != n for s, n in zip(slots, sizes)):
        return None
    return DensePlan(net, vel, sizes, out_size, cfg)


def _offsets(sizes) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _typed(arrays):
    out = typed.List()
    for a in arrays:
        out.append(a)
    return out


class DensePlan:
    """Buffers and resolved per-layer facts of one all-Dense network (see module doc)."""

    def __init__(self, net, vel, sizes, out_size: int, cfg):
        slots, L = net.layers, len(net.layers)
        self.key = plan_key(net, vel, out_size)
        self.L, self.out_size, self.cfg = L, out_size, cfg
        self.oa, self.og = _offsets(sizes), _offsets(sizes[:-1] + [out_size])
        self.A, self.z = np.zeros(self.oa[-1], F32), [np.zeros((1, n), F32) for n in sizes[1:]]
        self.G, self.T = np.zeros(self.og[-1], F32), np.zeros(self.og[-1], F32)
        self.acts = [self.A[self.oa[i]:self.oa[i + 1]] for i in range(L + 1)]
        self.acts2d = [a.reshape(1, -1) for a in self.acts]
        self.grads = [self.G[self.og[i]:self.og[i + 1]] for i in range(L + 1)]
        self.targets = [self.T[self.og[i]:self.og[i + 1]] for i in range(L + 1)]
        self.Ws = _typed([s.params["kernel"] for s in slots])
        self.bs = _typed([s.params["biases"] for s in slots])
        self.vels = _typed(vel)
        self.act_ids = np.array([jd.act_id(activation_of(s)) for s in slots], np.int64)
        s64 = [depth_scale(L - 1 - k, cfg.depth_scale_factor) for k in range(L)]
        self.s64, self.s32 = np.array(s64, np.float64), np.array(s64, F32)
        self.trates = np.array([type_rate(kind_of(s), cfg) for s in slots], np.float64)
        self.tb = np.array([_bounds(activation_of(s), cfg) for s in slots], F32)
        self.consts, self.gscale = cfg.derivative_consts, F32(cfg.gradient_scale)
        self.mom = F32(cfg.momentum)
        self._fw = [(s.params["kernel"], s.params["biases"]) for s in slots]

    def fits(self, net, vel, out_size: int) -> bool:
        """Whether this plan still describes `net` (same objects as when it was built)."""
        key, layers = self.key, net.layers
        if key[0] != out_size or len(layers) != self.L or len(vel) != self.L:
            return False
        i = 1
        for s, v in zip(layers, vel):
            p = s.params
            if (key[i] is not s or key[i + 1] is not p or key[i + 4] is not v
                    or key[i + 2] is not p["kernel"] or key[i + 3] is not p["biases"]):
                return False
            i += 5
        return True

    def forward(self, x: np.ndarray) -> None:
        """ForwardCPU into the activation buffer (the Dense module's x @ W, bias + act)."""
        self.acts[0][:] = x.reshape(-1)
        h, a2 = self.acts2d, self.act_ids
        for k, (W, b) in enumerate(self._fw):
            z = self.z[k]
            np.matmul(h[k], W, out=z)
            _bias_act(z, b, a2[k], h[k + 1])

    def backward(self, c: int, budgets, gaps, barrier) -> None:
        fused_backward(self.Ws, self.act_ids, self.A, self.oa, self.G, self.T, self.og, c,
                       self.out_size, self.s32, self.consts, self.tb, self.gscale, budgets,
                       gaps, barrier)

    def update(self, rate: float) -> None:
        fused_update(self.Ws, self.bs, self.vels, self.act_ids, self.A, self.oa, self.G,
                     self.og, float(rate), self.trates, self.s64, self.mom, self.consts)


def _bounds(activation, cfg) -> tuple:
    b = target_bounds(activation, cfg, chain=True)
    return (0.0, 0.0, 0.0) if b is None else (b[0], b[1], 1.0)
