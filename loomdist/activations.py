"""LOOM's six element-wise activations, their JSON names and derivatives."""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

# LOOM ActivationType ids; the JSON string of each (LOOM writes "linear" for 5).
ACTIVATIONS = {
    "relu": 0,        # ScaledReLU: max(0, 1.1 v)
    "sigmoid": 1,
    "tanh": 2,
    "softplus": 3,
    "leaky_relu": 4,  # v if v >= 0 else 0.1 v
    "linear": 5,      # identity
}
ALIASES = {"scaled_relu": "relu", "leakyrelu": "leaky_relu", "identity": "linear"}
NAMES = {v: k for k, v in ACTIVATIONS.items()}


def check_activation(name, where: str) -> str:
    """Return the canonical activation name, accepting LOOM ids and aliases.

    Raises:
        ConfigError: unknown name or id.
    """
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        if int(name) in NAMES:
            return NAMES[int(name)]
    elif isinstance(name, str):
        key = ALIASES.get(name.lower(), name.lower())
        if key in ACTIVATIONS:
            return key
    raise ConfigError(
        f"{where}: unknown activation {name!r}; use one of {sorted(ACTIVATIONS)} "
        f"or a LOOM id 0-5")


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """Apply activation `name` to pre-activation `z` (any shape); returns a new array."""
    if name == "relu":
        return np.maximum(z * z.dtype.type(1.1), 0)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "softplus":
        return np.logaddexp(z, 0).astype(z.dtype, copy=False)
    if name == "leaky_relu":
        return np.where(z >= 0, z, z * z.dtype.type(0.1))
    return z.copy()


def activate_backward(name: str, z: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Gradient w.r.t. the pre-activation z, given y = activate(z) and upstream dy."""
    t = z.dtype.type
    if name == "relu":
        return np.where(z > 0, dy * t(1.1), t(0))
    if name == "sigmoid":
        return dy * y * (t(1) - y)
    if name == "tanh":
        return dy * (t(1) - y * y)
    if name == "softplus":
        return dy * _sigmoid(z)
    if name == "leaky_relu":
        return np.where(z >= 0, dy, dy * t(0.1))
    return dy.copy()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Two-sided form: exp never overflows, matches 1/(1+e^-z) everywhere.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)
