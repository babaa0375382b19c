"""BranchActor: some branches of one Parallel layer, with their weights and optimizer state.

The owning Cell scatters the layer's input to every BranchActor, gathers the branch outputs
and combines them (parallel.combine); in backward it splits dL/d(output) per branch
(parallel.split), and each BranchActor returns the sum of its branches' dL/dx.
"""

from __future__ import annotations

import numpy as np
import ray

from ..engine import WeightGradStash, backward_layer
from ..layers import module_of, parallel
from ..memory import retain_freed_memory
from ..network import Layer
from ..optim import Optimizer
from ..threads import set_threads
from .cell import ParamOwner
from .pinning import Pinnable


class Branch(ParamOwner):
    """Branches `indices` of the Parallel layer at grid slot (row, col, layer).

    Args:
        rcl: (row, col, layer) of the Parallel layer.
        slot: its Layer (spec and all branch parameters; only `indices` are kept).
        indices: branch indices this object owns.
        optim: OptimConfig for their parameters.
        defer: defer weight gradients to one GEMM per mini-batch, as Cell's `defer`.
    """

    def __init__(self, rcl, slot, indices, optim, defer: bool = True):
        spec = slot.spec
        self.wstash = WeightGradStash() if defer else None
        self.indices, self.stash = list(indices), {}
        self.owned = [((*rcl, parallel.branch_key(i, "")),
                       Layer(spec.branches[i], {k: v.copy() for k, v in
                                                parallel.branch_params(slot.params, i).items()}))
                      for i in self.indices]
        self.opt = Optimizer(optim)

    def forward(self, mb: int, x: np.ndarray) -> list:
        """x (batch, in) -> [y_i (batch, out_i)] for the owned branches; stashes caches."""
        outs, caches = [], []
        for _, b in self.owned:
            y, cache = module_of(b.spec).forward(b.spec, b.params, x)
            outs.append(y)
            caches.append(cache)
        self.stash[mb] = caches
        return outs

    def backward(self, mb: int, dys: list, need_dx: bool = True) -> np.ndarray | None:
        """[dL/dy_i] of the owned branches -> sum_i dL/dx; accumulates branch gradients.
        need_dx=False (the Parallel layer opens the first stage): None, and branches whose
        module can skip dL/dx do (engine.backward_layer)."""
        dx, defer = None, self._defer(mb)
        for (_, b), cache, dy in zip(self.owned, self.stash.pop(mb), dys):
            d = backward_layer(b, cache, dy, defer, need_dx)  # None unless need_dx
            if need_dx:
                dx = d if dx is None else dx + d
        return dx


@ray.remote
class BranchActor(Pinnable, Branch):
    """Branch as a Ray actor; sets Numba/BLAS threads to its CPU share
    and keeps freed memory for the next micro-batch (loomdist.memory) first."""

    def __init__(self, *args, threads: int = 1, **kw):
        set_threads(threads)
        retain_freed_memory()
        super().__init__(*args, **kw)
