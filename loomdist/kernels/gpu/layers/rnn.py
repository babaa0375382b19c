"""Elman RNN layer on the GPU (rnn.wgsl): time steps on the device, exact BPTT.

Same semantics as loomdist/layers/rnn.py: x (batch, seq*in) -> every h_t (batch, seq*H),
h_0 = 0. The input projection of all steps is one tiled GEMM; each step is one dispatch with
the recurrent product fused in; the backward runs the steps in reverse, then dx, dW_ih and
the bias gradient come from GEMMs/reductions over all steps at once. `shifted_outer` (the
recurrent weight gradient) serves the LSTM too.
"""

from __future__ import annotations

from loomdist.kernels.gpu import ops
from loomdist.kernels.gpu.array import GpuArray
from loomdist.layers.rnn import sequence_length

SHADER = "rnn"
WHERE = "rnn gpu"  # names this layer in buffer-limit errors
WG = 64  # @workgroup_size of every entry point in rnn.wgsl


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


def step(stream, entry: str, arrays: list, nb: int, seq: int, h: int, t: int,
         shader: str = SHADER) -> None:
    """Record time step t of `entry` (a `Step` uniform), one invocation per (sample, unit)."""
    stream.dispatch(shader, arrays, {"nb": nb, "seq": seq, "h": h, "t": t},
                    stream.groups(nb * h, WG), entry=entry)


def forward(stream, spec, params: dict, x: GpuArray):
    """x: (batch, seq*input_size) -> (y (batch, seq*hidden_size), cache).

    Raises:
        ShapeError: x's features are not a whole number of steps (or not seq_length steps).
    """
    nb, seq = x.shape[0], sequence_length(spec, x.shape[1], "rnn gpu forward")
    h, i = spec.hidden_size, spec.input_size
    xw = stream.scratch((nb, seq * h), WHERE)  # x W_ih^T for every step, (batch, seq, H)
    stream.gemm(x, params["weight_ih"], xw, nb * seq, h, i, trans_b=True)
    y, w_t = stream.scratch((nb, seq * h), WHERE), transposed(stream, params["weight_hh"], h, h)
    for t in range(seq):
        step(stream, "rnn_step", [xw, w_t, params["bias_h"], y], nb, seq, h, t)
    return y, {"x": x, "y": y, "nb": nb, "seq": seq}


def backward(stream, spec, params: dict, cache: dict, dy: GpuArray):
    """dy: (batch, seq*hidden_size) -> (dx (batch, seq*input_size), grads), true BPTT."""
    x, y, nb, seq = cache["x"], cache["y"], cache["nb"], cache["seq"]
    h, i = spec.hidden_size, spec.input_size
    dz = stream.scratch((nb, seq * h), WHERE)  # dL/d(pre-activation)
    for t in range(seq - 1, -1, -1):
        step(stream, "rnn_step_back", [dy, y, params["weight_hh"], dz], nb, seq, h, t)
    dx = stream.scratch((nb, seq * i), WHERE)
    stream.gemm(dz, params["weight_ih"], dx, nb * seq, i, h)
    dw_ih = stream.scratch((h, i), WHERE)
    stream.gemm(dz, x, dw_ih, h, i, nb * seq, trans_a=True)
    grads = {"weight_ih": dw_ih, "weight_hh": shifted_outer(stream, dz, y, nb, seq, h, h),
             "bias_h": ops.colsum(stream, dz.reshape(nb * seq, h))}
    return dx, grads
