"""Forward and backward walks over a run of layers, with LOOM's residual bookkeeping.

A walk covers any consecutive run of grid slots (the whole network, or one pipeline stage).
LOOM's implicit residual (see network.py) may cross a stage boundary, so a walk takes the
residual tensor its predecessor left (`residual_in`) and hands its own on (`residual_out`);
backward returns the gradient for both the input and that incoming residual.

Tensor indices inside a walk: 0 = residual_in, 1 = input, i + 2 = output of local layer i.

A pipeline stage may defer weight gradients: backward then computes only dL/dx per
micro-batch (what the previous stage waits for) and WeightGradStash computes each layer's
weight gradients once per mini-batch, for modules that split their backward.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .layers import splits_backward


@dataclass
class TapeEntry:
    """What backward needs from one layer's forward."""

    slot: object
    cache: object
    residual: int | None  # tensor index added to this layer's output (post) or input (pre)
    mode: str | None      # the module's RESIDUAL constant


@dataclass
class Walk:
    """The record of one forward walk: tape, tensors and where the residual ended."""

    tape: list
    tensors: list
    residual: int | None

    @property
    def output(self) -> np.ndarray:
        return self.tensors[-1]

    @property
    def residual_out(self):
        return None if self.residual is None else self.tensors[self.residual]


def walk_forward(slots, x: np.ndarray, residual_in=None, where=None) -> Walk:
    """Run `slots` (Layer objects) in order on x (batch, features)."""
    return residual_walk(slots, x, residual_in, where, _cpu_forward, operator.add)


def residual_walk(slots, x, residual_in, where, run, add) -> Walk:
    """LOOM's residual bookkeeping over `slots`, on any array type (the CPU engine and the
    wgpu runner share it): run(i, slot, h) -> (y, cache) runs layer i, add(a, b) -> a + b."""
    tensors, tape = [residual_in, x], []
    residual = 0 if residual_in is not None else None
    for i, slot in enumerate(slots):
        name = where(i, slot) if where else f"layer {i}"
        if slot is None:
            raise ConfigError(f"{name}: no layer is set here; call set_layer for it")
        h = tensors[-1]
        slot.spec.out_features(h.shape[1], name)
        mode = getattr(slot.module, "RESIDUAL", None)
        added = residual if mode == "pre_add" and _fits(tensors, residual, h) else None
        if added is not None:
            h = add(h, tensors[added])
        y, cache = run(i, slot, h)
        if mode == "post_add" and _fits(tensors, residual, y):
            added = residual
            y = add(y, tensors[added])
        tensors.append(y)
        tape.append(TapeEntry(slot, cache, added, mode))
        if mode == "store_input":
            residual = i + 1
        elif mode == "post_add" or (mode == "pre_add" and residual is not None):
            residual = i + 2  # LOOM: a LayerNorm stores its output only once a residual exists
    return Walk(tape, tensors, residual)


def _cpu_forward(i, slot, h):
    return slot.module.forward(slot.spec, slot.params, h)


def walk_backward(walk: Walk, dy: np.ndarray, d_residual_out=None, upto: int | None = None,
                  defer=None, need_input: bool = True) -> tuple:
    """Backpropagate through the walk; accumulates into each slot's grads.

    dy is dL/d(output) (or, with `upto`, dL/d(output of local layer upto-1)).
    d_residual_out: gradient arriving for the residual this walk handed on (from later stages).
    defer: None, or a callable(slot, wcache) that keeps the weight-gradient inputs of layers
        whose module can split its backward (see backward_layer); their grads then come later.
    need_input: False when the caller drops both gradients it would return (a pipeline's
        first stage, a training step): the first layer then skips its input gradient where
        its module can (backward_input's need_dx), and (None, None) comes back.
    Returns (dL/dx, dL/d(residual_in) or None).
    """
    def back(entry, gy, need_dx):
        return backward_layer(entry.slot, entry.cache, gy, defer, need_dx)

    grads = residual_backward(walk, dy, d_residual_out, upto, back, operator.add, need_input)
    if not need_input:
        return None, None
    dx = grads[1] if grads[1] is not None else np.zeros_like(walk.tensors[1])
    return dx, grads[0]


def residual_backward(walk: Walk, dy, d_residual_out, upto, back, add,
                      need_input: bool = True) -> list:
    """The backward of residual_walk on any array type: back(entry, gy, need_dx) -> dx runs
    one layer's backward (it may return None when need_dx is False: nothing reads that dx).
    need_input=False: the caller reads neither the input's gradient nor residual_in's. The
    first layer's dx reaches only those two (a pre_add residual before the first layer is
    residual_in), so it is asked for none; every later layer's dx reaches a layer output.
    Returns the gradient list: [0] for residual_in, [1] for the input (None where nothing
    arrived, or not asked for)."""
    tape = walk.tape if upto is None else walk.tape[:upto]
    grads: list = [None] * (len(tape) + 2)
    grads[-1] = dy

    def accumulate(k, g):
        grads[k] = g if grads[k] is None else add(grads[k], g)

    if d_residual_out is not None and walk.residual is not None:
        if walk.residual < len(grads):
            accumulate(walk.residual, d_residual_out)
    for i in range(len(tape) - 1, -1, -1):
        entry, gy = tape[i], grads[i + 2]
        if gy is None:
            continue
        if entry.mode == "post_add" and entry.residual is not None:
            accumulate(entry.residual, gy)
        dx = back(entry, gy, need_input or i >= 1)
        if dx is None:
            continue
        if entry.mode == "pre_add" and entry.residual is not None:
            accumulate(entry.residual, dx)
        accumulate(i + 1, dx)
    return grads


def backward_layer(slot, cache, dy: np.ndarray, defer=None,
                   need_dx: bool = True) -> np.ndarray | None:
    """One layer's backward: returns dL/dx and accumulates its gradients into slot.grads.

    With `defer` (a callable(slot, wcache)) and a module that has the optional pair
    `backward_input(spec, params, cache, dy, need_dx=True) -> (dx, wcache)` and
    `weight_grads(spec, params, [wcache, ...]) -> grads` (layers.splits_backward), only dx
    is computed now and the
    wcache goes to `defer`; WeightGradStash turns the wcaches into gradients later.
    need_dx=False: nobody reads dx; a module with the pair skips computing it (without
    `defer` its gradients are then weight_grads([wcache]), which is what its backward
    returns), and None comes back.
    """
    split = splits_backward(slot.module, slot.spec)
    if not split or (defer is None and need_dx):
        dx, g = slot.module.backward(slot.spec, slot.params, cache, dy)
        add_grads(slot, g)
        return dx if need_dx else None
    dx, wcache = slot.module.backward_input(slot.spec, slot.params, cache, dy, need_dx=need_dx)
    if defer is None:
        add_grads(slot, slot.module.weight_grads(slot.spec, slot.params, [wcache]))
    else:
        defer(slot, wcache)
    return dx


def add_grads(slot, grads: dict) -> None:
    """slot.grads += grads (a missing entry starts at the given array)."""
    for name, value in grads.items():
        prev = slot.grads.get(name)
        slot.grads[name] = value if prev is None else prev + value


class WeightGradStash:
    """Deferred weight gradients of one mini-batch: per layer, the wcaches its
    backward_input returned per micro-batch; `flush` turns each layer's into gradients with
    one weight_grads call (one GEMM over all rows instead of one small GEMM and one
    accumulation per micro-batch) and sums them in micro-batch order, whatever the
    schedule's backward order was. `flush_micro` computes one micro-batch's early (ZB-H1's
    idle ticks); the sum is then grouped W(mb) + W(the rest), equal to one flush up to
    float rounding, and the same for every run of the same schedule."""

    def __init__(self):
        self._slots: dict = {}  # id(slot) -> (slot, {micro-batch: wcache})

    def defer_for(self, mb: int):
        """The `defer` callable for backward_layer / walk_backward of micro-batch mb."""
        def defer(slot, wcache):
            self._slots.setdefault(id(slot), (slot, {}))[1][mb] = wcache
        return defer

    def flush(self) -> None:
        """Accumulate every stashed layer's weight gradients into its grads; empties."""
        slots, self._slots = self._slots, {}
        for slot, by_mb in slots.values():
            wcaches = [by_mb[mb] for mb in sorted(by_mb)]
            add_grads(slot, slot.module.weight_grads(slot.spec, slot.params, wcaches))

    def flush_micro(self, mb: int) -> None:
        """Accumulate the weight gradients of micro-batch mb alone (a schedule's "wgt" op in
        an idle tick); `flush` computes the remaining micro-batches together."""
        for key, (slot, by_mb) in list(self._slots.items()):
            if mb in by_mb:
                add_grads(slot, slot.module.weight_grads(slot.spec, slot.params, [by_mb[mb]]))
                del by_mb[mb]
                if not by_mb:
                    del self._slots[key]

    def clear(self) -> None:
        """Drop what was stashed (a new mini-batch begins)."""
        self._slots = {}


def _fits(tensors, residual, h) -> bool:
    return residual is not None and tensors[residual].shape == h.shape
