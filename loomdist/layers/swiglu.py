"""SwiGLU: down(silu(x G + bg) * (x U + bu)) + bd per row of `input_height` features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import check_activation
from ..errors import ShapeError
from ..kernels.cpu import norm as kn
from ._common import concat_rows, positive_int, sum_in_order, xavier

TYPE = "swiglu"
WEIGHT_KEYS = ("gate_weights", "up_weights", "down_weights", "gate_bias", "up_bias",
               "down_bias")  # order inside LOOM's weight payload
RESIDUAL = "post_add"  # LOOM adds the stored residual to the output, then stores it
LOOM_TYPE_ID = 9  # LOOM's LayerType enum value (events' LayerType)
STATS_NAME = "swiglu"  # LOOM's layerTypeString (events' Stats.LayerType)
_MATRICES = ("gate_weights", "up_weights", "down_weights")
_BIASES = ("gate_bias", "up_bias", "down_bias")


@dataclass(frozen=True)
class Spec:
    """SwiGLU MLP: `input_height` (hidden) -> `output_height` (intermediate) -> hidden.

    Rows of `input_height` features (LOOM: len/hidden rows regardless of batch); the output
    has as many features as the input. activation: kept for LOOM's config only.
    """

    input_height: int
    output_height: int
    activation: str = "relu"
    kind = TYPE

    def __post_init__(self):
        where = f"swiglu({self.input_height}->{self.output_height})"
        object.__setattr__(self, "input_height",
                           positive_int(self.input_height, where, "input_height"))
        object.__setattr__(self, "output_height",
                           positive_int(self.output_height, where, "output_height"))
        object.__setattr__(self, "activation", check_activation(self.activation, where))

    def out_features(self, in_features: int, where: str = "swiglu") -> int:
        if in_features % self.input_height:
            raise ShapeError(f"{where}: input features per sample is {in_features}, not a "
                             f"multiple of input_height {self.input_height}; fix the previous "
                             f"layer's output size or this layer's input_height")
        return in_features


def telemetry(spec: Spec) -> dict:
    """LOOM's blueprint facts (ExtractNetworkBlueprint): parameter count and shapes."""
    h, m = spec.input_height, spec.output_height
    return {"parameters": 2 * (h * m + m) + (m * h + h), "input_shape": [h],
            "output_shape": [h]}


def param_shapes(spec: Spec) -> dict:
    h, m = spec.input_height, spec.output_height
    return {"gate_weights": (h, m), "up_weights": (h, m), "down_weights": (m, h),
            "gate_bias": (m,), "up_bias": (m,), "down_bias": (h,)}


def init(spec: Spec, rng: np.random.Generator) -> dict:
    """Xavier N(0, sqrt(2/(hidden+inter))) on gate, up, down (drawn in that order), biases 0."""
    shapes = param_shapes(spec)
    h, m = spec.input_height, spec.output_height
    params = {k: xavier(rng, h, m, shapes[k]) for k in _MATRICES}
    params.update({k: np.zeros(shapes[k], np.float32) for k in _BIASES})
    return params


def _p(params: dict, key: str, dtype) -> np.ndarray:
    return np.asarray(params[key], dtype=dtype)


def forward(spec: Spec, params: dict, x: np.ndarray):
    """x: (batch, k*hidden) -> y of the same shape."""
    t = x.dtype
    x2 = np.ascontiguousarray(x).reshape(-1, spec.input_height)  # (rows, hidden)
    a = x2 @ _p(params, "gate_weights", t)  # (rows, inter)
    u = x2 @ _p(params, "up_weights", t)
    h = kn.glu_forward(a, u, params["gate_bias"], params["up_bias"])  # a, u now hold biases
    y = h @ _p(params, "down_weights", t)  # (rows, hidden)
    y += _p(params, "down_bias", t)
    return y.reshape(x.shape), (x2, a, u, h)


def backward(spec: Spec, params: dict, cache, dy: np.ndarray):
    """dy: (batch, k*hidden) -> dx, grads for all six parameters (true gradients)."""
    dx, wcache = backward_input(spec, params, cache, dy)
    return dx, weight_grads(spec, params, [wcache])


def backward_input(spec: Spec, params: dict, cache, dy: np.ndarray, need_dx: bool = True):
    """backward's dx alone (None with need_dx=False: its two GEMMs are skipped); wcache
    (x2, dgate, dup, h, dy2 (all (rows, .)), dbg, dbu)."""
    x2, a, u, h = cache
    t = x2.dtype
    G, U, D = (_p(params, k, t) for k in _MATRICES)
    dy2 = np.ascontiguousarray(dy, dtype=t).reshape(-1, spec.input_height)
    dgate, dup, dbg, dbu = kn.glu_backward(a, u, dy2 @ D.T)
    wcache = (x2, dgate, dup, h, dy2, dbg, dbu)
    if not need_dx:
        return None, wcache
    dx = dgate @ G.T
    dx += dup @ U.T
    return dx.reshape(dy.shape), wcache


def weight_grads(spec: Spec, params: dict, wcaches: list) -> dict:
    """All six gradients, summed over the micro-batches of `wcaches` (backward_input's, in
    order): one GEMM over all their rows per weight matrix."""
    x2, dgate, dup, h, dy2 = concat_rows([w[:5] for w in wcaches])
    return {"gate_weights": x2.T @ dgate, "up_weights": x2.T @ dup, "down_weights": h.T @ dy2,
            "gate_bias": sum_in_order(w[5] for w in wcaches),
            "up_bias": sum_in_order(w[6] for w in wcaches), "down_bias": dy2.sum(axis=0)}


def to_config(spec: Spec, branch: bool = False) -> dict:
    return {"type": TYPE, "activation": spec.activation, "input_height": spec.input_height,
            "output_height": spec.output_height}


def from_config(cfg: dict) -> Spec:
    return Spec(cfg["input_height"], cfg["output_height"], cfg.get("activation", "relu"))


def loom_gradients(spec: Spec, grads: dict):
    """(concat(dG, dU, dD), concat(dbg, dbu, dbd)): LOOM computes none; true gradients."""
    return (np.concatenate([grads[k].ravel() for k in _MATRICES]),
            np.concatenate([grads[k].ravel() for k in _BIASES]))


def init_swiglu_layer(input_size: int, intermediate_size: int) -> Spec:
    """SwiGLU MLP hidden `input_size` -> `intermediate_size` -> hidden (LOOM's InitSwiGLULayer)."""
    return Spec(input_size, intermediate_size)


INIT_FUNCTIONS = {"InitSwiGLULayer": init_swiglu_layer}
