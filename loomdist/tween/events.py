"""LOOM's layer events (nn/observer.go): LayerEvent, LayerStats and how a network fires them.

JSON keys follow Go's mixed tagging exactly: tagged fields are snake_case, untagged ones keep
their Go names (`Type`, `LayerIdx`, `LayerType`, `Stats`, `Input`, `Output`).

Where loomdist fires events (`fire_forward` / `observed_walk`, called by Network.forward /
backward only when an observer is attached, and by StepState in step mode):

    site              mode/Type        Input              Output                step_count
    Network.forward   normal/forward   the layer output   the layer output      0
    Network.backward  normal/backward  None               dL/d(layer input)     0
    step_forward      step/forward     the input buffer   the new output        before ++
    step_backward     step/backward    None               dL/d(layer input)     after ++

LOOM's Parallel layer reports a stale `Output` (the previous call's); loomdist reports the
current one and fires no per-branch events (branch_idx is always -1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..layers import module_of


@dataclass(frozen=True)
class LayerStats:
    """LOOM's LayerStats of one event's Output vector (float32 arithmetic, as Go)."""

    avg_activation: np.float32
    max_activation: np.float32
    min_activation: np.float32
    active_neurons: int
    total_neurons: int
    layer_type: str

    def to_dict(self) -> dict:
        return {"AvgActivation": self.avg_activation, "MaxActivation": self.max_activation,
                "MinActivation": self.min_activation, "ActiveNeurons": self.active_neurons,
                "TotalNeurons": self.total_neurons, "LayerType": self.layer_type}


def compute_stats(data, layer_type: str, threshold: float = 0.0) -> LayerStats:
    """LOOM's computeLayerStats: sequential float32 sum / n, max, min, count > threshold."""
    z = np.float32(0)
    if data is None or len(data) == 0:
        return LayerStats(z, z, z, 0, 0, layer_type)
    v = np.asarray(data, dtype=np.float32).reshape(-1)
    total = np.cumsum(v, dtype=np.float32)[-1]  # Go adds one value at a time
    return LayerStats(np.float32(total / np.float32(v.size)), np.float32(v.max()),
                      np.float32(v.min()), int(np.count_nonzero(v > np.float32(threshold))),
                      int(v.size), layer_type)


@dataclass
class LayerEvent:
    """LOOM's LayerEvent; `input` / `output` are flat float32 arrays or None."""

    mode: str
    type: str
    layer_idx: int
    layer_type: int
    stats: LayerStats
    input: np.ndarray | None
    output: np.ndarray | None
    step_count: int = 0
    grid_row: int = 0
    grid_col: int = 0
    cell_layer: int = 0
    model_id: str = ""
    branch_idx: int = -1
    is_parallel_branch: bool = False

    def to_dict(self) -> dict:
        """LOOM's JSON object (Go field order and tags)."""
        return {"mode": self.mode, "Type": self.type, "LayerIdx": self.layer_idx,
                "LayerType": self.layer_type, "Stats": self.stats.to_dict(),
                "Input": self.input, "Output": self.output, "step_count": self.step_count,
                "grid_row": self.grid_row, "grid_col": self.grid_col,
                "cell_layer": self.cell_layer, "model_id": self.model_id,
                "branch_idx": self.branch_idx, "is_parallel_branch": self.is_parallel_branch}

    def same_as(self, other: LayerEvent) -> bool:
        """Field-by-field equality with exact float32 values (arrays compared bitwise)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return all(_same(mine[k], theirs[k]) for k in mine)


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        return a.shape == b.shape and a.tobytes() == b.tobytes()
    return type(a) is type(b) and a == b


def make_event(mode: str, kind: str, spec, index: int, coords, model_id: str, inp, out,
               step_count: int = 0) -> LayerEvent:
    """One event for layer `index` (spec at grid `coords`); stats on `out`."""
    module = module_of(spec)
    out = _flat(out)
    return LayerEvent(mode, kind, index, module.LOOM_TYPE_ID,
                      compute_stats(out, module.STATS_NAME), _flat(inp), out, int(step_count),
                      *coords, model_id)


def _flat(a):
    """A read-only flat view (observers must not write into the network's buffers)."""
    if a is None:
        return None
    v = np.asarray(a).reshape(-1).view()
    v.flags.writeable = False
    return v


def notify(watch, index: int, event_for) -> None:
    """Send the event `event_for(model_id)` to every observer watching layer `index`.

    `watch` is the network's observer list: (observer, layer indices or None, model_id).
    Observers with the same model_id share one event object: they must not modify it.
    """
    made: dict = {}
    for obs, layers, model_id in watch:
        if layers is None or index in layers:
            if model_id not in made:
                made[model_id] = event_for(model_id)
            event = made[model_id]
            (obs.on_forward if event.type == "forward" else obs.on_backward)(event)


def fire_forward(net, tensors, mode: str = "normal", step_count: int = 0, inputs=None,
                 first: int = 0) -> None:
    """Forward events for layers first, first + 1, ... of `net`; tensors[k] is the output of
    layer first + k.

    inputs: per-layer inputs (step mode); None reports the output as Input (LOOM's ForwardCPU).
    """
    for k, out in enumerate(tensors):
        i, inp = first + k, out if inputs is None else inputs[k]
        notify(net._observers, i, lambda mid, i=i, x=inp, y=out: make_event(
            mode, "forward", net.layers[i].spec, i, net.coords(i), mid, x, y, step_count))


def fire_backward(net, index: int, dx, mode: str = "normal", step_count: int = 0) -> None:
    """The backward event of layer `index` with dL/d(layer input) `dx`."""
    slot = net.layers[index]
    notify(net._observers, index, lambda mid: make_event(
        mode, "backward", slot.spec, index, net.coords(index), mid, None, dx, step_count))


_SPLIT_BACKWARD = ("backward_input", "weight_grads")  # hidden from engine.backward_layer


class _ReportingSlot:
    """A grid slot whose backward also reports dL/d(input) (used only while observed)."""

    def __init__(self, slot, report):
        self._slot, self._report = slot, report
        self.spec, self.params = slot.spec, slot.params

    @property
    def grads(self) -> dict:
        return self._slot.grads

    @grads.setter
    def grads(self, value: dict) -> None:
        self._slot.grads = value

    @property
    def module(self):
        return self

    def __getattr__(self, name):  # the rest of the layer module (loom_gradients, ...)
        if name in _SPLIT_BACKWARD:  # engine.backward_layer then calls backward, which reports
            raise AttributeError(name)
        return getattr(self._slot.module, name)

    def backward(self, spec, params, cache, dy):
        dx, grads = self._slot.module.backward(spec, params, cache, dy)
        self._report(dx)
        return dx, grads


def observed_walk(net, walk, first: int = 0, mode: str = "normal", step_count: int = 0):
    """`walk` (over layers first, first + 1, ...) whose backward fires LOOM's backward events."""
    from dataclasses import replace

    from ..engine import Walk

    def reporter(i):
        return lambda dx: fire_backward(net, i, dx, mode, step_count)
    tape = [replace(e, slot=_ReportingSlot(e.slot, reporter(first + k)))
            for k, e in enumerate(walk.tape)]
    return Walk(tape, walk.tensors, walk.residual)
