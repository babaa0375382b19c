"""LSTM layer on the GPU (lstm.wgsl): time steps on the device, exact BPTT.

Same semantics as loomdist/layers/lstm.py (sigmoid i, f, o; tanh g; zero initial states).
The per-gate parameters are stacked [i | f | g | o] on the device each call, so the input
projection of all steps is one tiled GEMM and the recurrence one dispatch (a workgroup per
sample walks its time steps, forward and backward); the stacked gradients are split back
into LOOM's per-gate names at the end.
"""

from __future__ import annotations

from loomdist.kernels.gpu import ops
from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream
from loomdist.layers.lstm import _B, _HH, _IH, WEIGHT_KEYS
from loomdist.layers.rnn import sequence_length

from .rnn import sequence, shifted_outer, transposed

SHADER = "lstm"
WHERE = "lstm gpu"  # names this layer in buffer-limit errors
WG = 64  # @workgroup_size of every entry point in lstm.wgsl


def _stack(stream, params: dict, keys: tuple, block: int) -> GpuArray:
    out = stream.scratch((4 * block,), WHERE)
    for n, k in enumerate(keys):
        stream.copy(params[k], out, block, 0, n * block)
    return out


def _split(stream, stacked: GpuArray, keys: tuple, shape: tuple, grads: dict) -> None:
    block = 1
    for d in shape:
        block *= d
    for n, k in enumerate(keys):
        grads[k] = stream.scratch(shape, WHERE)
        stream.copy(stacked, grads[k], block, n * block, 0)


def forward(stream: Stream, spec, params: dict, x: GpuArray) -> tuple:
    """x: (batch, seq*input_size) -> (y (batch, seq*hidden_size), cache).

    Raises:
        ShapeError: x's features are not a whole number of steps (or not seq_length steps).
    """
    nb, seq = x.shape[0], sequence_length(spec, x.shape[1], "lstm gpu forward")
    h, i = spec.hidden_size, spec.input_size
    w_ih, w_hh = _stack(stream, params, _IH, h * i), _stack(stream, params, _HH, h * h)
    b = _stack(stream, params, _B, h)
    gates = stream.scratch((nb, seq * 4 * h), WHERE)  # x W_ih^T, then the activated gates
    stream.gemm(x, w_ih, gates, nb * seq, 4 * h, i, trans_b=True)
    c, y = stream.scratch((nb, seq * h), WHERE), stream.scratch((nb, seq * h), WHERE)
    w_t = transposed(stream, w_hh, 4 * h, h)  # (H, 4H)
    sequence(stream, "lstm_seq", [gates, w_t, b, c, y], nb, seq, h, SHADER)
    return y, {"x": x, "y": y, "c": c, "gates": gates, "w_ih": w_ih, "w_hh": w_hh, "nb": nb,
               "seq": seq}


def backward(stream: Stream, spec, params: dict, cache: dict, dy: GpuArray) -> tuple:
    """dy: (batch, seq*hidden_size) -> (dx (batch, seq*input_size), grads), true BPTT."""
    nb, seq, x, y = cache["nb"], cache["seq"], cache["x"], cache["y"]
    h, i = spec.hidden_size, spec.input_size
    dz, dc = stream.scratch((nb, seq * 4 * h), WHERE), stream.scratch((nb, seq * h), WHERE)
    sequence(stream, "lstm_seq_back", [dy, cache["gates"], cache["c"], cache["w_hh"], dz, dc],
             nb, seq, h, SHADER)
    dx = stream.scratch((nb, seq * i), WHERE)
    stream.gemm(dz, cache["w_ih"], dx, nb * seq, i, 4 * h)
    dw_ih = stream.scratch((4 * h, i), WHERE)
    stream.gemm(dz, x, dw_ih, 4 * h, i, nb * seq, trans_a=True)
    grads: dict = {}
    _split(stream, dw_ih, _IH, (h, i), grads)
    _split(stream, shifted_outer(stream, dz, y, nb, seq, 4 * h, h), _HH, (h, h), grads)
    _split(stream, ops.colsum(stream, dz.reshape(nb * seq, 4 * h)), _B, (h,), grads)
    return dx, {k: grads[k] for k in WEIGHT_KEYS}
