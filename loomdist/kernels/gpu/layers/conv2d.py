"""Conv2D layer on the GPU: batch-wide im2col + the tiled GEMM, fused bias and activation.

Same semantics and layouts as loomdist/layers/conv2d.py (NCHW samples, kernel (F, C, k, k),
zero padding). Forward: cols (C*k*k, n*P) = im2col(x); z^T (F, n*P) = W @ cols; z (n, F, P)
with the bias added on the way back to NCHW; y = act(z). Backward: dz by the activation
derivative, turned to (n*P, F) rows; db its column sums, dW = dz^T @ cols^T,
dcols = W^T @ dz^T, dx = col2im(dcols).
"""

from __future__ import annotations

from loomdist.kernels.gpu import ops
from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream

SKIPS_DX = True  # backward(..., need_dx=False) skips dL/dx (layers.backward)

SHADER = "conv2d"
WHERE = "conv2d gpu"  # names this layer in buffer-limit errors
WG = 64  # @workgroup_size of every entry point in conv2d.wgsl


def _geo(spec, n: int) -> dict:
    s = spec
    return {"n": n, "c": s.input_channels, "h": s.input_height, "w": s.input_width,
            "f": s.filters, "k": s.kernel_size, "stride": s.stride, "pad": s.padding,
            "oh": s.output_height, "ow": s.output_width, "p0": 0, "p1": 0}


def _run(stream, entry: str, arrays: list, geo: dict, items: int) -> None:
    stream.dispatch(SHADER, arrays, geo, stream.groups(items, WG), entry=entry)


def forward(stream: Stream, spec, params: dict, x: GpuArray) -> tuple:
    """x: (batch, C*H*W) NCHW per sample -> (y (batch, F*oh*ow) NCHW, cache).

    Raises:
        ShapeError: x's features per sample are not C*H*W.
    """
    n = x.shape[0]
    spec.out_features(x.shape[1], "conv2d gpu forward")
    geo = _geo(spec, n)
    K = spec.input_channels * spec.kernel_size ** 2
    P = spec.output_height * spec.output_width
    F = spec.filters
    cols = stream.scratch((K, n * P), WHERE)
    _run(stream, "im2col", [x, cols], geo, K * n * P)
    zt = stream.scratch((F, n * P), WHERE)
    stream.gemm(params["kernel"], cols, zt, F, n * P, K)
    z = stream.scratch((n, F * P), WHERE)  # pre-activation, NCHW
    _run(stream, "bias_nchw", [zt, params["conv_bias"], z], geo, n * F * P)
    y = ops.activate(stream, z, spec.activation)
    return y, {"cols": cols, "z": z, "y": y, "n": n}


def backward(stream: Stream, spec, params: dict, cache: dict, dy: GpuArray,
             need_dx: bool = True) -> tuple:
    """dy: (batch, F*oh*ow) -> (dx (batch, C*H*W), {kernel (F, C, k, k), conv_bias (F,)});
    need_dx=False skips dx's GEMM and col2im (None comes back)."""
    n, cols = cache["n"], cache["cols"]
    geo = _geo(spec, n)
    K = spec.input_channels * spec.kernel_size ** 2
    P = spec.output_height * spec.output_width
    F = spec.filters
    dz = stream.scratch((n * P, F), WHERE)
    _run(stream, "to_rows", [ops.act_backward(stream, cache["z"], cache["y"], dy,
                                              spec.activation), dz], geo, n * F * P)
    dw = stream.scratch((F, spec.input_channels, spec.kernel_size, spec.kernel_size), WHERE)
    stream.gemm(dz, cols, dw, F, K, n * P, trans_a=True, trans_b=True)
    grads = {"kernel": dw, "conv_bias": ops.colsum(stream, dz)}
    if not need_dx:
        return None, grads
    dcols = stream.scratch((K, n * P), WHERE)
    stream.gemm(params["kernel"], dz, dcols, K, n * P, F, trans_a=True, trans_b=True)
    dx = stream.scratch((n, spec.input_channels * spec.input_height * spec.input_width), WHERE)
    _run(stream, "col2im", [dcols, dx], geo, dx.size)
    return dx, grads
