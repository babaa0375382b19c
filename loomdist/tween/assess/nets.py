"""The benchmark networks of LOOM's Tests 16-19 (spec 5.1) with LOOM's init rules.

All are 1x1 grids with L layers per cell, batch 1, Dense + Sigmoid output. Deviations that
loomdist's layer specs force (documented in docs/tween.md): LOOM's Attn networks leave
HeadDim = 0, which makes every MHA output just its OutputBias; loomdist's MHA always has
head_dim = d_model / num_heads (16), so its Attn networks do depend on the input. LOOM's Test 16
Norm networks leave NormSize = 0 (zero output); here norm_size = 32.
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from ...layers import conv2d, dense, layer_norm, lstm, multi_head_attention, rnn, swiglu
from ...network import Network

HIDDEN = (64, 48, 32, 24, 16)
INPUT_SIZES = {"Dense": 8, "Conv2D": 64, "RNN": 32, "LSTM": 32, "Attn": 64, "Norm": 16,
               "SwiGLU": 16}
LEAKY, SIG, TANH = "leaky_relu", "sigmoid", "tanh"


def _uniform(rng, shape, a) -> np.ndarray:
    """initRandomSlice: U(-a, a) in float32."""
    return ((rng.random(shape, dtype=np.float32) * 2 - 1) * np.float32(a)).astype(np.float32)


def _net(n_in: int, layers, rng) -> Network:
    net = Network(n_in, 1, 1, len(layers))
    for i, item in enumerate(layers):
        spec, params = item if isinstance(item, tuple) else (item, None)
        net.set_layer(0, 0, i, spec, params=params, rng=rng)
    return net


def dense_net(L: int, rng, t16: bool = False) -> Network:
    """Dense-L: 8->64, hidden sizes cycling (64, 48, 32, 24, 16), -> C (3 for T16, else 4)."""
    hs, C = HIDDEN, 3 if t16 else 4
    layers = [dense.Spec(8, 64, LEAKY)]
    for i in range(1, L - 1):
        act = TANH if t16 and i % 2 == 0 else LEAKY
        layers.append(dense.Spec(hs[(i - 1) % 5], hs[i % 5], act))
    layers.append(dense.Spec(hs[(L - 2) % 5], C, SIG))
    return _net(8, layers, rng)


def conv2d_net(L: int, rng, t16: bool = False) -> Network:
    """Conv2D-L: conv 8x8x1 -> 8 filters 3x3 (kernel U(+-0.2), bias 0) -> Dense 288->64 ->
    64->64 ... -> C."""
    C = 3 if t16 else 4
    spec = conv2d.Spec(8, 8, 1, 8, 3, 1, 0, LEAKY)
    conv = (spec, {"kernel": _uniform(rng, (8, 1, 3, 3), 0.2),
                   "conv_bias": np.zeros(8, np.float32)})
    layers = [conv] + [dense.Spec(288 if i == 1 else 64, 64, LEAKY) for i in range(1, L - 1)]
    layers.append(dense.Spec(64 if L > 2 else 288, C, SIG))
    return _net(64, layers, rng)


def _recurrent_net(L: int, rng, cell, C: int) -> Network:
    layers = [dense.Spec(32, 32, LEAKY)]
    for i in range(1, L - 1):
        layers.append(cell.Spec(8, 8, 4) if i % 2 else dense.Spec(32, 32, LEAKY))
    layers.append(dense.Spec(32, C, SIG))
    return _net(32, layers, rng)


def rnn_net(L: int, rng, t16: bool = False) -> Network:
    """RNN-L: Dense 32->32, RNN(8, 8, seq 4) at odd i, Dense 32->32 at even i, -> C."""
    return _recurrent_net(L, rng, rnn, 3 if t16 else 4)


def lstm_net(L: int, rng, t16: bool = False) -> Network:
    """LSTM-L: as RNN-L with LSTM(8, 8, seq 4)."""
    return _recurrent_net(L, rng, lstm, 3 if t16 else 4)


def _mha(rng):
    d, hd = 64, 16
    spec = multi_head_attention.Spec(64, 4)
    p = {k: _uniform(rng, (d, d), 0.1 / np.sqrt(hd)) for k in ("q_weights", "k_weights",
                                                                  "v_weights")}
    p["output_weight"] = _uniform(rng, (d, d), 0.1 / np.sqrt(d))
    p.update({k: np.zeros(d, np.float32) for k in ("q_bias", "k_bias", "v_bias",
                                                    "output_bias")})
    return spec, p


def attn_net(L: int, rng, t16: bool = False) -> Network:
    """Attn-L: MHA(64, 4 heads; Q/K/V U(+-0.1/4), Out U(+-0.1/8)) at even i, Dense 64->64 at
    odd i, -> C."""
    layers = [_mha(rng) if i % 2 == 0 else dense.Spec(64, 64, LEAKY) for i in range(L - 1)]
    layers.append(dense.Spec(64, 3 if t16 else 4, SIG))
    return _net(64, layers, rng)


def norm_net(L: int, rng, t16: bool = True) -> Network:
    """Norm-L (Test 16): 16->32, LayerNorm(32) at odd i, Dense 32->32 at even i, -> 3."""
    layers = [dense.Spec(16, 32, LEAKY)]
    for i in range(1, L - 1):
        layers.append(layer_norm.Spec(32) if i % 2 else dense.Spec(32, 32, LEAKY))
    layers.append(dense.Spec(32, 3, SIG))
    return _net(16, layers, rng)


def _swiglu(rng):
    spec = swiglu.Spec(32, 32)
    p = {k: _uniform(rng, (32, 32), 0.1) for k in ("gate_weights", "up_weights",
                                                    "down_weights")}
    p.update({k: np.zeros(32, np.float32) for k in ("gate_bias", "up_bias", "down_bias")})
    return spec, p


def swiglu_net(L: int, rng, t16: bool = True) -> Network:
    """SwiGLU-L (Test 16): 16->32, SwiGLU(32, 32; U(+-0.1)) at odd i, Dense 32->32, -> 3."""
    layers = [dense.Spec(16, 32, LEAKY)]
    for i in range(1, L - 1):
        layers.append(_swiglu(rng) if i % 2 else dense.Spec(32, 32, LEAKY))
    layers.append(dense.Spec(32, 3, SIG))
    return _net(16, layers, rng)


def t17_net(rng) -> Network:
    """Test 17's Dense 8->32->64->64->64->32->4 (LeakyReLU, Sigmoid output; spec 7 #21)."""
    sizes = (8, 32, 64, 64, 64, 32, 4)
    layers = [dense.Spec(sizes[i], sizes[i + 1], SIG if i == 5 else LEAKY) for i in range(6)]
    return _net(8, layers, rng)


FACTORIES = {"Dense": dense_net, "Conv2D": conv2d_net, "RNN": rnn_net, "LSTM": lstm_net,
             "Attn": attn_net, "Norm": norm_net, "SwiGLU": swiglu_net}


def make_net(kind: str, L: int, rng, t16: bool = False) -> Network:
    """The `kind`-L network ("Dense", "Conv2D", "RNN", "LSTM", "Attn", "Norm", "SwiGLU")."""
    if kind not in FACTORIES:
        raise ConfigError(f"make_net: unknown network {kind!r}; use one of {list(FACTORIES)}")
    if isinstance(L, bool) or not isinstance(L, int) or L < 3:
        raise ConfigError(f"make_net: depth must be an int >= 3 (got {L!r}); LOOM's "
                          f"benchmarks use 3, 5, 9, 15, 20")
    return FACTORIES[kind](L, np.random.default_rng(rng) if not
                           isinstance(rng, np.random.Generator) else rng, t16=t16)
