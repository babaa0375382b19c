"""RMSNorm: x / sqrt(mean(x^2) + eps) * gamma over every row of `norm_size` features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from ..kernels.cpu import norm as kn
from .layer_norm import NormSpec

TYPE = "rms_norm"
WEIGHT_KEYS = ("gamma",)  # order inside LOOM's weight payload
RESIDUAL = "store_input"  # LOOM stores this layer's input as the residual
LOOM_TYPE_ID = 8  # LOOM's LayerType enum value (events' LayerType)
STATS_NAME = "rmsnorm"  # LOOM's layerTypeString (events' Stats.LayerType)
DEFAULT_EPSILON = 1e-6  # LOOM's epsilon when the stored one is 0


@dataclass(frozen=True)
class Spec(NormSpec):
    """RMSNorm over rows of `norm_size` (LOOM: len/N rows regardless of batch); no activation.

    epsilon: as stored in the model file; 0 means LOOM's default 1e-6 (see `eps`).
    activation: kept for LOOM's config only.
    """

    epsilon: float = DEFAULT_EPSILON
    kind = TYPE
    default_epsilon = DEFAULT_EPSILON

    def out_features(self, in_features: int, where: str = "rms_norm") -> int:
        if in_features % self.norm_size:
            raise ShapeError(f"{where}: input features per sample is {in_features}, not a "
                             f"multiple of norm_size {self.norm_size}; fix the previous "
                             f"layer's output size or this layer's norm_size")
        return in_features


def telemetry(spec: Spec) -> dict:
    """LOOM's blueprint facts (ExtractNetworkBlueprint): parameter count and shapes."""
    n = spec.norm_size
    return {"parameters": n, "input_shape": [n], "output_shape": [n]}


def param_shapes(spec: Spec) -> dict:
    return {"gamma": (spec.norm_size,)}


def init(spec: Spec, rng: np.random.Generator) -> dict:
    """LOOM's init: gamma ones (rng unused)."""
    return {"gamma": np.ones(spec.norm_size, np.float32)}


def forward(spec: Spec, params: dict, x: np.ndarray):
    """x: (batch, k*norm_size) -> y of the same shape, normalised per norm_size row."""
    y, rstd = kn.rms_norm_forward(x, params["gamma"], spec.eps)
    return y.reshape(x.shape), (np.ascontiguousarray(x).reshape(-1, spec.norm_size), rstd)


def backward(spec: Spec, params: dict, cache, dy: np.ndarray):
    """dy: (batch, k*norm_size) -> dx, grads {gamma} (true gradients)."""
    x, rstd = cache
    dx, dgamma = kn.rms_norm_backward(x, params["gamma"], rstd, dy)
    return dx.reshape(dy.shape), {"gamma": dgamma}


def to_config(spec: Spec, branch: bool = False) -> dict:
    return {"type": TYPE, "activation": spec.activation, "norm_size": spec.norm_size,
            "epsilon": float(spec.epsilon)}


def from_config(cfg: dict) -> Spec:
    return Spec(cfg["norm_size"], cfg.get("epsilon", 0.0), cfg.get("activation", "relu"))


def loom_gradients(spec: Spec, grads: dict):
    """(gamma grad, None): LOOM computes none, so this is loomdist's true gradient."""
    return grads["gamma"].ravel(), None


def init_rms_norm_layer(norm_size: int, epsilon: float = DEFAULT_EPSILON) -> Spec:
    """RMSNorm over rows of `norm_size` features (LOOM's InitRMSNormLayer)."""
    return Spec(norm_size, epsilon)


INIT_FUNCTIONS = {"InitRMSNormLayer": init_rms_norm_layer}
