"""Helpers every layer module shares: spec validation, initializers, deferred-gradient
plumbing."""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np

from ..errors import ConfigError, ShapeError


def positive_int(value, where: str, name: str, minimum: int = 1) -> int:
    """Return `value` as an int >= minimum or raise ConfigError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{where}: {name} must be an integer (got {value!r}); "
                              f"pass a whole number >= {minimum}")
    if value < minimum:
        raise ConfigError(f"{where}: {name} must be >= {minimum} (got {value}); "
                          f"pass a larger {name}")
    return int(value)


def expect_features(where: str, got: int, want: int, what: str = "input features") -> None:
    """Raise ShapeError when a per-sample size does not match the layer's."""
    if got != want:
        raise ShapeError(f"{where}: {what} per sample is {got}, the layer expects {want}; "
                         f"fix the previous layer's output size or this layer's config")


def xavier(rng: np.random.Generator, fan_in: int, fan_out: int, shape) -> np.ndarray:
    """Normal(0, sqrt(2/(fan_in+fan_out))) in float32, LOOM's Xavier."""
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return (rng.standard_normal(shape) * std).astype(np.float32)


def he(rng: np.random.Generator, fan_in: int, shape) -> np.ndarray:
    """Normal(0, sqrt(2/fan_in)) in float32, LOOM's He initializer."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def as_rng(rng) -> np.random.Generator:
    """Accept a Generator, a seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def concat_rows(wcaches: list) -> tuple:
    """Per position of the wcache tuples, the arrays of every micro-batch stacked along
    rows (axis 0), in order; the arrays themselves when there is one micro-batch."""
    if len(wcaches) == 1:
        return tuple(wcaches[0])
    return tuple(np.concatenate(parts) for parts in zip(*wcaches))


def sum_in_order(arrays) -> np.ndarray:
    """((a0 + a1) + a2) + ...: a new array, the sum per-micro-batch accumulation gives."""
    arrays = list(arrays)
    total = arrays[0].copy()
    for a in arrays[1:]:
        total += a
    return total


# LOOM's ForwardCPU hands every layer the whole flat buffer. Dense, Conv2D, the norms, RNN
# and LSTM cut it into batch_size samples, but MHA and Softmax do not: MHA reads
# len(input) / d_model positions as one sequence and Softmax normalises the whole buffer.
# Network.forward on LOOM's flat layout turns this on, so those two kinds see (1, B*F);
# batched arrays, training and pipelines keep one sample per row.
_WHOLE_BUFFER = contextvars.ContextVar("loomdist_whole_buffer", default=False)


@contextlib.contextmanager
def whole_buffer(on: bool = True):
    """Within this block, layers that ignore LOOM's batch (see buffer_rows) see one sample."""
    token = _WHOLE_BUFFER.set(bool(on))
    try:
        yield
    finally:
        _WHOLE_BUFFER.reset(token)


def buffer_rows(x) -> int:
    """How many samples a batch-blind layer (MHA, Softmax) cuts x (batch, features) into:
    1 inside whole_buffer() (LOOM's ForwardCPU on a flat buffer), else its batch."""
    return 1 if _WHOLE_BUFFER.get() else x.shape[0]
