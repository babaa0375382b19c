"""LOOM's step mode: every layer runs every tick on its predecessor's previous-tick output.

Double buffering over L = total_layers layers; buffer 0 is the input, buffer i + 1 the latest
output of layer i. One tick (`step_forward`) computes every layer from the buffers as they
were before the tick, then replaces buffers 1..L at once:

    tick:      1      2      3          (L = 3, input x set before tick 1)
    layer 0   f0(x)  f0(x)  f0(x)
    layer 1   f1(0)  f1(.)  f1(f0(x))
    layer 2   f2(0)  f2(.)  f2(f1(f0(x)))   <- x first reaches the output at tick L

Residuals (the layer module's `RESIDUAL`, applied by engine.walk_forward):
    loom_residuals=True   LOOM's StepForward: each MHA/SwiGLU adds its *own* previous output
                          to its output, each LayerNorm normalises x + its own previous output,
                          RMSNorm stores its input (unused); memory starts at zeros.
    loom_residuals=False  every layer computes what Network.forward computes: the engine's
                          cross-layer residual travels with the data from buffer to buffer,
                          so from tick L on a constant input gives exactly `net.forward`.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..engine import add_grads, walk_backward, walk_forward
from ..errors import ConfigError, ShapeError
from ..layers._common import positive_int
from .events import fire_forward, observed_walk
from .step_grad import loom_groups, scale_layer_grads, softmax_scale


class StepState:
    """LOOM's StepState over `net` (InitStepState): L + 1 zero buffers.

    Args:
        net: a Network with every slot set; its parameters and gradients are used live.
        loom_residuals: LOOM's self-residual memory (True) or the engine's cross-layer
            residual (False), see the module docstring.
        input_size: LOOM's flat input length (batch_size * features); default: the network's
            input_size, else its first layer's input features times batch_size.
        span: (first, end) layer indices this state steps (an actor's run of cells); buffer 0
            is then layer `first`'s input. Default: every layer.
    Raises:
        ConfigError: a slot is empty, the span is not inside the network, or the input size
            cannot be inferred.
        ShapeError: the layer sizes do not chain.
    """

    def __init__(self, net, loom_residuals: bool = True, input_size: int | None = None,
                 span: tuple | None = None):
        self.net, self.loom_residuals = net, bool(loom_residuals)
        self.step_count = 0
        self._flat = True
        first, end = self._span(span)
        sizes = [self._features(input_size)]
        for i, slot in enumerate(net.layers[:end]):
            if slot is None:
                raise ConfigError(f"StepState: {net._where(i, slot)} is empty; call "
                                  f"set_layer for every slot before building a StepState")
            sizes.append(slot.spec.out_features(sizes[-1], net._where(i, slot)))
        self.first, self._slots, sizes = first, net.layers[first:end], sizes[first:]
        t = net.dtype
        self._data = [np.zeros((net.batch_size, n), t) for n in sizes]
        # loom: residual memory of layer i; else: the residual travelling in buffer i
        self._res = ([np.zeros((net.batch_size, n), t) for n in sizes[1:]]
                     if self.loom_residuals else [None] * len(sizes))
        self._walks = None
        self._plans: dict = {}  # gradient-scaling plans per (module, spec, shapes), see _scale

    def _span(self, span) -> tuple:
        n = self.net.total_layers
        pair = (0, n) if span is None else tuple(span)
        first, end = pair if len(pair) == 2 else (None, None)
        if not (isinstance(first, (int, np.integer)) and isinstance(end, (int, np.integer))
                and 0 <= first < end <= n):
            raise ConfigError(f"StepState: span {span!r} is not a run of layers inside "
                              f"0..{n}; pass (first, end) with 0 <= first < end <= {n}")
        return int(first), int(end)

    def _features(self, input_size) -> int:
        net = self.net
        flat = input_size or net.input_size
        if flat:
            flat = positive_int(flat, "StepState", "input_size")
            if flat % net.batch_size:
                raise ConfigError(f"StepState: input_size {flat} is not a multiple of "
                                  f"batch_size {net.batch_size}; pass batch_size*features")
            return flat // net.batch_size
        n = net.in_features()
        if n is None:
            raise ConfigError("StepState: cannot infer the input size (the network has no "
                              "input_size and its first layer accepts several); pass "
                              "input_size=batch_size*features")
        return n

    # ------------------------------------------------------------- accessors
    @property
    def num_layers(self) -> int:
        return len(self._data) - 1

    def set_input(self, x, residual=None) -> None:
        """Copy `x` into buffer 0: LOOM's flat layout, or a (batch, features) array.

        residual: with loom_residuals=False and a span, the engine residual that arrives
        with x from the previous span (its `residual_out()`); ignored otherwise.
        Raises ShapeError when the per-sample features differ from the network input's.
        """
        arr = np.asarray(x, dtype=self.net.dtype)
        n = self._data[0].shape[1]
        rows = arr.size // n if arr.ndim == 1 and arr.size % n == 0 else 0
        if not (rows if arr.ndim == 1 else arr.ndim == 2 and arr.shape[1] == n and arr.size):
            raise ShapeError(f"StepState.set_input: input shape {arr.shape} does not hold "
                             f"rows of {n} features; pass batch*{n} flat values or "
                             f"(batch, {n})")
        self._flat = arr.ndim == 1
        self._data[0] = arr.reshape(-1, n).copy()
        if not self.loom_residuals:
            self._res[0] = None if residual is None else np.asarray(residual, self.net.dtype)

    def residual_out(self):
        """The engine residual that leaves the last buffer (None in LOOM's mode)."""
        return None if self.loom_residuals else self._res[-1]

    def output(self) -> np.ndarray:
        """Copy of buffer L (LOOM's GetOutput), flat unless the input was given batched."""
        return self.layer_output(self.num_layers)

    def layer_output(self, i: int) -> np.ndarray:
        """Copy of buffer i (0 = input, i = output of layer i - 1); ConfigError outside 0..L."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or \
                not 0 <= i <= self.num_layers:
            raise ConfigError(f"StepState.layer_output: index {i!r} is outside 0..."
                              f"{self.num_layers}; pass 0 (input) to L (output)")
        out = self._data[i].copy()
        return out.reshape(-1) if self._flat else out

    @property
    def layers(self) -> list:
        """The network's Layer objects this state steps (live)."""
        return self._slots

    def layer_data(self) -> list:
        """The internal (batch, features) buffers, no copy (LOOM's GetLayerData)."""
        return self._data

    def residuals(self) -> list:
        """Internal residual memory: per layer (loom) or per buffer (cross-layer), no copy."""
        return self._res

    # ---------------------------------------------------------------- ticks
    def _compute(self, i: int):
        # no `where` names: sizes were checked in __init__ and set_input keeps the features
        return walk_forward([self._slots[i]], self._data[i], self._res[i])

    def step_forward(self) -> None:
        """One tick: every layer reads its buffer as it was before the tick."""
        # fast-path hook (tween/fasttick.py, set by StepTweenChain): no walks are kept
        tick = getattr(self, "fast_tick", None)
        if tick is not None and not self.net._observers and tick(self._data):
            self._walks, self.step_count = None, self.step_count + 1
            return
        walks = [self._compute(i) for i in range(self.num_layers)]
        if self.net._observers:
            fire_forward(self.net, [w.output for w in walks], "step", self.step_count,
                         inputs=self._data[:-1], first=self.first)
        self._data[1:] = [w.output for w in walks]
        if self.loom_residuals:
            self._res = [w.residual_out for w in walks]
        else:
            self._res[1:] = [w.residual_out for w in walks]
        self._walks = walks
        self.step_count += 1

    def step_forward_single(self, i: int) -> None:
        """LOOM's StepForwardSingle: only layer i, written in place; step_count unchanged.

        Unlike LOOM (Conv2D, MHA and Dense only; other kinds fall back to an element-wise
        activation), every kind computes what it computes in step_forward.
        """
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or \
                not 0 <= i < self.num_layers:
            raise ConfigError(f"StepState.step_forward_single: layer {i!r} is outside 0..."
                              f"{self.num_layers - 1}; pass a layer index")
        walk = self._compute(i)
        self._data[i + 1] = walk.output
        self._res[i if self.loom_residuals else i + 1] = walk.residual_out
        if self._walks is None:
            self._walks = [None] * self.num_layers
        self._walks[i] = walk

    # ------------------------------------------------------------- gradients
    def step_backward(self, dy, grad_scaling: bool = False) -> np.ndarray:
        """Gradients of what the last tick computed, accumulated into the network's grads.

        Each layer differentiates its last-tick computation from the buffer it read; the
        input gradient of layer i is the output gradient of layer i - 1 (LOOM's chain).
        With the engine's residual (loom_residuals=False) the residual gradient is chained
        too; LOOM's self-residual memory is state from earlier ticks and gets none.

        Args:
            dy: dL/d(output), flat or (batch, out) like `output()`.
            grad_scaling: LOOM's gradient attention: each layer's kernel and bias gradient
                vectors of this tick are scaled by N * softmax(|g|) before accumulating.
        Returns:
            dL/d(buffer 0), in the form of `output()`.
        Raises:
            ConfigError: no tick was computed (or a layer never ran).
            ShapeError: dy's size differs from the output's.
        """
        dx, _ = self.span_backward(dy, None, grad_scaling)
        return dx.reshape(-1) if self._flat else dx

    def span_backward(self, dy, d_residual=None, grad_scaling: bool = False):
        """step_backward for one span of a chain: (dL/dy, dL/d residual_out()) ->
        (dL/d buffer 0 as (batch, features), dL/d the residual set with set_input or None)."""
        walks = self._walks
        if walks is None or any(w is None for w in walks):
            raise ConfigError("StepState.step_backward: not every layer has computed a tick; "
                              "call step_forward first")
        out = walks[-1].output
        g = np.asarray(dy, dtype=out.dtype)
        if g.size != out.size:
            raise ShapeError(f"StepState.step_backward: gradient has {g.size} values, the "
                             f"output has {out.size}; pass dL/d(output) of the last tick")
        g, d_res = g.reshape(out.shape), None if self.loom_residuals else d_residual
        if self.net._observers:
            walks = [observed_walk(self.net, w, self.first + i, "step", self.step_count)
                     for i, w in enumerate(walks)]
            for walk in reversed(walks):
                g, d_res = _backward_walk(walk, g, d_res, grad_scaling and self._scale)
                d_res = None if self.loom_residuals else d_res
            return g, d_res
        scale = grad_scaling and self._scale
        for walk in reversed(walks):
            entry = walk.tape[0]
            if entry.residual is None and (d_res is None or walk.residual == 0):
                # what walk_backward does for one layer that added no residual (a residual
                # that only passes through keeps its gradient): no per-call gradient list,
                # no slot.grads swap (bit-identical, tests/tween/test_step_fast.py)
                slot = entry.slot
                g, fresh = slot.module.backward(slot.spec, slot.params, entry.cache, g)
                add_grads(slot, scale(slot, fresh) if scale else fresh)
            else:
                g, d_res = _backward_walk(walk, g, d_res, scale)
            d_res = None if self.loom_residuals else d_res
        return g, d_res

    def _scale(self, slot, grads: dict) -> dict:
        """scale_layer_grads(slot.module, slot.spec, grads), its packing worked out once per
        layer and gradient shapes: when each LOOM group is one whole array (Dense: kernel,
        biases) of one shared dtype, each array is scaled on its own, without concatenating."""
        if not grads:
            return {}
        key = (slot.module, slot.spec, tuple((k, np.shape(v)) for k, v in grads.items()))
        try:
            plan = self._plans.get(key)
        except TypeError:  # a spec that cannot be hashed: work the packing out every call
            key, plan = None, None
        if plan is None:
            plan = _whole_array_plan(slot, grads)
            if key is not None:
                self._plans[key] = plan
        if plan is False or len({v.dtype for v in grads.values()}) > 1:
            return scale_layer_grads(slot.module, slot.spec, grads)
        return {k: _softmax_scale(np.ravel(v)).reshape(v.shape) if k in plan else v.copy()
                for k, v in grads.items()}

    def apply_gradients(self, lr: float) -> None:
        """LOOM's ApplyGradients without an optimizer: p -= lr * g on every parameter of
        this state's layers (LOOM: only Dense/Conv2D kernels and biases), then zero their
        gradients."""
        for slot in self._slots:
            for name, g in slot.grads.items():
                p = slot.params[name]
                p -= p.dtype.type(lr) * g
            slot.grads = {}


def _whole_array_plan(slot, grads: dict):
    """The names whose arrays are each exactly one LOOM gradient group, or False when the
    groups cut or join arrays (scale_layer_grads then scales the concatenation)."""
    shapes = {k: np.shape(v) for k, v in grads.items()}
    spans, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        spans[(offset, size)], offset = name, offset + size
    names = set()
    for group in loom_groups(slot.module, slot.spec, shapes):
        if not group.size:
            continue
        name = spans.get((int(group[0]), group.size))
        if name is None or name in names or not np.array_equal(
                group, np.arange(group[0], group[0] + group.size)):
            return False
        names.add(name)
    return frozenset(names)


def _softmax_scale(g: np.ndarray) -> np.ndarray:
    """step_grad.softmax_scale with the same float64 operations in the same order, written
    into one scratch array (bit-identical, tests/tween/test_step_fast.py)."""
    if not g.size:
        return softmax_scale(g)
    g64 = g.astype(np.float64)
    e = np.abs(g64)
    np.subtract(e, e.max(), out=e)
    np.exp(e, out=e)
    total = e.sum()
    np.multiply(e, e.size, out=e)
    np.divide(e, total, out=e)
    np.multiply(g64, e, out=e)
    return e.astype(g.dtype)


def _backward_walk(walk, g, d_res, scale):
    """walk_backward on one layer's walk; with `scale`, scale this call's gradients."""
    slot = walk.tape[0].slot
    if not scale:
        return walk_backward(walk, g, d_res)
    kept, slot.grads = slot.grads, {}
    dx, d_res = walk_backward(walk, g, d_res)
    fresh, slot.grads = scale(slot, slot.grads), kept
    add_grads(slot, fresh)
    return dx, d_res


class TargetDelay:
    """LOOM's target-delay queue (Test 16 Step+BP): push the current target; once `length`
    targets are queued, each push returns the oldest (a lag of length - 1 pushes).

    Use length = L so the target lines up with the step output it belongs to.
    """

    def __init__(self, length: int):
        self.length = positive_int(length, "TargetDelay", "length")
        self._queue: deque = deque()

    def push(self, target) -> np.ndarray | None:
        """Queue a copy of `target`; return the delayed target, or None while filling."""
        self._queue.append(np.array(target, copy=True))
        if len(self._queue) >= self.length:
            return self._queue.popleft()
        return None

    def __len__(self) -> int:
        return len(self._queue)
