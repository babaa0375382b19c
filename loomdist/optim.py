"""Update rules (sgd, momentum, adam, adamw, rmsprop), LR schedules and gradient clipping.

Pure: an optimizer maps (parameters, gradients, lr) to updated parameters in place and keeps
its state in plain dicts keyed by parameter key, so checkpoints can save and restore it.
Formulas follow LOOM's optimizer.go (SGD momentum's first step uses v = (1-d) g; RMSprop has
eps inside the square root; AdamW decays weights but not biases or norm parameters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "linear", "cosine", "exponential", "step", "polynomial", "warmup",
             "warmup_cosine")


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer hyper-parameters (LOOM's names and defaults)."""

    name: str = "sgd"
    momentum: float = 0.9        # momentum; rmsprop uses it only when > 0 there
    dampening: float = 0.0
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    weight_decay: float = 0.0    # adam: L2 added to the gradient; adamw: decoupled
    alpha: float = 0.99          # rmsprop smoothing
    rms_momentum: float = 0.0

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optimizer {self.name!r} is unknown; use one of {list(OPTIMIZERS)}")
        for f in ("momentum", "dampening", "beta1", "beta2", "alpha", "rms_momentum"):
            v = getattr(self, f)
            if not 0 <= v <= 1 or (v == 1 and f != "dampening"):
                raise ConfigError(f"optimizer {self.name}: {f} must be in [0, 1) (got {v}); "
                                  f"dampening may also be 1")
        if self.epsilon <= 0 or self.weight_decay < 0:
            raise ConfigError(f"optimizer {self.name}: epsilon must be > 0 and weight_decay "
                              f">= 0 (got {self.epsilon}, {self.weight_decay})")


def decays(key) -> bool:
    """AdamW decays weights, not biases or norm gains/offsets (LOOM: kernels only)."""
    name = str(key[-1]).rsplit(".", 1)[-1]
    return "bias" not in name and name not in ("gamma", "beta")


class Optimizer:
    """Applies one update to every parameter; state is {"t": int, "slots": {key: arrays}}."""

    def __init__(self, cfg: OptimConfig):
        self.cfg = cfg
        self.state: dict = {"t": 0, "slots": {}}

    def step(self, params, grads, lr: float) -> None:
        """params/grads: iterables of (key, array); arrays are updated in place."""
        self.state["t"] += 1
        grads = dict(grads)
        for key, w in params:
            g = grads.get(key)
            if g is not None:
                getattr(self, "_" + self.cfg.name)(key, w, g.astype(w.dtype, copy=False), lr)

    def _slot(self, key, n: int, like):
        slots = self.state["slots"].setdefault(key, [np.zeros_like(like) for _ in range(n)])
        return slots

    def _sgd(self, key, w, g, lr):
        w -= w.dtype.type(lr) * g

    def _momentum(self, key, w, g, lr):
        c = self.cfg
        (v,) = self._slot(key, 1, w)
        v *= c.momentum
        v += (1 - c.dampening) * g
        w -= w.dtype.type(lr) * (g + c.momentum * v if c.nesterov else v)

    def _adam(self, key, w, g, lr, decoupled=False):
        c, t = self.cfg, self.state["t"]
        if c.weight_decay and not decoupled:
            g = g + c.weight_decay * w
        m, v = self._slot(key, 2, w)
        m *= c.beta1
        m += (1 - c.beta1) * g
        v *= c.beta2
        v += (1 - c.beta2) * g * g
        mhat = m / (1 - c.beta1 ** t)
        vhat = v / (1 - c.beta2 ** t)
        update = mhat / (np.sqrt(vhat) + c.epsilon)
        if decoupled and decays(key):
            update = update + c.weight_decay * w
        w -= w.dtype.type(lr) * update.astype(w.dtype, copy=False)

    def _adamw(self, key, w, g, lr):
        self._adam(key, w, g, lr, decoupled=True)

    def _rmsprop(self, key, w, g, lr):
        c = self.cfg
        v, buf = self._slot(key, 2, w)
        v *= c.alpha
        v += (1 - c.alpha) * g * g
        step = g / np.sqrt(v + c.epsilon)
        if c.rms_momentum > 0:
            buf *= c.rms_momentum
            buf += step
            step = buf
        w -= w.dtype.type(lr) * step


@dataclass(frozen=True)
class Schedule:
    """LOOM's LR schedulers (scheduler.go) plus warmup_cosine; step is 0-based."""

    name: str = "constant"
    lr: float = 1e-3
    total_steps: int = 0
    warmup_steps: int = 0
    min_lr: float = 0.0
    decay_rate: float = 0.0    # exponential 0.96, step 0.1 when 0 (LOOM)
    decay_steps: int = 0       # exponential: 1000 when 0
    step_size: int = 0         # step: 10000 when 0
    power: float = 1.0

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise ConfigError(f"lr_schedule {self.name!r} is unknown; use one of "
                              f"{list(SCHEDULES)}")
        if self.lr < 0 or self.total_steps < 0 or self.warmup_steps < 0:
            raise ConfigError(f"lr_schedule {self.name}: lr, total_steps and warmup_steps "
                              f"must be >= 0")

    def __call__(self, step: int) -> float:
        return float(np.float32(getattr(self, "_" + self.name)(step)))

    def _constant(self, s):
        return self.lr

    def _linear(self, s):
        final = self.min_lr or 0.01 * self.lr
        if s >= self.total_steps:
            return final
        return self.lr + (final - self.lr) * s / self.total_steps

    def _cosine(self, s, start=0):
        t = self.total_steps - start
        s -= start
        if s >= t:
            return self.min_lr
        return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * s / t)) / 2

    def _exponential(self, s):
        return self.lr * (self.decay_rate or 0.96) ** (s / (self.decay_steps or 1000))

    def _step(self, s):
        return self.lr * (self.decay_rate or 0.1) ** (s // (self.step_size or 10000))

    def _polynomial(self, s):
        if s >= self.total_steps:
            return self.min_lr
        return (self.lr - self.min_lr) * (1 - s / self.total_steps) ** self.power + self.min_lr

    def _warmup(self, s):
        w = self.warmup_steps
        return self.min_lr + (self.lr - self.min_lr) * s / w if s < w else self.lr

    def _warmup_cosine(self, s):
        w = self.warmup_steps
        return self.lr * (s + 1) / w if s < w else self._cosine(s, start=w)


def clip_global_norm(grads: list, max_norm: float) -> float:
    """Scale every gradient (in place) so their global L2 norm is <= max_norm.

    Returns the norm before clipping. max_norm <= 0 means no clipping.
    """
    norm = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads))
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / norm
        for g in grads:
            g *= g.dtype.type(scale)
    return norm
