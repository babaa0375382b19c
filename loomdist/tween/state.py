"""TweenState: LOOM's neural tweening state, TweenStep and batch tweening (spec 4.3-4.11).

Every tween mode trains on a full synchronous forward pass of the current sample (LOOM's
ForwardPass = ForwardCPU), then a chain-rule (default) or legacy backward sweep, link budgets
and an immediate in-place parameter update of every layer.
"""

from __future__ import annotations

import numpy as np

from ..engine import walk_forward
from ..errors import ConfigError, ShapeError
from .config import TweenConfig, default_tween_config, validated_for
from .explosion import ExplosionTracker
from .fastplan import build_plan, plan_key, same_objects
from .kinds import kind_of, rule_for
from .mathx import F32
from .passes import (
    chain_backward,
    chain_update,
    gap_of,
    legacy_backward,
    legacy_update,
    link_budgets,
    one_hot,
    output_error,
)


class _Identity:
    """A disabled layer: LOOM's ForwardCPU passes its input through."""

    RESIDUAL = None

    def __init__(self, slot):
        self.spec, self.params, self.grads, self.module = self, slot.params, {}, self
        self.kind = slot.spec.kind

    def out_features(self, n, where=""):
        return n

    def forward(self, spec, params, x):
        return x.copy(), None


class TweenState:
    """LOOM's TweenState for `net` (a Network with batch_size 1)."""

    def __init__(self, net, config: TweenConfig | None = None):
        L = net.total_layers
        if any(s is None for s in net.layers):
            raise ConfigError("TweenState: the network has empty grid slots; set every layer "
                              "before tweening")
        self.config = validated_for(config or default_tween_config(L), L)
        self.total_layers = L
        self.forward_acts: list = [np.zeros(0, F32)] * (L + 1)
        self.backward_targets: list = [None] * (L + 1)
        self.chain_gradients: list = [None] * (L + 1)
        self.link_budgets = np.array([1.0 if self._has_kernel(s) else 0.0 for s in net.layers],
                                     np.float32)
        self.gaps = np.zeros(L, np.float32)
        self.depth_barrier = np.zeros(L, np.float32)
        self.weight_vel = [np.zeros_like(s.params["kernel"]) if kind_of(s) == "dense" else None
                           for s in net.layers]
        self.bias_vel = [None] * L  # allocated by LOOM, never used
        self.best_score, self.best_params = 0.0, None
        self.tween_steps, self.loss_history = 0, []
        self.dead_epochs = [0] * L
        self.disabled: set[int] = set()
        self.batch_gaps: list = [None] * L
        self.batch_count = 0
        self.verbose = False
        self.link_budget_history, self.gap_history = [], []
        self.depth_barrier_history, self.epoch_metrics = [], []
        self.explosion = ExplosionTracker()
        self.use_fused = True  # False: always the generic per-layer path (fastplan.py)

    def _plain_walk(self, net):
        """(spec, params, module) per layer when no layer has LOOM's implicit residual (the
        engine walk then reduces to calling each module's forward); else None."""
        key = tuple(id(s) for s in net.layers)
        if getattr(self, "_plain_key", None) != key:
            mods = [s.module for s in net.layers]
            plain = all(getattr(m, "RESIDUAL", None) is None for m in mods)
            self._plain = [(s.spec, s.params, m) for s, m in zip(net.layers, mods)] \
                if plain else None
            self._plain_key = key
            hook = getattr(mods[0], "in_features", None)
            self._n_in = hook(net.layers[0].spec) if hook else None
        return self._plain

    @staticmethod
    def _has_kernel(slot) -> bool:
        return rule_for(kind_of(slot)).HAS_KERNEL

    # ------------------------------------------------------------- passes
    def forward_pass(self, net, x) -> np.ndarray:
        """ForwardPass: ForwardCPU(x) (disabled layers pass through); stores ForwardActs."""
        x = np.asarray(x, F32).reshape(1, -1)
        plain = self._plain_walk(net)
        if plain is not None and not self.disabled and x.shape[1] == self._n_in:
            self.forward_acts = _plain_forward(plain, x)
            return self.forward_acts[-1]
        slots = [_Identity(s) if i in self.disabled else s for i, s in enumerate(net.layers)]
        walk = walk_forward(slots, x, where=lambda i, s: f"TweenState layer {i}")
        self.forward_acts = [t.reshape(-1) for t in walk.tensors[1:]]
        return self.forward_acts[-1]

    def backward_pass(self, net, c: int, out_size: int) -> None:
        """Legacy heuristic targets (UseChainRule=false)."""
        self.backward_targets = legacy_backward(net.layers, self.forward_acts, c, out_size,
                                                self.config)

    def backward_pass_chain_rule(self, net, c: int, out_size: int) -> None:
        """Chain-rule error sweep (UseChainRule=true, LOOM's default)."""
        L, y = self.total_layers, self.forward_acts[-1]
        if y.size == 0:
            return
        g = output_error(y, c, out_size)
        _, grads, targets = chain_backward(net.layers, self.forward_acts, g, 0, L, L,
                                           self.config)
        self.chain_gradients = grads
        self.backward_targets = targets + [one_hot(c, out_size)]

    def calculate_link_budgets(self) -> None:
        self.link_budgets, self.gaps, self.depth_barrier = link_budgets(
            self.forward_acts, self.backward_targets)

    def calculate_link_budgets_from_sample(self, net, x) -> None:
        """Forward x, then budgets against the stored (stale) backward targets."""
        self.forward_pass(net, x)
        self.calculate_link_budgets()

    def _layer_gaps(self) -> list:
        return [None if t is None else gap_of(t, a)
                for t, a in zip(self.backward_targets[1:], self.forward_acts[1:])]

    def tween_weights(self, net, rate: float) -> None:
        """Legacy Hebbian update gated and scaled by link budgets."""
        legacy_update(net.layers, self.forward_acts, self._layer_gaps(), self.link_budgets,
                      self.config, rate, self.weight_vel)

    def tween_weights_chain_rule(self, net, rate: float) -> None:
        """Chain-rule update of every layer from ChainGradients (budgets not consulted)."""
        L = self.total_layers
        chain_update(net.layers, self.forward_acts, self.chain_gradients, 0, L, self.config,
                     rate, self.weight_vel, targets=self.backward_targets)

    def _sweep(self, net, x, c: int, out_size: int) -> np.ndarray:
        self._check(net, out_size)
        out = self.forward_pass(net, x).copy()
        if self.config.use_chain_rule:
            self.backward_pass_chain_rule(net, c, out_size)
        else:
            self.backward_pass(net, c, out_size)
        self.calculate_link_budgets()
        return out

    def _check(self, net, out_size: int) -> None:
        if net.total_layers != self.total_layers:
            raise ConfigError(f"TweenState: network has {net.total_layers} layers, the state "
                              f"{self.total_layers}; build a TweenState for this network")
        if out_size < 1:
            raise ShapeError(f"TweenState: out_size must be >= 1 (got {out_size}); pass the "
                             f"number of output classes")

    # ---------------------------------------------------------- TweenStep
    def tween_step(self, net, x, c: int, out_size: int, rate: float) -> float:
        """One sample: forward, backward, budgets, explosion damping, update. Returns the
        squared error sum of the pre-update output."""
        plan = self._fused_plan(net, x, out_size)
        if plan is not None:
            return self._fused_step(plan, x, c, rate)
        out = self._sweep(net, x, c, out_size)
        mult = self.explosion.multiplier(float(np.mean(self.gaps)) if self.gaps.size else 0.0,
                                         self.config.explosion_detection)
        if self.config.use_chain_rule:
            self.tween_weights_chain_rule(net, rate * mult)
        else:
            self.tween_weights(net, rate * mult)
        self.tween_steps += 1
        return _sq_error(out, c, out_size)

    # ------------------------------------------------------- fused Dense path
    def _fused_plan(self, net, x, out_size: int):
        """The cached DensePlan when this TweenStep can take the fused path, else None."""
        cfg = self.config
        if not (self.use_fused and cfg.use_chain_rule) or self.disabled or \
                net.total_layers != self.total_layers:
            return None
        plan, vel = getattr(self, "_fplan", None), self.weight_vel
        if plan is None or plan.cfg is not cfg or not plan.fits(net, vel, out_size):
            key = [cfg, *plan_key(net, vel, out_size)]
            if same_objects(self.__dict__.get("_plan_miss"), key):
                return None  # this network cannot take the fused path (checked already)
            plan = self._fplan = None if out_size < 1 else build_plan(net, vel, out_size, cfg)
            self._plan_miss = None if plan else key
        return plan if plan is not None and np.size(x) == plan.oa[1] else None

    def _fused_step(self, plan, x, c: int, rate: float) -> float:
        """tween_step through the plan's fused kernels (same results as the generic path).
        forward_acts, chain_gradients and backward_targets are then views of the plan's
        buffers, overwritten by the next fused step (copy them to keep them)."""
        plan.forward(np.asarray(x, F32))
        out = plan.acts[-1].copy()
        L = self.total_layers
        budgets, gaps = np.empty(L, F32), np.empty(L, F32)
        barrier = np.empty(L, F32)
        plan.backward(int(c), budgets, gaps, barrier)
        self.forward_acts, self.chain_gradients = list(plan.acts), list(plan.grads)
        self.backward_targets = list(plan.targets)
        self.link_budgets, self.gaps, self.depth_barrier = budgets, gaps, barrier
        mean = float(np.add.reduce(gaps) / F32(L))  # np.mean's float32 sum and divide
        mult = self.explosion.multiplier(mean, self.config.explosion_detection)
        plan.update(rate * mult)
        self.tween_steps += 1
        return _sq_error(out, int(c), plan.out_size)

    # ------------------------------------------------------------- batches
    def reset_batch(self) -> None:
        self.batch_gaps, self.batch_count = [None] * self.total_layers, 0

    def tween_step_accumulate(self, net, x, c: int, out_size: int) -> float:
        """Forward + backward + budgets; adds target - actual per layer to BatchGaps."""
        out = self._sweep(net, x, c, out_size)
        for i, gap in enumerate(self._layer_gaps()):
            if gap is None:
                continue
            acc = self.batch_gaps[i]
            if acc is None:
                self.batch_gaps[i] = gap.copy()
            else:
                m = min(acc.size, gap.size)
                acc[:m] += gap[:m]
        self.batch_count += 1
        self.tween_steps += 1
        return _sq_error(out, c, out_size)

    def tween_batch_apply(self, net, rate: float) -> None:
        """Apply the averaged gaps with the last sample's activations and budgets."""
        if self.batch_count == 0:
            return
        avg = [None if g is None else (g / F32(self.batch_count)).astype(F32)
               for g in self.batch_gaps]
        if self.config.use_chain_rule:
            self._batch_chain(net, avg, rate)
        else:
            legacy_update(net.layers, self.forward_acts, avg, self.link_budgets, self.config,
                          rate, self.weight_vel)
        self.reset_batch()

    def _batch_chain(self, net, avg, rate) -> None:
        L, acts = self.total_layers, self.forward_acts
        for i in range(L):
            if self.link_budgets[i] < self.config.ignore_threshold or avg[i] is None:
                continue
            chain_update(net.layers[i:i + 1], acts[i:i + 2], [None, avg[i]], i, L,
                         self.config, rate, self.weight_vel[i:i + 1])

    def tween_batch(self, net, xs, cs, out_size: int, rate: float) -> float:
        """ResetBatch, accumulate every sample, apply; mean loss (0 for an empty batch)."""
        self.reset_batch()
        losses = [self.tween_step_accumulate(net, x, int(c), out_size) for x, c in zip(xs, cs)]
        self.tween_batch_apply(net, rate)
        return float(np.mean(losses)) if losses else 0.0

    def train(self, net, inputs, expected, epochs: int, rate: float, callback=None,
              rng=None):
        """TweenState.Train: see train_loop.train (returns the last DeviationMetrics)."""
        from .train_loop import train
        return train(self, net, inputs, expected, epochs, rate, callback, rng)

    # ---------------------------------------------------------- best weights
    def save_best(self, net) -> None:
        """Copy Kernel/Bias of layers that have a Kernel (LOOM saves nothing else)."""
        self.best_params = {i: {k: v.copy() for k, v in s.params.items()}
                            for i, s in enumerate(net.layers) if self._has_kernel(s)}

    def restore_best(self, net) -> None:
        for i, saved in (self.best_params or {}).items():
            if i < len(net.layers):
                for k, v in saved.items():
                    net.layers[i].params[k][...] = v

    def budget_summary(self) -> tuple[float, float, float]:
        """(avg, min, max) link budget; 0.5s when there are no layers."""
        b = self.link_budgets
        return (0.5, 0.5, 0.5) if b.size == 0 else (float(b.mean()), float(b.min()),
                                                    float(b.max()))

    def gap_summary(self) -> tuple[float, float]:
        """(avg, max) gap, max starting at 0."""
        g = self.gaps
        return (0.0, 0.0) if g.size == 0 else (float(g.mean()), max(0.0, float(g.max())))


def _plain_forward(plain, x) -> list:
    acts, h = [x.reshape(-1)], x
    for spec, params, module in plain:
        h, _ = module.forward(spec, params, h)
        acts.append(h.reshape(-1))
    return acts


def _sq_error(out: np.ndarray, c: int, out_size: int) -> float:
    t = one_hot(c, out_size)
    m = min(out.size, t.size)
    return float(((out[:m] - t[:m]) ** 2).sum(dtype=np.float32))

