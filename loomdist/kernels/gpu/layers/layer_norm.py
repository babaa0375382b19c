"""LayerNorm on the GPU (norm.wgsl): per-row mean and rstd, then the affine map."""

from __future__ import annotations

from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.layers._norm import as_rows, per_column, per_row
from loomdist.kernels.gpu.stream import Stream


def forward(s: Stream, spec, params: dict, x: GpuArray):
    """x: (batch, norm_size) -> y (batch, norm_size); cache (x rows, mean, rstd)."""
    n = spec.norm_size
    x2 = as_rows(x, n)  # (rows, n)
    rows = x2.shape[0]
    y, mean, rstd = s.scratch(x.shape, "layer_norm y"), s.scratch((rows,)), s.scratch(rows)
    per_row(s, "ln_forward", [x2, params["gamma"], params["beta"], y, mean, rstd], rows, n,
            spec.eps)
    return y, (x2, mean, rstd)


def backward(s: Stream, spec, params: dict, cache, dy: GpuArray):
    """dy: (batch, norm_size) -> dx, grads {gamma, beta} (true gradients)."""
    x2, mean, rstd = cache
    rows, n = x2.shape
    dx = s.scratch(dy.shape, "layer_norm dx")
    per_row(s, "ln_backward", [x2, params["gamma"], mean, rstd, dy, dx], rows, n)
    dgamma, dbeta = per_column(s, "ln_params", [x2, mean, rstd, dy], 2, rows, n)
    return dx, {"gamma": dgamma.reshape(n), "beta": dbeta.reshape(n)}
