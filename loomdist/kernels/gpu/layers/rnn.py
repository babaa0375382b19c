"""Elman RNN layer on the GPU (rnn.wgsl): time steps on the device, exact BPTT.

Same semantics as loomdist/layers/rnn.py: x (batch, seq*in) -> every h_t (batch, seq*H),
h_0 = 0. The input projection of all steps is one tiled GEMM; the recurrence is one dispatch
(a workgroup per sample walks its time steps); the backward walks them in reverse the same
way, then dx, dW_ih, dW_hh and the bias gradient come from GEMMs/reductions over all steps.
`sequence`, `shifted_outer` and `transposed` serve the LSTM too.
"""

from __future__ import annotations

from loomdist.kernels.gpu import ops
from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream
from loomdist.layers.rnn import sequence_length

SHADER = "rnn"
WHERE = "rnn gpu"  # names this layer in buffer-limit errors
WG = 64  # @workgroup_size of the element-wise entry points in rnn.wgsl
SEQ_WG = 256  # @workgroup_size of the sequence entry points (rnn.wgsl, lstm.wgsl)


def shifted_outer(stream, dz: GpuArray, y: GpuArray, nb: int, seq: int, g: int,
                  h: int) -> GpuArray:
    """sum over b and t >= 1 of dz[b, t]^T y[b, t-1]: dz (batch, seq, G), y (batch, seq, H)
    -> (G, H), the recurrent weight gradient, as one GEMM against the shifted states."""
    y_prev = stream.scratch((nb * seq, h), WHERE)
    stream.dispatch(SHADER, [y, y_prev], {"nb": nb, "seq": seq, "h": h, "t": 0},
                    stream.groups(y_prev.size, WG), entry="shift_rows")
    out = stream.scratch((g, h), WHERE)
    stream.gemm(dz, y_prev, out, g, h, nb * seq, trans_a=True)
    return out


def transposed(stream, a: GpuArray, rows: int, cols: int) -> GpuArray:
    """a (rows, cols) -> a^T (cols, rows): the step kernels read W_hh^T coalesced."""
    out = stream.scratch((cols, rows), WHERE)
    stream.dispatch(SHADER, [a, out], {"nb": rows, "seq": 0, "h": cols, "t": 0},
                    stream.groups(a.size, WG), entry="transpose")
    return out


def sequence(stream, entry: str, arrays: list, nb: int, seq: int, h: int,
             shader: str = SHADER) -> None:
    """Record `entry` over every time step: one workgroup of SEQ_WG per sample."""
    stream.dispatch(shader, arrays, {"nb": nb, "seq": seq, "h": h, "t": 0},
                    stream.groups(nb * SEQ_WG, SEQ_WG), entry=entry)


def forward(stream: Stream, spec, params: dict, x: GpuArray) -> tuple:
    """x: (batch, seq*input_size) -> (y (batch, seq*hidden_size), cache).

    Raises:
        ShapeError: x's features are not a whole number of steps (or not seq_length steps).
    """
    nb, seq = x.shape[0], sequence_length(spec, x.shape[1], "rnn gpu forward")
    h, i = spec.hidden_size, spec.input_size
    xw = stream.scratch((nb, seq * h), WHERE)  # x W_ih^T for every step, (batch, seq, H)
    stream.gemm(x, params["weight_ih"], xw, nb * seq, h, i, trans_b=True)
    y, w_t = stream.scratch((nb, seq * h), WHERE), transposed(stream, params["weight_hh"], h, h)
    sequence(stream, "rnn_seq", [xw, w_t, params["bias_h"], y], nb, seq, h)
    return y, {"x": x, "y": y, "nb": nb, "seq": seq}


def backward(stream: Stream, spec, params: dict, cache: dict, dy: GpuArray) -> tuple:
    """dy: (batch, seq*hidden_size) -> (dx (batch, seq*input_size), grads), true BPTT."""
    x, y, nb, seq = cache["x"], cache["y"], cache["nb"], cache["seq"]
    h, i = spec.hidden_size, spec.input_size
    dz = stream.scratch((nb, seq * h), WHERE)  # dL/d(pre-activation)
    sequence(stream, "rnn_seq_back", [dy, y, params["weight_hh"], dz], nb, seq, h)
    dx = stream.scratch((nb, seq * i), WHERE)
    stream.gemm(dz, params["weight_ih"], dx, nb * seq, i, h)
    dw_ih = stream.scratch((h, i), WHERE)
    stream.gemm(dz, x, dw_ih, h, i, nb * seq, trans_a=True)
    grads = {"weight_ih": dw_ih, "weight_hh": shifted_outer(stream, dz, y, nb, seq, h, h),
             "bias_h": ops.colsum(stream, dz.reshape(nb * seq, h))}
    return dx, grads
