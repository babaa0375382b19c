"""Elman RNN layer on the GPU (rnn.wgsl): time steps on the device, exact BPTT.

Same semantics as loomdist/layers/rnn.py: x (batch, seq*in) -> every h_t (batch, seq*H),
h_0 = 0. The input projection of all steps is one tiled GEMM; each step is one dispatch with
the recurrent product fused in; the backward runs the steps in reverse, then dx, dW_ih and
the bias gradient come from GEMMs/reductions over all steps at once. The helpers below
(`col_sum`, `shifted_outer`, `copy_range`) serve the LSTM too.
"""

from __future__ import annotations

from loomdist.kernels.gpu.array import GpuArray, empty
from loomdist.layers.rnn import sequence_length

from ._launch import groups

SHADER = "layers/rnn"


def col_sum(stream, a: GpuArray, rows: int, cols: int) -> GpuArray:
    """Column sums (cols,) of a (rows, cols) array."""
    out = empty((cols,))
    stream.dispatch(SHADER, [a, out], {"rows": rows, "cols": cols, "p0": 0, "p1": 0},
                    groups(cols), entry="col_sum")
    return out


def shifted_outer(stream, dz: GpuArray, y: GpuArray, nb: int, seq: int, g: int,
                  h: int) -> GpuArray:
    """sum over b and t >= 1 of dz[b, t]^T y[b, t-1]: dz (batch, seq, G), y (batch, seq, H)
    -> (G, H), the recurrent weight gradient."""
    out = empty((g, h))
    stream.dispatch(SHADER, [dz, y, out], {"nb": nb, "seq": seq, "g": g, "h": h},
                    groups(g * h), entry="shifted_outer")
    return out


def copy_range(stream, src: GpuArray, dst: GpuArray, src_off: int, dst_off: int,
               count: int) -> None:
    """dst[dst_off : dst_off+count] = src[src_off : src_off+count] (flat float offsets)."""
    stream.dispatch(SHADER, [src, dst], {"src": src_off, "dst": dst_off, "count": count,
                                         "p0": 0}, groups(count), entry="copy_range")


def forward(stream, spec, params: dict, x: GpuArray):
    """x: (batch, seq*input_size) -> (y (batch, seq*hidden_size), cache).

    Raises:
        ShapeError: x's features are not a whole number of steps (or not seq_length steps).
    """
    nb, seq = x.shape[0], sequence_length(spec, x.shape[1], "rnn gpu forward")
    h, i = spec.hidden_size, spec.input_size
    xw = empty((nb, seq * h))  # x W_ih^T for every step, (batch, seq, H)
    stream.gemm(x, params["weight_ih"], xw, nb * seq, h, i, trans_b=True)
    y = empty((nb, seq * h))
    for t in range(seq):
        stream.dispatch(SHADER, [xw, params["weight_hh"], params["bias_h"], y],
                        {"nb": nb, "seq": seq, "h": h, "t": t}, groups(nb * h),
                        entry="rnn_step")
    return y, {"x": x, "y": y, "nb": nb, "seq": seq}


def backward(stream, spec, params: dict, cache: dict, dy: GpuArray):
    """dy: (batch, seq*hidden_size) -> (dx (batch, seq*input_size), grads), true BPTT."""
    x, y, nb, seq = cache["x"], cache["y"], cache["nb"], cache["seq"]
    h, i = spec.hidden_size, spec.input_size
    dz = empty((nb, seq * h))  # dL/d(pre-activation)
    for t in range(seq - 1, -1, -1):
        stream.dispatch(SHADER, [dy, y, params["weight_hh"], dz],
                        {"nb": nb, "seq": seq, "h": h, "t": t}, groups(nb * h),
                        entry="rnn_step_back")
    dx = empty((nb, seq * i))
    stream.gemm(dz, params["weight_ih"], dx, nb * seq, i, h)
    dw_ih = empty((h, i))
    stream.gemm(dz, x, dw_ih, h, i, nb * seq, trans_a=True)
    grads = {"weight_ih": dw_ih, "weight_hh": shifted_outer(stream, dz, y, nb, seq, h, h),
             "bias_h": col_sum(stream, dz, nb * seq, h)}
    return dx, grads
