"""RMSNorm on the GPU (norm.wgsl): rows of norm_size scaled by 1/rms and gamma."""

from __future__ import annotations

from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.layers._norm import as_rows, per_column, per_row
from loomdist.kernels.gpu.stream import Stream


def forward(s: Stream, spec, params: dict, x: GpuArray):
    """x: (batch, k*norm_size) -> y of the same shape; cache (x rows, rstd)."""
    n = spec.norm_size
    x2 = as_rows(x, n)  # (rows, n)
    rows = x2.shape[0]
    y, rstd = s.scratch(x.shape, "rms_norm y"), s.scratch((rows,))
    per_row(s, "rms_forward", [x2, params["gamma"], y, rstd], rows, n, spec.eps)
    return y, (x2, rstd)


def backward(s: Stream, spec, params: dict, cache, dy: GpuArray):
    """dy: (batch, k*norm_size) -> dx, grads {gamma}."""
    x2, rstd = cache
    rows, n = x2.shape
    dx = s.scratch(dy.shape, "rms_norm dx")
    per_row(s, "rms_backward", [x2, params["gamma"], rstd, dy, dx], rows, n)
    (dgamma,) = per_column(s, "rms_params", [x2, rstd, dy], 1, rows, n)
    return dx, {"gamma": dgamma.reshape(n)}
