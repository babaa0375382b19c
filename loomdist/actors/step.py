"""Step mode on actors: each StepCellActor steps a run of consecutive cells, one tick a call.

Tick t of actor k consumes tick t-1 of actor k-1 (an ObjectRef), so no tick needs a barrier:
the driver only submits calls, and Ray runs each actor's calls in submission order.

    driver submits, per tick t:   a0.tick(x_t)   a1.tick(out0[t-1])   a2.tick(out1[t-1]) ...
    running (4 actors):     t=1   a0 a1 a2 a3      (a1..a3 read their zero buffers)
                            t=2   a0 a1 a2 a3      (a1 reads a0's tick 1, ...)

This equals one StepState over the whole network tick for tick: actor k's buffer 0 before its
tick t holds global buffer `first_k` after tick t-1. Step+BP training (`train_tick`) chains
the backward from the last actor to the first inside one tick, then every actor applies its
own gradients, before its next tick (again only by call order).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import ray

from ..errors import ConfigError
from ..network import Layer
from ..plan import Plan
from ..threads import set_threads
from ..tween.step import StepState
from .transport import RayTransport


class StepCell:
    """One actor's span of a network in step mode (plain object; StepCellActor on Ray).

    Args:
        net: the whole Network (this object keeps its own copy of the span's weights).
        span: (first, end) flat layer indices it steps.
        loom_residuals, input_size: as StepState.
    """

    def __init__(self, net, span, loom_residuals: bool = True, input_size: int | None = None):
        net = copy.copy(net)  # own, writable weights for the span (Ray's arrays are read-only)
        net.layers = [Layer(s.spec, {k: np.array(v) for k, v in s.params.items()})
                      if s is not None and span[0] <= i < span[1] else s
                      for i, s in enumerate(net.layers)]
        self.state = StepState(net, loom_residuals, input_size, span=tuple(span))
        self.net, self.first = net, self.state.first

    def tick(self, prev=None):
        """prev: (x, residual) the previous span produced last tick (or the network input),
        None to keep buffer 0. Returns this tick's (output (batch, out), residual_out)."""
        if prev is not None:
            self.state.set_input(prev[0], prev[1])
        self.state.step_forward()
        return self.state.layer_data()[-1], self.state.residual_out()

    def backward(self, grad, grad_scaling: bool = False, lr: float | None = None):
        """grad: (dL/d output, dL/d residual_out) from the next span -> the same for ours.
        With `lr`, apply the gradients right after (one call per actor and tick)."""
        out = self.state.span_backward(grad[0], grad[1], grad_scaling)
        if lr is not None:
            self.state.apply_gradients(lr)
        return out

    def backward_target(self, target, grad_scaling: bool = False, lr: float | None = None):
        """Last span: Step+BP's output gradient out - target (LOOM: no 2/N), then backward."""
        out = self.state.layer_data()[-1]
        dy = out - np.asarray(target, out.dtype).reshape(out.shape)
        return self.backward((dy, None), grad_scaling, lr)

    def params(self) -> dict:
        """{(row, col, layer, name): weights} of this span."""
        return {(*self.net.coords(self.first + k), name): w
                for k, slot in enumerate(self.state.layers) for name, w in slot.params.items()}


@ray.remote
class StepCellActor(StepCell):
    """StepCell as a Ray actor; sets Numba/BLAS threads to its CPU share first."""

    def __init__(self, *args, threads: int = 1, **kw):
        set_threads(threads)
        super().__init__(*args, **kw)

    def ping(self) -> bool:
        return True


class StepGrid:
    """A network in step mode across StepCellActors (one per Plan stage; default per cell).

    Args:
        net: the Network; its weights are copied to the actors.
        plan: a Plan without replicas or branch actors (default Plan.cells(net)).
        loom_residuals, input_size: as StepState.
        timeout_s: limit of every wait (the setting named in timeout errors).
        num_cpus: CPUs per actor (default: the cluster's CPUs shared evenly).
    Raises:
        ConfigError: the plan has replicas or branch actors, or does not fit the network.
    """

    def __init__(self, net, plan: Plan | None = None, loom_residuals: bool = True,
                 input_size: int | None = None, timeout_s: float = 120.0,
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
            net, span, loom_residuals, input_size, threads=max(1, int(per))) for span in spans]
        self.transport.get([a.ping.remote() for a in self.actors], "StepGrid actor start")
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

    def train_tick(self, x, target, lr: float, grad_scaling: bool = False):
        """One Step+BP tick (LOOM's Test 17-19 StepBP): tick, dy = output - target, backward
        chained actor to actor, each actor applying SGD right after its backward. Returns
        the output's ObjectRef."""
        out = self.tick(x)
        grad = self.actors[-1].backward_target.remote(target, grad_scaling, lr)
        for a in reversed(self.actors[:-1]):
            grad = a.backward.remote(grad, grad_scaling, lr)
        self._applied.append(grad)  # done once every actor of the chain has applied
        return out

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
