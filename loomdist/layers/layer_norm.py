"""LayerNorm: per-sample (x - mean) / sqrt(var + eps) * gamma + beta, LOOM's layout."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..activations import check_activation
from ..errors import ConfigError
from ..kernels.cpu import norm as kn
from ._common import expect_features, positive_int

TYPE = "layer_norm"
WEIGHT_KEYS = ("gamma", "beta")  # order inside LOOM's weight payload
RESIDUAL = "pre_add"  # LOOM adds the stored residual to the input, then stores the output
LOOM_TYPE_ID = 6  # LOOM's LayerType enum value (events' LayerType)
STATS_NAME = "layernorm"  # LOOM's layerTypeString (events' Stats.LayerType)
DEFAULT_EPSILON = 1e-5  # LOOM's epsilon when the stored one is 0


def check_epsilon(value, where: str) -> float:
    """Return `value` as a finite float >= 0 or raise ConfigError (shared with rms_norm)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{where}: epsilon must be a number (got {value!r}); "
                          f"pass a small positive float such as 1e-5, or 0 for LOOM's default")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where}: epsilon must be a finite number >= 0 (got {value!r}); "
                          f"pass a small positive float such as 1e-5, or 0 for LOOM's default")
    return float(value)


@dataclass(frozen=True)
class NormSpec:
    """Fields and checks both norm layers share; a subclass sets `kind` and
    `default_epsilon` (LOOM's epsilon when the stored one is 0)."""

    norm_size: int
    epsilon: float = DEFAULT_EPSILON
    activation: str = "relu"
    default_epsilon = DEFAULT_EPSILON

    def __post_init__(self):
        where = f"{self.kind}({self.norm_size})"
        object.__setattr__(self, "norm_size", positive_int(self.norm_size, where, "norm_size"))
        object.__setattr__(self, "epsilon", check_epsilon(self.epsilon, where))
        object.__setattr__(self, "activation", check_activation(self.activation, where))

    @property
    def eps(self) -> float:
        """The epsilon the math uses."""
        return self.epsilon or self.default_epsilon


@dataclass(frozen=True)
class Spec(NormSpec):
    """LayerNorm over `norm_size` features per sample; no activation is applied.

    epsilon: as stored in the model file; 0 means LOOM's default 1e-5 (see `eps`).
    activation: kept for LOOM's config only.
    """

    kind = TYPE

    def out_features(self, in_features: int, where: str = "layer_norm") -> int:
        expect_features(where, in_features, self.norm_size)
        return self.norm_size


def in_features(spec: Spec) -> int:
    """Per-sample input size this layer needs."""
    return spec.norm_size


def telemetry(spec: Spec) -> dict:
    """LOOM's blueprint facts (ExtractNetworkBlueprint): parameter count and shapes."""
    n = spec.norm_size
    return {"parameters": 2 * n, "input_shape": [n], "output_shape": [n]}


def param_shapes(spec: Spec) -> dict:
    return {"gamma": (spec.norm_size,), "beta": (spec.norm_size,)}


def init(spec: Spec, rng: np.random.Generator) -> dict:
    """LOOM's init: gamma ones, beta zeros (rng unused)."""
    return {"gamma": np.ones(spec.norm_size, np.float32),
            "beta": np.zeros(spec.norm_size, np.float32)}


def forward(spec: Spec, params: dict, x: np.ndarray):
    """x: (batch, norm_size) -> y: (batch, norm_size)."""
    y, mean, rstd = kn.layer_norm_forward(x, params["gamma"], params["beta"], spec.eps)
    return y.reshape(x.shape), (np.ascontiguousarray(x).reshape(-1, spec.norm_size), mean, rstd)


def backward(spec: Spec, params: dict, cache, dy: np.ndarray):
    """dy: (batch, norm_size) -> dx, grads {gamma, beta} (true gradients; LOOM's are identity)."""
    x, mean, rstd = cache
    dx, dgamma, dbeta = kn.layer_norm_backward(x, params["gamma"], mean, rstd, dy)
    return dx.reshape(dy.shape), {"gamma": dgamma, "beta": dbeta}


def to_config(spec: Spec, branch: bool = False) -> dict:
    return {"type": TYPE, "activation": spec.activation, "norm_size": spec.norm_size,
            "epsilon": float(spec.epsilon)}


def from_config(cfg: dict) -> Spec:
    return Spec(cfg["norm_size"], cfg.get("epsilon", 0.0), cfg.get("activation", "relu"))


def loom_gradients(spec: Spec, grads: dict):
    """(gamma grad, beta grad): LOOM computes none, so these are loomdist's true gradients."""
    return grads["gamma"].ravel(), grads["beta"].ravel()


def init_layer_norm_layer(norm_size: int, epsilon: float = DEFAULT_EPSILON) -> Spec:
    """LayerNorm over `norm_size` features per sample (LOOM's InitLayerNormLayer)."""
    return Spec(norm_size, epsilon)


INIT_FUNCTIONS = {"InitLayerNormLayer": init_layer_norm_layer}
