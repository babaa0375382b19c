"""SwiGLU on the GPU: gate/up/down GEMMs around the fused gate (glu.wgsl)."""

from __future__ import annotations

from loomdist.kernels.gpu import ops
from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream

SKIPS_DX = True  # backward(..., need_dx=False) skips dL/dx (layers.backward)


def forward(s: Stream, spec, params: dict, x: GpuArray):
    """x: (batch, k*hidden) -> y of the same shape; cache (x rows, a, u, h)."""
    hid, inter = spec.input_height, spec.output_height
    x2 = x.reshape(x.size // hid, hid)  # (rows, hidden)
    rows = x2.shape[0]
    a, u, h = (s.scratch((rows, inter), "swiglu") for _ in range(3))
    s.gemm(x2, params["gate_weights"], a, rows, inter, hid)
    s.gemm(x2, params["up_weights"], u, rows, inter, hid)
    if a.size:
        s.dispatch("glu", [a, u, params["gate_bias"], params["up_bias"], h],
                   {"n": a.size, "cols": inter}, s.groups(a.size), entry="glu_forward")
    y = s.scratch((rows, hid), "swiglu y")
    s.gemm(h, params["down_weights"], y, rows, hid, inter)
    y_linear = ops.bias_act(s, y, params["down_bias"], "linear")
    return y_linear.reshape(x.shape), (x2, a, u, h)


def backward(s: Stream, spec, params: dict, cache, dy: GpuArray, need_dx: bool = True):
    """dy: (batch, k*hidden) -> dx, grads for all six parameters; need_dx=False skips dx's
    two GEMMs (None comes back)."""
    x2, a, u, h = cache
    rows, hid = x2.shape
    inter = spec.output_height
    dy2 = dy.reshape(rows, hid)
    dh, dgate, dup = (s.scratch((rows, inter), "swiglu d") for _ in range(3))
    s.gemm(dy2, params["down_weights"], dh, rows, inter, hid, trans_b=True)
    if dh.size:
        s.dispatch("glu", [a, u, dh, dgate, dup], {"n": dh.size, "cols": inter},
                   s.groups(dh.size), entry="glu_backward")
    dx = None
    if need_dx:
        dx = s.scratch((rows, hid), "swiglu dx")
        s.gemm(dgate, params["gate_weights"], dx, rows, hid, inter, trans_b=True)
        s.gemm(dup, params["up_weights"], dx, rows, hid, inter, trans_b=True, accumulate=True)
    grads = {}
    for name, src, d in (("gate_weights", x2, dgate), ("up_weights", x2, dup),
                         ("down_weights", h, dy2)):
        grads[name] = s.scratch((src.shape[1], d.shape[1]), "swiglu grad")
        s.gemm(src, d, grads[name], src.shape[1], d.shape[1], rows, trans_a=True)
    grads.update(gate_bias=ops.colsum(s, dgate), up_bias=ops.colsum(s, dup),
                 down_bias=ops.colsum(s, dy2))
    return (dx.reshape(dy.shape) if need_dx else None), grads
