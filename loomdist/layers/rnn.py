"""Elman RNN layer (LOOM's `rnn`): h_t = tanh(x_t W_ih^T + h_{t-1} W_hh^T + b), true BPTT."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import check_activation
from ..errors import ShapeError
from ..kernels.cpu import recurrent as kr
from ._common import expect_features, positive_int, xavier

TYPE = "rnn"
WEIGHT_KEYS = ("weight_ih", "weight_hh", "bias_h")  # order inside LOOM's weight payload
RESIDUAL = None
LOOM_TYPE_ID = 3  # LOOM's LayerType enum value (events' LayerType)
STATS_NAME = "rnn"  # LOOM's layerTypeString (events' Stats.LayerType)


def check_sizes(spec, where: str) -> None:
    """Validate and normalise input_size, hidden_size, seq_length and activation of `spec`."""
    for name, minimum in (("input_size", 1), ("hidden_size", 1), ("seq_length", 0)):
        object.__setattr__(spec, name, positive_int(getattr(spec, name), where, name, minimum))
    object.__setattr__(spec, "activation", check_activation(spec.activation, where))


def sequence_length(spec, in_features: int, where: str) -> int:
    """Time steps per sample: in_features / input_size (= seq_length when that is set).

    Raises:
        ShapeError: in_features is not seq_length * input_size, or (seq_length 0) not a
            positive multiple of input_size.
    """
    if spec.seq_length > 0:
        expect_features(where, in_features, spec.seq_length * spec.input_size)
    elif in_features <= 0 or in_features % spec.input_size:
        raise ShapeError(f"{where}: input features per sample is {in_features}, not a positive "
                         f"multiple of input_size {spec.input_size}; fix the previous layer's "
                         f"output size or this layer's input_size")
    return in_features // spec.input_size


@dataclass(frozen=True)
class Spec:
    """RNN over per-sample sequences [seq][input_size] -> all hidden states [seq][hidden_size].

    seq_length 0 infers the length from the input; activation is kept for LOOM's config only
    (the cell is always tanh).
    """

    input_size: int
    hidden_size: int
    seq_length: int = 0  # 0 = infer from the input features
    activation: str = "tanh"  # LOOM writes it but the cell is always tanh
    kind = TYPE

    def __post_init__(self):
        check_sizes(self, f"rnn({self.input_size}->{self.hidden_size})")

    def out_features(self, in_features: int, where: str = "rnn") -> int:
        return sequence_length(self, in_features, where) * self.hidden_size


def in_features(spec: Spec) -> int | None:
    """Per-sample input size when seq_length is set (None: any whole number of steps)."""
    return spec.seq_length * spec.input_size or None


def telemetry(spec: Spec) -> dict:
    """LOOM's blueprint facts (ExtractNetworkBlueprint): parameter count and shapes."""
    i, h = spec.input_size, spec.hidden_size
    return {"parameters": i * h + h * h + h, "input_shape": [spec.seq_length, i],
            "output_shape": [spec.seq_length, h]}


def param_shapes(spec: Spec) -> dict:
    i, h = spec.input_size, spec.hidden_size
    return {"weight_ih": (h, i), "weight_hh": (h, h), "bias_h": (h,)}


def init(spec: Spec, rng: np.random.Generator) -> dict:
    """LOOM's InitRNNLayer: Xavier N(0, sqrt(2/(fan_in+fan_out))) on both matrices, bias 0."""
    i, h = spec.input_size, spec.hidden_size
    return {"weight_ih": xavier(rng, i, h, (h, i)), "weight_hh": xavier(rng, h, h, (h, h)),
            "bias_h": np.zeros(h, np.float32)}


def _p(params: dict, key: str, dtype) -> np.ndarray:
    return np.ascontiguousarray(params[key], dtype=dtype)


def forward(spec: Spec, params: dict, x: np.ndarray):
    """x: (batch, seq*input_size) -> y: (batch, seq*hidden_size), every h_t, h_0 = 0."""
    t = x.dtype
    nb, seq = x.shape[0], sequence_length(spec, x.shape[1], "rnn forward")
    x3 = np.ascontiguousarray(x).reshape(nb, seq, spec.input_size)  # (batch, seq, in)
    w_ih, w_hh, b = (_p(params, k, t) for k in WEIGHT_KEYS)
    y = kr.rnn_forward(x3, w_ih, w_hh, b)  # (batch, seq, H)
    return y.reshape(nb, -1), (x3, y, w_ih, w_hh)


def backward(spec: Spec, params: dict, cache, dy: np.ndarray):
    """dy: (batch, seq*hidden_size) -> dx (batch, seq*input_size), grads (true BPTT)."""
    x3, y, w_ih, w_hh = cache
    dy3 = np.ascontiguousarray(dy, dtype=y.dtype).reshape(y.shape)
    dx, dw_ih, dw_hh, db = kr.rnn_backward(x3, y, w_ih, w_hh, dy3)
    return dx.reshape(x3.shape[0], -1), {"weight_ih": dw_ih, "weight_hh": dw_hh, "bias_h": db}


def to_config(spec: Spec, branch: bool = False) -> dict:
    return {"type": TYPE, "activation": spec.activation, "input_size": spec.input_size,
            "seq_length": spec.seq_length, "hidden_size": spec.hidden_size}


def from_config(cfg: dict) -> Spec:
    return Spec(cfg["input_size"], cfg["hidden_size"], cfg.get("seq_length", 0),
                cfg.get("activation", "tanh"))


def loom_gradients(spec: Spec, grads: dict):
    """(concat(dW_ih, dW_hh, db) flat, None): LOOM keeps no separate RNN bias gradients."""
    return np.concatenate([grads[k].ravel() for k in WEIGHT_KEYS]), None


def init_rnn_layer(input_size: int, hidden_size: int, batch_size: int,
                   seq_length: int) -> Spec:
    """LOOM's InitRNNLayer(inputSize, hiddenSize, batchSize, seqLength).

    batch_size is accepted for LOOM compatibility and not stored (it comes from the input).
    """
    return Spec(input_size, hidden_size, seq_length)


INIT_FUNCTIONS = {"InitRNNLayer": init_rnn_layer}
