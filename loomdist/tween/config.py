"""TweenConfig: every field of LOOM's TweenConfig with DefaultTweenConfig(L)'s defaults.

Fields LOOM declares but never reads (spec 4.2, 7 #17) are kept so configs round-trip; their
comments say "unused". The config is frozen: derive variants with `dataclasses.replace`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class TweenConfig:
    """LOOM's TweenConfig (nn/tween.go); defaults are DefaultTweenConfig(L) with L unknown."""

    frontier_enabled: bool = True       # unused by LOOM
    frontier_min: int = 0               # L-1 (validated, otherwise unused)
    frontier_threshold: float = 0.55    # unused
    frontier_noise: float = 0.0         # unused
    ignore_threshold: float = 0.2       # legacy update / batch apply: skip layers below it
    dense_rate: float = 1.0             # per-kind rate multipliers
    rnn_rate: float = 0.5
    lstm_rate: float = 0.5
    attention_rate: float = 0.2
    norm_rate: float = 0.1
    swiglu_rate: float = 0.2
    conv2d_rate: float = 0.1
    momentum: float = 0.9               # Dense weight EMA velocity v = m v + (1-m) delta
    bias_rate_multiplier: float = 0.1   # legacy Dense/Conv2D
    weight_rate_multiplier: float = 0.01
    tanh_clamp_min: float = -0.95
    tanh_clamp_max: float = 0.95
    sigmoid_clamp_min: float = 0.05
    sigmoid_clamp_max: float = 0.95
    relu_clamp_max: float = 10.0        # legacy [0, M], chain [-M, M]
    early_stop_threshold: float = 95.0  # TweenState.train: stop at Score >= it
    eval_frequency: int = 5             # evaluate when epoch % it == 0 or on the last epoch
    link_budget_scale: float = 0.5      # legacy layer rate = rate * (S + budget * S)
    prune_enabled: bool = False
    prune_threshold: float = 0.1
    prune_patience: int = 10
    batch_size: int = 1                 # unused (callers pass batches)
    use_chain_rule: bool = True         # chain-rule backward + update (LOOM's default)
    depth_scale_factor: float = 1.2
    gradient_scale: float = 0.1         # chain hidden target = a + 0.1 g
    total_weight_threshold: float = 0.01
    relu_slope: float = 1.1
    leaky_relu_slope: float = 0.1
    derivative_epsilon: float = 0.01
    lstm_gate_scale: float = 0.25
    attention_routing_rate: float = 0.2  # unused (hard-coded 0.2 in LOOM)
    attention_bias_rate: float = 0.05    # unused
    norm_beta_rate: float = 0.1          # unused
    norm_gamma_rate: float = 0.01        # unused
    explosion_detection: bool = False

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"TweenConfig: {f.name} is {v!r}; pass a finite number")
        if self.eval_frequency < 1:
            raise ConfigError(f"TweenConfig: eval_frequency must be >= 1 (got "
                              f"{self.eval_frequency}); pass 1 to evaluate every epoch")
        if self.prune_patience < 0:
            raise ConfigError(f"TweenConfig: prune_patience must be >= 0 (got "
                              f"{self.prune_patience}); pass a non-negative count")

    @cached_property
    def derivative_consts(self) -> np.ndarray:
        """(ReLUSlope, LeakyReLUSlope, DerivativeEpsilon) as float32, for the Numba loops."""
        return np.array([self.relu_slope, self.leaky_relu_slope, self.derivative_epsilon],
                        np.float32)


def default_tween_config(total_layers: int) -> TweenConfig:
    """LOOM's DefaultTweenConfig(L): the defaults with FrontierMin = L - 1."""
    if isinstance(total_layers, bool) or not isinstance(total_layers, int) or total_layers < 1:
        raise ConfigError(f"default_tween_config: total_layers must be an int >= 1 (got "
                          f"{total_layers!r}); pass the network's layer count")
    return TweenConfig(frontier_min=total_layers - 1)


def validated_for(cfg: TweenConfig, total_layers: int) -> TweenConfig:
    """NewTweenState's check: FrontierMin outside [0, L-1] is reset to L-1."""
    if 0 <= cfg.frontier_min <= total_layers - 1:
        return cfg
    return replace(cfg, frontier_min=total_layers - 1)


DefaultTweenConfig = default_tween_config  # LOOM's name
