"""Tween rules of RNN and LSTM: only the input weights and biases learn (spec 4.6, 4.9).

Weights are (hidden, input) so LOOM's WeightIH[h*In + k] is w[h, k].
"""

from __future__ import annotations

import numpy as np

from .kinds import PassRule, mean32, register
from .mathx import F32, clip, cyclic, derivative_from_output

_LSTM_IH = ("weight_ii", "weight_if", "weight_ig", "weight_io")
_LSTM_HH = ("weight_hi", "weight_hf", "weight_hg", "weight_ho")
_LSTM_B = ("bias_i", "bias_f", "bias_g", "bias_o")
# Chain update: the output gate gets the full step, forget 0.8, input and cell 0.6 (LOOM).
_LSTM_FACTORS = {"i": 0.6, "f": 0.8, "g": 0.6, "o": 1.0}


def _tanh_delta(g, y, s, cfg, H):
    """delta_h = g_h * phi'_tanh(y_h) * s for h < min(len g, len y, H), zero beyond."""
    m = min(g.size, y.size, H)
    d = np.zeros(H, F32)
    d[:m] = g[:m] * derivative_from_output("tanh", y[:m], cfg) * F32(s)
    return d


def _input_error(w_ih, d, x):
    """out_k = sum_h w_ih[h, k] d_h for k < In; the rest of the input length stays 0."""
    out = np.zeros(x.size, F32)
    n = min(x.size, w_ih.shape[1])
    out[:n] = (w_ih.T @ d)[:n]
    return out


def _legacy_seq(p, names_w, name_b, gap, x, r):
    """Legacy RNN/LSTM rule: every weight += r*mean(gap)*0.1 * x[k mod len x]."""
    g = mean32(gap)
    rho = F32(r) * g * F32(0.1)
    for name in names_w:
        w = p[name].reshape(-1)
        w += rho * cyclic(x, w.size)
    p[name_b] += g * F32(0.1) * F32(r)


@register("rnn")
class RNNRule(PassRule):
    """Elman RNN: weight_ih (H, In), weight_hh (H, H), bias_h (H,)."""

    RATE = "rnn_rate"

    @staticmethod
    def chain_backward(p, spec, g, x, y, s, cfg):
        d = _tanh_delta(g, y, s, cfg, spec.hidden_size)
        return _input_error(p["weight_ih"], d, x)

    @staticmethod
    def chain_update(p, spec, g, x, y, r, cfg, vel):
        d = _tanh_delta(g, y, 1.0, cfg, spec.hidden_size)
        w = p["weight_ih"]
        k = min(x.size, w.shape[1])
        w[:, :k] += F32(r) * np.outer(d, x[:k])
        p["bias_h"] += F32(r) * d

    @staticmethod
    def legacy_update(p, spec, gap, x, r, cfg, vel):
        _legacy_seq(p, ("weight_ih", "weight_hh"), "bias_h", gap, x, r)


@register("lstm")
class LSTMRule(PassRule):
    """LSTM: per-gate weight_i? (H, In), weight_h? (H, H), bias_? (H,), gates i, f, g, o."""

    RATE = "lstm_rate"

    @staticmethod
    def chain_backward(p, spec, g, x, y, s, cfg):
        d = _tanh_delta(g, y, s, cfg, spec.hidden_size)
        w = F32(cfg.lstm_gate_scale) * sum(p[n] for n in _LSTM_IH)
        return _input_error(w, d, x)

    @staticmethod
    def chain_update(p, spec, g, x, y, r, cfg, vel):
        d = clip(_tanh_delta(g, y, 1.0, cfg, spec.hidden_size), 0.5)
        k = min(x.size, spec.input_size)
        beta = clip(F32(r) * np.outer(d, x[:k]), 0.5)  # (H, k)
        bb = clip(F32(r) * d, 0.5)
        for gate, f in _LSTM_FACTORS.items():
            p[f"weight_i{gate}"][:, :k] += F32(f) * beta
            p[f"bias_{gate}"] += F32(f) * bb

    @staticmethod
    def legacy_update(p, spec, gap, x, r, cfg, vel):
        for gate in "ifgo":
            _legacy_seq(p, (f"weight_i{gate}", f"weight_h{gate}"), f"bias_{gate}", gap, x, r)
