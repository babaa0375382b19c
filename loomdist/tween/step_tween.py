"""One span's share of TweenStep (chain rule), so StepTweenChain can run span by span.

TweenState.tween_step(net, x, c, out_size, rate) over the whole network equals, for spans
[lo, hi) covering it in order:

    fwd:  (y, r) = span.forward(x, r)              first span to last (x = the sample)
    back: msg = last.backward_last(c, out_size)    then msg = span.backward(msg), last to first
    upd:  span.update(msg_of_first_span, rate)     every span (the message holds every gap)

msg = (error at the span's input boundary, BackwardTargets there, gaps of this and every later
layer, the pre-update squared error). The explosion multiplier needs the mean gap of all L
layers, so updates wait for the first span's message; each span keeps its own identical
ExplosionTracker. Disabled (pruned) layers are not supported on spans.
"""

from __future__ import annotations

import numpy as np

from ..engine import walk_forward
from .config import TweenConfig, default_tween_config, validated_for
from .explosion import ExplosionTracker
from .kinds import kind_of
from .mathx import F32
from .passes import chain_backward, chain_update, link_budgets, one_hot, output_error
from .state import _sq_error


class TweenSpan:
    """Tween state of layers [lo, hi) of `net` (updated in place).

    Args:
        net: the Network whose live layers the span trains.
        span: (lo, hi) flat layer indices.
        config: TweenConfig (default: LOOM's DefaultTweenConfig(L)).
    """

    def __init__(self, net, span, config: TweenConfig | None = None):
        self.lo, self.hi = (int(v) for v in span)
        self.L = net.total_layers
        self.config = validated_for(config or default_tween_config(self.L), self.L)
        self.layers = net.layers[self.lo:self.hi]
        self.vel = [np.zeros_like(s.params["kernel"]) if kind_of(s) == "dense" else None
                    for s in self.layers]
        self.explosion = ExplosionTracker()
        self.acts = self.grads = self.targets = self.link_budgets = None

    def forward(self, x, residual=None):
        """ForwardCPU of this span on one sample (1, features); returns (y, residual_out)."""
        walk = walk_forward(self.layers, np.asarray(x, F32).reshape(1, -1), residual)
        self.acts = [t.reshape(-1) for t in walk.tensors[1:]]
        return walk.output, walk.residual_out

    def backward_last(self, c: int, out_size: int) -> tuple:
        """Last span: chain mode's output error for class c, then `backward`."""
        y = self.acts[-1]
        start = (output_error(y, c, out_size), one_hot(c, out_size), np.zeros(0, F32),
                 _sq_error(y, c, out_size))
        return self.backward(start)

    def backward(self, msg) -> tuple:
        """The chain-rule sweep over this span from the next span's message."""
        g_hi, target_hi, later_gaps, loss = msg
        g_lo, self.grads, targets = chain_backward(self.layers, self.acts, g_hi, self.lo,
                                                   self.hi, self.L, self.config)
        self.targets = targets + [target_hi]
        self.link_budgets, gaps, _ = link_budgets(self.acts, self.targets)
        return g_lo, self.targets[0], np.concatenate([gaps, later_gaps]), loss

    def update(self, msg, rate: float) -> None:
        """TweenWeightsChainRule of this span at rate * the explosion multiplier."""
        gaps = msg[2]
        mult = self.explosion.multiplier(float(np.mean(gaps)) if gaps.size else 0.0,
                                         self.config.explosion_detection)
        chain_update(self.layers, self.acts, self.grads, self.lo, self.L, self.config,
                     rate * mult, self.vel, targets=self.targets)
