"""LSTM layer (LOOM's `lstm`): sigmoid i, f, o and tanh g gates, zero initial states, true BPTT."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels.cpu import recurrent as kr
from . import rnn as _rnn
from ._common import xavier
from .rnn import check_sizes, sequence_length

TYPE = "lstm"
GATES = ("i", "f", "g", "o")  # LOOM's gate order (kernel gradients, stacked kernels)
WEIGHT_KEYS = ("weight_ii", "weight_if", "weight_ig", "weight_io", "weight_hi", "weight_hf",
               "weight_hg", "weight_ho", "bias_i", "bias_f", "bias_g", "bias_o")  # payload order
RESIDUAL = None
LOOM_TYPE_ID = 4  # LOOM's LayerType enum value (events' LayerType)
STATS_NAME = "lstm"  # LOOM's layerTypeString (events' Stats.LayerType)
_IH = tuple(f"weight_i{g}" for g in GATES)
_HH = tuple(f"weight_h{g}" for g in GATES)
_B = tuple(f"bias_{g}" for g in GATES)


@dataclass(frozen=True)
class Spec:
    """LSTM over per-sample sequences [seq][input_size] -> all hidden states [seq][hidden_size].

    c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t). seq_length 0 infers the length from the input;
    activation is kept for LOOM's config only.
    """

    input_size: int
    hidden_size: int
    seq_length: int = 0  # 0 = infer from the input features
    activation: str = "tanh"  # LOOM writes it but never applies it
    kind = TYPE

    def __post_init__(self):
        check_sizes(self, f"lstm({self.input_size}->{self.hidden_size})")

    def out_features(self, in_features: int, where: str = "lstm") -> int:
        return sequence_length(self, in_features, where) * self.hidden_size


in_features = _rnn.in_features  # same rule: seq_length * input_size, or None


def telemetry(spec: Spec) -> dict:
    """LOOM's blueprint facts (ExtractNetworkBlueprint): parameter count and shapes."""
    i, h = spec.input_size, spec.hidden_size
    return {"parameters": 4 * (i * h + h * h + h), "input_shape": [spec.seq_length, i],
            "output_shape": [spec.seq_length, h]}


def param_shapes(spec: Spec) -> dict:
    i, h = spec.input_size, spec.hidden_size
    return {**{k: (h, i) for k in _IH}, **{k: (h, h) for k in _HH}, **{k: (h,) for k in _B}}


def init(spec: Spec, rng: np.random.Generator) -> dict:
    """LOOM's InitLSTMLayer: Xavier on every gate matrix, forget bias 1, other biases 0."""
    i, h = spec.input_size, spec.hidden_size
    params = {k: xavier(rng, i, h, (h, i)) for k in _IH}
    params.update({k: xavier(rng, h, h, (h, h)) for k in _HH})
    params.update({k: np.full(h, 1.0 if k == "bias_f" else 0.0, np.float32) for k in _B})
    return params


def _stack(params: dict, keys: tuple, dtype) -> np.ndarray:
    # gate blocks [i|f|g|o] along the first axis: (4H, ...)
    return np.concatenate([np.asarray(params[k], dtype=dtype) for k in keys])


def forward(spec: Spec, params: dict, x: np.ndarray):
    """x: (batch, seq*input_size) -> y: (batch, seq*hidden_size), every h_t, h_0 = c_0 = 0."""
    t = x.dtype
    nb, seq = x.shape[0], sequence_length(spec, x.shape[1], "lstm forward")
    x3 = np.ascontiguousarray(x).reshape(nb, seq, spec.input_size)  # (batch, seq, in)
    w_ih, w_hh, b = (_stack(params, keys, t) for keys in (_IH, _HH, _B))
    y, c, gates = kr.lstm_forward(x3, w_ih, w_hh, b)  # (batch, seq, H) x2, (batch, seq, 4H)
    return y.reshape(nb, -1), (x3, y, c, gates, w_ih, w_hh)


def backward(spec: Spec, params: dict, cache, dy: np.ndarray):
    """dy: (batch, seq*hidden_size) -> dx (batch, seq*input_size), grads (true BPTT)."""
    x3, y, c, gates, w_ih, w_hh = cache
    dy3 = np.ascontiguousarray(dy, dtype=y.dtype).reshape(y.shape)
    dx, dw_ih, dw_hh, db = kr.lstm_backward(x3, y, c, gates, w_ih, w_hh, dy3)
    h = spec.hidden_size
    grads = {}
    for stacked, keys in ((dw_ih, _IH), (dw_hh, _HH), (db, _B)):
        grads.update({k: stacked[n * h:(n + 1) * h] for n, k in enumerate(keys)})
    return dx.reshape(x3.shape[0], -1), {k: grads[k] for k in WEIGHT_KEYS}


def to_config(spec: Spec, branch: bool = False) -> dict:
    return {"type": TYPE, "activation": spec.activation, "input_size": spec.input_size,
            "seq_length": spec.seq_length, "hidden_size": spec.hidden_size}


def from_config(cfg: dict) -> Spec:
    return Spec(cfg["input_size"], cfg["hidden_size"], cfg.get("seq_length", 0),
                cfg.get("activation", "tanh"))


def loom_gradients(spec: Spec, grads: dict):
    """(for each gate i, f, g, o: concat(dW_ih, dW_hh, db), all flat; None)."""
    parts = [grads[k].ravel() for g in GATES for k in (f"weight_i{g}", f"weight_h{g}",
                                                         f"bias_{g}")]
    return np.concatenate(parts), None


def init_lstm_layer(input_size: int, hidden_size: int, batch_size: int,
                    seq_length: int) -> Spec:
    """LOOM's InitLSTMLayer(inputSize, hiddenSize, batchSize, seqLength).

    batch_size is accepted for LOOM compatibility and not stored (it comes from the input).
    """
    return Spec(input_size, hidden_size, seq_length)


INIT_FUNCTIONS = {"InitLSTMLayer": init_lstm_layer}
