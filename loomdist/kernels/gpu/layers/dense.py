"""Dense on the GPU: z = x @ K (GEMM), then bias + activation fused (elementwise.wgsl)."""

from __future__ import annotations

from loomdist.kernels.gpu import ops
from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream

SKIPS_DX = True  # backward(..., need_dx=False) skips dL/dx (layers.backward)


def forward(s: Stream, spec, params: dict, x: GpuArray):
    """x: (batch, in) -> y: (batch, out); cache (x, z, y)."""
    batch, n_in, n_out = x.shape[0], spec.input_height, spec.output_height
    z = s.scratch((batch, n_out), "dense z")
    s.gemm(x, params["kernel"], z, batch, n_out, n_in)
    y = ops.bias_act(s, z, params["biases"], spec.activation)
    return y, (x, z, y)


def backward(s: Stream, spec, params: dict, cache, dy: GpuArray, need_dx: bool = True):
    """dy: (batch, out) -> dx (batch, in), grads {kernel (in, out), biases (out,)};
    need_dx=False skips dx's GEMM (None comes back)."""
    x, z, y = cache
    batch, n_in, n_out = x.shape[0], spec.input_height, spec.output_height
    dz = ops.act_backward(s, z, y, dy, spec.activation)
    dk = s.scratch((n_in, n_out), "dense dK")
    s.gemm(x, dz, dk, n_in, n_out, batch, trans_a=True)
    grads = {"kernel": dk, "biases": ops.colsum(s, dz)}
    if not need_dx:
        return None, grads
    dx = s.scratch((batch, n_in), "dense dx")
    s.gemm(dz, params["kernel"], dx, batch, n_in, n_out, trans_b=True)
    return dx, grads
