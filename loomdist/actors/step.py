"""Step mode on actors: each StepCellActor steps a run of consecutive cells, one tick a call.

Tick t of actor k consumes tick t-1 of actor k-1 (an ObjectRef), so no tick needs a barrier:
the driver only submits calls, and Ray runs each actor's calls in submission order.

    driver submits, per tick t:   a0.tick(x_t)   a1.tick(out0[t-1])   a2.tick(out1[t-1]) ...
    running (4 actors):     t=1   a0 a1 a2 a3      (a1..a3 read their zero buffers)
                            t=2   a0 a1 a2 a3      (a1 reads a0's tick 1, ...)

This equals one StepState over the whole network tick for tick: before its tick t, actor k's
buffer 0 holds the global buffer of its first layer after tick t-1. Step+BP (`train_tick`)
chains the backward from the last actor to the first inside one tick, each actor applying its
own gradients before its next tick (again only by call order). StepTweenChain (`tween_tick`)
runs TweenStep span by span (tween/step_tween.py): forward first to last, chain-rule errors
last to first, then every actor updates its own layers.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import ray

from ..errors import ConfigError
from ..memory import retain_freed_memory
from ..network import Layer
from ..plan import Plan
from ..threads import set_threads
from ..tween.bp import keep_loom_apply_grads
from ..tween.step import StepState
from ..tween.step_tween import TweenSpan
from .pinning import Pinnable, pin_actors
from .transport import RayTransport


class StepCell:
    """One actor's span of a network in step mode (plain object; StepCellActor on Ray).

    Args:
        net: the whole Network (this object keeps its own copy of the span's weights).
        span: (first, end) flat layer indices it steps.
        loom_residuals, input_size: as StepState.
        tween_config: TweenConfig of the span's StepTweenChain training (default LOOM's).
    """

    def __init__(self, net, span, loom_residuals: bool = True, input_size: int | None = None,
                 tween_config=None):
        net = copy.copy(net)  # own, writable weights for the span (Ray's arrays are read-only)
        net.layers = [Layer(s.spec, {k: np.array(v) for k, v in s.params.items()})
                      if s is not None and span[0] <= i < span[1] else s
                      for i, s in enumerate(net.layers)]
        self.state = StepState(net, loom_residuals, input_size, span=tuple(span))
        self.net, self.first = net, self.state.first
        self.tween = TweenSpan(net, span, tween_config)

    def tick(self, prev=None):
        """prev: (x, residual) the previous span produced last tick (or the network input),
        None to keep buffer 0. Returns this tick's (output (batch, out), residual_out)."""
        if prev is not None:
            self.state.set_input(prev[0], prev[1])
        self.state.step_forward()
        return self.state.layer_data()[-1], self.state.residual_out()

    def backward(self, grad, grad_scaling: bool = False, lr: float | None = None,
                 loom_apply: bool = False):
        """grad: (dL/d output, dL/d residual_out) from the next span -> the same for ours.
        With `lr`, apply the gradients right after (one call per actor and tick); with
        loom_apply only those LOOM's ApplyGradients applies (Dense/Conv2D kernel and bias)."""
        out = self.state.span_backward(grad[0], grad[1], grad_scaling)
        if lr is not None:
            if loom_apply:
                keep_loom_apply_grads(self.state)  # reads only .layers: this span's slots
            self.state.apply_gradients(lr)
        return out

    def backward_target(self, target, grad_scaling: bool = False, lr: float | None = None,
                        loom_apply: bool = False):
        """Last span: Step+BP's output gradient out - target (LOOM: no 2/N), then backward."""
        out = self.state.layer_data()[-1]
        dy = out - np.asarray(target, out.dtype).reshape(out.shape)
        return self.backward((dy, None), grad_scaling, lr, loom_apply)

    # TweenStep over the span (StepTweenChain's training), see tween/step_tween.py
    def tween_forward(self, prev):
        return self.tween.forward(prev[0], prev[1])

    def tween_backward_last(self, c: int, out_size: int):
        return self.tween.backward_last(c, out_size)

    def tween_backward(self, msg):
        return self.tween.backward(msg)

    def tween_update(self, msg, rate: float) -> None:
        self.tween.update(msg, rate)

    def params(self) -> dict:
        """{(row, col, layer, name): weights} of this span."""
        return {(*self.net.coords(self.first + k), name): w
                for k, slot in enumerate(self.state.layers) for name, w in slot.params.items()}


@ray.remote
class StepCellActor(Pinnable, StepCell):
    """StepCell as a Ray actor; sets Numba/BLAS threads to its CPU share
    and keeps freed memory for the next micro-batch (loomdist.memory) first."""

    def __init__(self, *args, threads: int = 1, **kw):
        set_threads(threads)
        retain_freed_memory()
        super().__init__(*args, **kw)

    def ping(self) -> bool:
        return True


class StepGrid:
    """A network in step mode across StepCellActors (one per Plan stage; default per cell).

    Args:
        net: the Network; its weights are copied to the actors.
        plan: a Plan without replicas or branch actors (default Plan.cells(net)).
        loom_residuals, input_size: as StepState.
        tween_config: TweenConfig for `tween_tick` (default LOOM's DefaultTweenConfig(L)).
        timeout_s: limit of every wait (the setting named in timeout errors).
        num_cpus: CPUs per actor (default: the cluster's CPUs shared evenly).
    Raises:
        ConfigError: the plan has replicas or branch actors, or does not fit the network.
    """

    def __init__(self, net, plan: Plan | None = None, loom_residuals: bool = True,
                 input_size: int | None = None, tween_config=None, timeout_s: float = 120.0,
                 num_cpus: float | None = None):
        plan = plan or Plan.cells(net)
        if plan.replicas != 1 or plan.branch_actors:
            raise ConfigError(f"StepGrid: step mode runs one pipeline without branch actors "
                              f"(replicas {plan.replicas}, branch_actors "
                              f"{plan.branch_actors}); use a Plan of stages only")
        plan.check(net)
        self.transport = RayTransport(timeout_s, "StepGrid timeout_s")
        n = len(plan.stages)
        per = num_cpus or math.floor(float(ray.cluster_resources().get("CPU", 1)) / n * 1e4) / 1e4
        spans = [(idx[0], idx[-1] + 1) for idx in (plan.stage_layers(net, s) for s in range(n))]
        self.actors = [StepCellActor.options(num_cpus=per).remote(
            net, span, loom_residuals, input_size, tween_config, threads=max(1, int(per)))
            for span in spans]
        self.transport.get([a.ping.remote() for a in self.actors], "StepGrid actor start")
        self.pinned = pin_actors(self.actors, per, self.transport.get, plan.pin_cpus)
        self._last = [None] * n  # each actor's newest tick output (ObjectRef)
        self._applied: list = []  # updates not yet waited for

    def tick(self, x=None):
        """Submit one tick of every actor (x: the network input for it, None keeps the last);
        returns the ObjectRef of the last actor's (output, residual) of this tick."""
        args = [None if x is None else (x, None)] + self._last[:-1]
        self._last = [a.tick.remote(arg) for a, arg in zip(self.actors, args)]
        return self._last[-1]

    def run(self, inputs, ticks_per_input: int = 1, window: int = 64) -> list:
        """Step through `inputs` (each held for ticks_per_input ticks); returns the output of
        every tick as (batch, out) arrays. At most `window` ticks are in flight."""
        refs, pending = [], []
        for x in inputs:
            for k in range(ticks_per_input):
                pending.append(self.tick(x if k == 0 else None))
                if len(pending) >= window:
                    refs += self._settle(pending[: window // 2])
                    pending = pending[window // 2:]
        refs += pending
        return [y for y, _ in self.transport.get(refs, "StepGrid.run")]

    def _settle(self, refs) -> list:
        """Wait until the oldest in-flight ticks finished (bounds the queue), keep their refs."""
        _, late = ray.wait(refs, num_returns=len(refs), timeout=self.transport.timeout_s)
        if late:
            raise TimeoutError(f"StepGrid.run: {len(late)} ticks not done within "
                               f"{self.transport.timeout_s:g} s; raise StepGrid timeout_s if "
                               f"the work is slow, or check the actors (ray status)")
        return refs

    def train_tick(self, x, target, lr: float, grad_scaling: bool = False,
                   loom_apply: bool = False):
        """One Step+BP tick (LOOM's Test 17-19 StepBP): tick, dy = output - target, backward
        chained actor to actor, each actor applying SGD right after its backward (loom_apply:
        only LOOM's ApplyGradients parameters, as tween.modes.StepBP). Returns the output's
        ObjectRef."""
        out = self.tick(x)
        grad = self.actors[-1].backward_target.remote(target, grad_scaling, lr, loom_apply)
        for a in reversed(self.actors[:-1]):
            grad = a.backward.remote(grad, grad_scaling, lr, loom_apply)
        self._applied.append(grad)  # done once every actor of the chain has applied
        return out

    def tween_tick(self, x, c: int, out_size: int, rate: float):
        """One StepTweenChain output (LOOM's Tests 17-19 STC): a step tick for the decision,
        then TweenStep(x, c) across the actors: forward first to last, chain-rule errors
        last to first, every actor updating its own layers. Returns (output ref, ref of the
        first actor's message; its [3] is the pre-update squared error)."""
        out, fwd = self.tick(x), (x, None)
        for a in self.actors:
            fwd = a.tween_forward.remote(fwd)
        msg = self.actors[-1].tween_backward_last.remote(int(c), int(out_size))
        for a in reversed(self.actors[:-1]):
            msg = a.tween_backward.remote(msg)
        self._applied += [a.tween_update.remote(msg, rate) for a in self.actors]
        return out, msg

    def sync(self) -> None:
        """Wait for every submitted update (raises an actor's error, if one failed)."""
        applied, self._applied = self._applied, []
        self.transport.get(applied, "StepGrid updates")

    def params(self) -> dict:
        """{(row, col, layer, name): weights} gathered from every actor."""
        self.sync()
        out: dict = {}
        for got in self.transport.get([a.params.remote() for a in self.actors],
                                      "StepGrid.params"):
            out.update(got)
        return out

    def shutdown(self) -> None:
        for a in self.actors:
            ray.kill(a)
        self.actors = []
