"""Dense (fully connected) layer: y = act(x @ K + b), LOOM's input-major kernel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import check_activation
from ..kernels.cpu import elementwise as ew
from ._common import concat_rows, expect_features, positive_int, sum_in_order

TYPE = "dense"
WEIGHT_KEYS = ("biases", "kernel")  # order inside LOOM's weight payload
RESIDUAL = None
LOOM_TYPE_ID = 0  # LOOM's LayerType enum value (events' LayerType)
STATS_NAME = "dense"  # LOOM's layerTypeString (events' Stats.LayerType)


@dataclass(frozen=True)
class Spec:
    """Dense layer: `input_height` -> `output_height` features per sample."""

    input_height: int
    output_height: int
    activation: str = "relu"
    kind = TYPE

    def __post_init__(self):
        where = f"dense({self.input_height}->{self.output_height})"
        object.__setattr__(self, "input_height",
                           positive_int(self.input_height, where, "input_height"))
        object.__setattr__(self, "output_height",
                           positive_int(self.output_height, where, "output_height"))
        object.__setattr__(self, "activation", check_activation(self.activation, where))

    def out_features(self, in_features: int, where: str = "dense") -> int:
        expect_features(where, in_features, self.input_height)
        return self.output_height


def in_features(spec: Spec) -> int:
    """Per-sample input size this layer needs."""
    return spec.input_height


def telemetry(spec: Spec) -> dict:
    """LOOM's blueprint facts (ExtractNetworkBlueprint): parameter count and shapes."""
    n_in, n_out = spec.input_height, spec.output_height
    return {"parameters": n_in * n_out + n_out, "input_shape": [n_in], "output_shape": [n_out]}


def param_shapes(spec: Spec) -> dict:
    return {"kernel": (spec.input_height, spec.output_height), "biases": (spec.output_height,)}


def init(spec: Spec, rng: np.random.Generator) -> dict:
    """LOOM's InitDenseLayer: kernel ~ N(0, sqrt(2/in)), biases 0."""
    from ._common import he
    return {"kernel": he(rng, spec.input_height, param_shapes(spec)["kernel"]),
            "biases": np.zeros(spec.output_height, np.float32)}


def forward(spec: Spec, params: dict, x: np.ndarray):
    """x: (batch, in) -> y: (batch, out)."""
    z = x @ params["kernel"]  # (batch, out)
    y = ew.bias_act_forward(z, params["biases"], spec.activation)  # z gets the bias in place
    return y, (x, z, y)


def backward(spec: Spec, params: dict, cache, dy: np.ndarray):
    """dy: (batch, out) -> dx: (batch, in), grads {kernel, biases}."""
    dx, wcache = backward_input(spec, params, cache, dy)
    return dx, weight_grads(spec, params, [wcache])


def backward_input(spec: Spec, params: dict, cache, dy: np.ndarray, need_dx: bool = True):
    """backward's dx alone; the weight gradients wait for weight_grads (pipeline stages
    defer them to one GEMM per mini-batch).

    Returns dx (batch, in), or None with need_dx=False (nothing reads it: the GEMM is
    skipped), and wcache (x (batch, in), dz (batch, out), db (out,))."""
    x, z, y = cache
    dz, db = ew.act_backward_bias(z, y, dy, spec.activation)
    return (dz @ params["kernel"].T if need_dx else None), (x, dz, db)


def weight_grads(spec: Spec, params: dict, wcaches: list) -> dict:
    """{kernel, biases} summed over the micro-batches whose wcaches backward_input returned
    (in order): one (in, rows) @ (rows, out) GEMM over all their rows."""
    x, dz = concat_rows([w[:2] for w in wcaches])
    return {"kernel": x.T @ dz, "biases": sum_in_order(w[2] for w in wcaches)}


def to_config(spec: Spec, branch: bool = False) -> dict:
    cfg = {"type": TYPE, "activation": spec.activation}
    if not branch:
        cfg.update(width=1, height=1)
    cfg.update(input_height=spec.input_height, output_height=spec.output_height)
    return cfg


def from_config(cfg: dict) -> Spec:
    return Spec(cfg["input_height"], cfg["output_height"], cfg["activation"])


def loom_gradients(spec: Spec, grads: dict):
    """LOOM's (KernelGradients, BiasGradients) entries for this layer, flat."""
    return grads["kernel"].ravel(), grads["biases"].ravel()


def init_dense_layer(input_size: int, output_size: int, activation: str | int = "relu") -> Spec:
    """LOOM's InitDenseLayer(inputSize, outputSize, activation)."""
    return Spec(input_size, output_size, activation)


INIT_FUNCTIONS = {"InitDenseLayer": init_dense_layer}
