"""The grid: placement of layers in rows x cols x layers-per-cell, forward/backward in grid order.

Layer index i = row*cols*lpc + col*lpc + layer (LOOM). Forward runs in index order, backward in
reverse. LOOM's implicit residual bookkeeping (a layer module's `RESIDUAL`, carried out by
engine.py's walks):

    "store_input"  (rms_norm):      residual := layer input
    "post_add"     (mha, swiglu):   y += residual (same shape); residual := y
    "pre_add"      (layer_norm):    x += residual (same shape); y = f(x); residual := y
                                    (only when a residual exists: a LayerNorm never starts one)

Backward differentiates through those adds, so every residual path gets its true gradient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, ShapeError
from .introspect import Introspectable
from .layers import module_of
from .layers._common import as_rng, positive_int, whole_buffer
from .network_optim import OptimizerAPI


@dataclass
class Layer:
    """One grid slot: spec, float32 parameters and their accumulated gradients."""

    spec: object
    params: dict
    grads: dict = field(default_factory=dict)

    @property
    def module(self):
        return module_of(self.spec)


class Network(Introspectable, OptimizerAPI):
    """A LOOM grid network.

    Args:
        input_size: floats in one flat LOOM input (batch_size x per-sample features), as LOOM's
            NewNetwork; 0 or None means "infer from the first layer / the input".
        grid_rows, grid_cols, layers_per_cell: the grid; L = rows*cols*lpc layers.
        batch_size: samples in one flat input (LOOM's BatchSize).
        backend: "cpu", or "wgpu" (alias "gpu"): weights live on the GPU, every pass records
            into one command encoder (see kernels/gpu/runner.py; `to` moves between them).
    """

    def __init__(self, input_size, grid_rows: int, grid_cols: int, layers_per_cell: int,
                 batch_size: int = 1, backend: str = "cpu"):
        self.grid_rows = positive_int(grid_rows, "Network", "grid_rows")
        self.grid_cols = positive_int(grid_cols, "Network", "grid_cols")
        self.layers_per_cell = positive_int(layers_per_cell, "Network", "layers_per_cell")
        self.batch_size = positive_int(batch_size, "Network", "batch_size")
        self.input_size = 0 if not input_size else positive_int(input_size, "Network",
                                                                 "input_size")
        self.layers: list[Layer | None] = [None] * self.total_layers
        self._tape = None
        self._activations: list[np.ndarray] = []
        self._observers: list = []  # (observer, layer indices or None, model_id)
        self.backend, self.runner = "cpu", None  # runner: the GpuRunner on "wgpu"
        self.to(backend)

    def to(self, backend: str) -> Network:
        """Move to "cpu" or "wgpu"/"gpu" (weights upload once and stay there); returns self.

        Raises:
            ConfigError: unknown backend, or no wgpu adapter.
            UnsupportedLayerError: a layer kind has no GPU module (names kind and backend).
        """
        name = {"gpu": "wgpu"}.get(backend, backend)
        if name not in ("cpu", "wgpu"):
            raise ConfigError(f"Network.to: unknown backend {backend!r}; use 'cpu' or 'gpu'")
        if name == "wgpu" and self.runner is None:
            from .kernels.gpu import gpu_runner
            self.runner = gpu_runner(self)
        elif name == "cpu" and self.runner is not None:
            self.runner.release()
            self.runner = None
        self.backend = name
        return self

    # ------------------------------------------------------------------ grid
    @property
    def total_layers(self) -> int:
        return self.grid_rows * self.grid_cols * self.layers_per_cell

    def index(self, row: int, col: int, layer: int) -> int:
        """Flat grid index of (row, col, layer); raises ConfigError when outside the grid."""
        for name, v, n in (("row", row, self.grid_rows), ("col", col, self.grid_cols),
                           ("layer", layer, self.layers_per_cell)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < n:
                raise ConfigError(f"Network: {name} {v!r} is outside the grid "
                                  f"({self.grid_rows}x{self.grid_cols}x{self.layers_per_cell}); "
                                  f"use 0 <= {name} < {n}")
        return (row * self.grid_cols + col) * self.layers_per_cell + layer

    def coords(self, i: int) -> tuple[int, int, int]:
        """(row, col, layer) of flat index i."""
        cell, layer = divmod(i, self.layers_per_cell)
        return (*divmod(cell, self.grid_cols), layer)

    def set_layer(self, row: int, col: int, layer: int, spec, params: dict | None = None,
                  rng=None) -> None:
        """Place `spec` at (row, col, layer) with `params` or freshly initialised ones.

        `rng` is a numpy Generator or seed for the initializer. Raises ConfigError for bad
        coordinates or parameter shapes.
        """
        i = self.index(row, col, layer)
        module = module_of(spec)
        if params is None:
            params = module.init(spec, as_rng(rng))
        slot = Layer(spec, _check_params(module, spec, params, (row, col, layer)))
        self.layers[i] = slot if self.runner is None else self.runner.place(i, slot)

    def get_layer(self, row: int, col: int, layer: int):
        """The spec at (row, col, layer), or None when the slot is empty."""
        slot = self.layers[self.index(row, col, layer)]
        return None if slot is None else slot.spec

    # ------------------------------------------------------------ parameters
    def parameters(self):
        """Yield ((row, col, layer, name), array) for every parameter, in grid order."""
        for i, slot in enumerate(self.layers):
            if slot is not None:
                for name, arr in slot.params.items():
                    yield (*self.coords(i), name), arr

    def gradients(self):
        """Yield ((row, col, layer, name), gradient) for every accumulated gradient."""
        for i, slot in enumerate(self.layers):
            if slot is not None:
                for name, arr in slot.grads.items():
                    yield (*self.coords(i), name), arr

    def param(self, key) -> np.ndarray:
        """The parameter array at (row, col, layer, name) (a live view: edits change weights)."""
        return self._slot(key[:3]).params[self._name(key)]

    def grad(self, key) -> np.ndarray:
        """The accumulated gradient at (row, col, layer, name); zeros before any backward."""
        slot = self._slot(key[:3])
        name = self._name(key)
        return slot.grads.get(name, np.zeros_like(slot.params[name]))

    def zero_grad(self) -> None:
        """Drop every accumulated gradient (backward accumulates, as LOOM does per call)."""
        for slot in self.layers:
            if slot is not None:
                slot.grads = {}

    def num_parameters(self) -> int:
        return sum(a.size for _, a in self.parameters())

    def astype(self, dtype) -> Network:
        """Cast every parameter (in place) to `dtype`; float64 is used by gradient checks."""
        for slot in self.layers:
            if slot is not None:
                slot.params = {k: v.astype(dtype) for k, v in slot.params.items()}
                slot.grads = {}
        self._dtype = np.dtype(dtype)  # for networks without parameters (softmax alone)
        return self

    @property
    def dtype(self):
        if self.runner is not None:
            return np.dtype(np.float32)
        for _, arr in self.parameters():
            return arr.dtype
        return getattr(self, "_dtype", np.dtype(np.float32))

    def _slot(self, rcl) -> Layer:
        slot = self.layers[self.index(*rcl)]
        if slot is None:
            raise ConfigError(f"Network: layer {tuple(rcl)} is not set; call set_layer first")
        return slot

    def _name(self, key) -> str:
        slot = self._slot(key[:3])
        if len(key) != 4 or key[3] not in slot.params:
            raise KeyError(f"Network: no parameter {key!r}; layer {tuple(key[:3])} has "
                           f"{sorted(slot.params)}")
        return key[3]

    # --------------------------------------------------------------- passes
    def forward(self, x) -> np.ndarray:
        """Run every layer in grid order.

        Args:
            x: LOOM's flat layout, 1-D of length batch_size * features, or a batched array
               (batch, features) of any batch. The flat layout runs as LOOM's ForwardCPU:
               MHA and Softmax layers see the whole buffer as one sample (one sequence, one
               distribution), the other kinds batch_size samples. A batched array is one
               sample per row for every kind (training, evaluation and pipelines use that).
               The two agree at batch_size 1 (docs/differences.md, "MHA batch").
        Returns:
            The output in the same form as `x` (flat, or (batch, out_features)).
        Raises:
            ShapeError: the input length does not fit the first layer or the batch size.
        """
        from .engine import walk_forward
        flat = np.ndim(x) == 1
        batch = self.as_batch(x)
        # LOOM's flat buffer: MHA and Softmax see it whole (layers._common.whole_buffer)
        with whole_buffer(flat and batch.shape[0] > 1):
            if self.runner is not None:
                y = self.runner.forward(batch)
            else:
                walk = walk_forward(self.layers, batch, where=self._where)
        if self.runner is not None:
            if self._observers:  # one extra readback, only when someone listens
                from .tween.events import fire_forward
                fire_forward(self, self.runner.activations()[1:])
            return y.reshape(-1) if flat else y
        self._tape, self._activations = walk, walk.tensors[1:]
        if self._observers:
            from .tween.events import fire_forward
            fire_forward(self, walk.tensors[2:])
        y = walk.output
        return y.reshape(-1) if flat else y

    def _where(self, i: int, slot) -> str:
        kind = "empty" if slot is None else slot.spec.kind
        return f"layer {self.coords(i)} ({kind})"

    def backward(self, dy, skip_last: bool = False,
                 input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate dL/d(output) from the last forward; accumulates weight gradients.

        `dy` has the output's form (flat or batched). Returns dL/d(input) in that form.
        skip_last: `dy` is the gradient w.r.t. the last layer's *input* (its logits, for a
        loss fused with a final softmax); the last layer is skipped.
        input_grad=False: the caller drops dL/d(input) (a training step); the first layer
        skips computing it where its module can, and None is returned. While backward
        events are observed the first layer still computes it (its event reports it). The
        wgpu runner ignores input_grad and returns dL/d(input).
        """
        from .engine import walk_backward
        if self.runner is not None:
            dx = self.runner.backward(np.asarray(dy, np.float32), skip_last)
            if self._observers:
                from .tween.events import fire_backward
                for i, layer_dx in self.runner.layer_input_grads():
                    fire_backward(self, i, layer_dx)
            return dx.reshape(-1) if np.ndim(dy) == 1 else dx
        if self._tape is None:
            raise ConfigError("Network.backward: no forward pass recorded; call forward first")
        dy = np.asarray(dy)
        upto = len(self._tape.tape) - 1 if skip_last else None
        out = self._activations[-2 if skip_last else -1]
        if dy.size != out.size:
            raise ShapeError(f"Network.backward: gradient has {dy.size} values, the last "
                             f"output has {out.size}; pass dL/d(output) of the last forward")
        tape = self._tape
        if self._observers:
            from .tween.events import observed_walk
            tape = observed_walk(self, tape)
        dx, _ = walk_backward(tape, dy.reshape(out.shape).astype(out.dtype, copy=False),
                              upto=upto, need_input=input_grad)
        if dx is None:
            return None
        return dx.reshape(-1) if dy.ndim == 1 else dx

    def activations(self) -> list[np.ndarray]:
        """[input, output of layer 0, ...] of the last forward, each flat (LOOM's layout)."""
        if self.runner is not None:
            return [a.reshape(-1) for a in self.runner.activations()]
        return [a.reshape(-1) for a in self._activations]

    def layer_input(self, i: int) -> np.ndarray:
        """The batched input layer i received in the last forward (after residual adds)."""
        if self.runner is not None:
            return self.runner.activations(i)[0]
        return self._activations[i]

    def in_features(self) -> int | None:
        """Per-sample input size the first layer declares (None when it accepts several)."""
        slot = self.layers[0]
        hook = getattr(slot.module, "in_features", None) if slot is not None else None
        return hook(slot.spec) if hook else None

    def out_features(self, in_features: int) -> int:
        """Per-sample output size for `in_features` inputs; ShapeError when they do not fit."""
        n = in_features
        for i, slot in enumerate(self.layers):
            if slot is None:
                raise ConfigError(f"{self._where(i, slot)}: no layer is set here")
            n = slot.spec.out_features(n, self._where(i, slot))
        return n

    def kernel_gradients(self) -> list:
        """LOOM's KernelGradients(): per layer, the flat kernel gradient or None."""
        return [self._loom_grads(i)[0] for i in range(self.total_layers)]

    def bias_gradients(self) -> list:
        """LOOM's BiasGradients(): per layer, the flat bias gradient or None."""
        return [self._loom_grads(i)[1] for i in range(self.total_layers)]

    def _loom_grads(self, i):
        slot = self.layers[i]
        if slot is None or not slot.grads:
            return None, None
        return slot.module.loom_gradients(slot.spec, slot.grads)

    def as_batch(self, x) -> np.ndarray:
        """x as a (batch, features) array of this network's dtype: a 2-D array as it is,
        LOOM's flat layout cut into batch_size samples. ShapeError when it does not fit."""
        arr = np.asarray(x)
        if arr.dtype.kind not in "fiu":
            raise ShapeError(f"Network.forward: input dtype {arr.dtype} is not numeric; "
                             f"pass a float array")
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        if arr.ndim == 2:
            return arr
        if arr.ndim != 1:
            raise ShapeError(f"Network.forward: input has shape {arr.shape}; pass LOOM's flat "
                             f"1-D layout or a (batch, features) array")
        if self.input_size and arr.size != self.input_size:
            raise ShapeError(f"Network.forward: input length {arr.size} != input_size "
                             f"{self.input_size}; pass batch_size*features = {self.input_size}"
                             f" values")
        if arr.size == 0 or arr.size % self.batch_size:
            raise ShapeError(f"Network.forward: input length {arr.size} is not a positive "
                             f"multiple of batch_size {self.batch_size}; pass batch_size*"
                             f"features values")
        return arr.reshape(self.batch_size, -1)

    # ------------------------------------------------------------- training
    def train(self, batches, config=None):
        """LOOM's Train(): `batches` of (flat input, flat target) in order; returns a
        TrainingResult. Every parameter of every layer kind is updated (not only LOOM's)."""
        from .train import train_batches
        return train_batches(self, batches, config)

    def train_with_stepping(self, config, data_loader, total_steps: int):
        """LOOM's TrainWithStepping: one step-mode tick per step, an optimizer update every
        grad_accum_steps steps; `data_loader(step) -> (input, target, ok)`. Returns a
        SteppingResult (see loomdist.tween.stepping)."""
        from .tween.stepping import train_with_stepping
        return train_with_stepping(self, config, data_loader, total_steps)

    def evaluate(self, inputs, expected):
        """LOOM's EvaluateNetwork: DeviationMetrics of per-sample predictions.

        inputs: (n, features) or a list of flat samples; expected: n class indices or scalar
        targets. The prediction is output[0] for one output, else the argmax index.
        """
        from .eval import evaluate_network
        return evaluate_network(self, inputs, expected)

    def evaluate_from_checkpoint_files(self, files, expected):
        """LOOM's EvaluateFromCheckpointFiles: each file a JSON array of one flat input;
        returns (DeviationMetrics, load seconds, forward seconds); unreadable files are
        logged and skipped (see loomdist.eval.checkpoint_files)."""
        from .eval import evaluate_from_checkpoint_files
        return evaluate_from_checkpoint_files(self, files, expected)

    # ------------------------------------------------------------ telemetry
    def blueprint(self, model_id: str = ""):
        """LOOM's ExtractNetworkBlueprint: a tween.blueprint.ModelTelemetry."""
        from .tween.blueprint import blueprint
        return blueprint(self, model_id)

    def attach_observer(self, observer, layers=None, model_id: str = "") -> None:
        """Send LOOM layer events of `layers` (flat indices or (row, col, layer); None = all)
        to `observer` (on_forward / on_backward), tagged with `model_id`."""
        from .tween.observers import attach
        attach(self, observer, layers, model_id)

    def detach_observer(self, observer) -> None:
        """Stop sending events to `observer` (every attachment of it)."""
        self._observers = [w for w in self._observers if w[0] is not observer]

    # ---------------------------------------------------------- model files
    def save_model(self, path, model_id: str) -> None:
        """Write this network as a LOOM JSON bundle (atomically: temp file + rename)."""
        from .io.loom_json import save_bundle
        save_bundle(path, {model_id: self})

    def save_model_to_string(self, model_id: str) -> str:
        """This network as LOOM's bundle text (what LOOM's SaveModelToString returns)."""
        from .io.loom_json import bundle_to_string
        return bundle_to_string({model_id: self})

    def __repr__(self) -> str:
        return (f"Network({self.grid_rows}x{self.grid_cols}x{self.layers_per_cell}, "
                f"batch_size={self.batch_size}, params={self.num_parameters()})")


def _check_params(module, spec, params: dict, where) -> dict:
    shapes = module.param_shapes(spec)
    if set(params) != set(shapes):
        raise ConfigError(f"layer {where} ({spec.kind}): parameters {sorted(params)} do not "
                          f"match {sorted(shapes)}; pass exactly these names")
    out = {}
    for name, shape in shapes.items():
        arr = np.asarray(params[name])
        if arr.size != int(np.prod(shape)):
            raise ConfigError(f"layer {where} ({spec.kind}): {name} has {arr.size} values, "
                              f"expected {int(np.prod(shape))} for shape {shape}")
        out[name] = np.ascontiguousarray(arr, dtype=np.float32).reshape(shape)
    return out
