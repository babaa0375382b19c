"""Conv2D layer: LOOM's NCHW convolution with zero padding, per-filter bias and activation.

Per sample, `z = W (F, C*k*k) @ im2col(x) (C*k*k, oh*ow)` is already NCHW. The batch runs in
chunks whose column buffer stays near the L3 size, so each GEMM reads columns that were just
written; backward recomputes the columns instead of caching C*k*k*oh*ow floats per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import check_activation
from ..errors import ConfigError
from ..kernels.cpu import conv as kc
from ._common import expect_features, he, positive_int

TYPE = "conv2d"
WEIGHT_KEYS = ("kernel", "conv_bias")  # order inside LOOM's weight payload
RESIDUAL = None
LOOM_TYPE_ID = 1  # LOOM's LayerType enum value (events' LayerType)
STATS_NAME = "conv2d"  # LOOM's layerTypeString (events' Stats.LayerType)
CHUNK_BYTES = 16 << 20  # column buffer per batch chunk (at least one sample)


@dataclass(frozen=True)
class Spec:
    """Conv2D over (input_channels, input_height, input_width) samples, `filters` outputs."""

    input_height: int
    input_width: int
    input_channels: int
    filters: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    activation: str = "relu"
    kind = TYPE

    def __post_init__(self):
        where = (f"conv2d({self.input_channels}x{self.input_height}x{self.input_width}"
                 f"->{self.filters}, k={self.kernel_size})")
        for name in ("input_height", "input_width", "input_channels", "filters",
                     "kernel_size", "stride"):
            object.__setattr__(self, name, positive_int(getattr(self, name), where, name))
        object.__setattr__(self, "padding", positive_int(self.padding, where, "padding", 0))
        object.__setattr__(self, "activation", check_activation(self.activation, where))
        for side in ("height", "width"):
            size = getattr(self, f"input_{side}")
            if size + 2 * self.padding < self.kernel_size:
                raise ConfigError(
                    f"{where}: kernel_size {self.kernel_size} exceeds the padded input {side} "
                    f"({size} + 2*padding {self.padding} = {size + 2 * self.padding}); "
                    f"use a smaller kernel_size or a larger padding or input_{side}")

    @property
    def output_height(self) -> int:
        return (self.input_height + 2 * self.padding - self.kernel_size) // self.stride + 1

    @property
    def output_width(self) -> int:
        return (self.input_width + 2 * self.padding - self.kernel_size) // self.stride + 1

    def out_features(self, in_features: int, where: str = "conv2d") -> int:
        expect_features(where, in_features,
                        self.input_channels * self.input_height * self.input_width)
        return self.filters * self.output_height * self.output_width


def in_features(spec: Spec) -> int:
    """Per-sample input size this layer needs (C*H*W)."""
    return spec.input_channels * spec.input_height * spec.input_width


def telemetry(spec: Spec) -> dict:
    """LOOM's blueprint facts (ExtractNetworkBlueprint): parameter count and shapes."""
    s = spec
    return {"parameters": s.filters * s.input_channels * s.kernel_size ** 2 + s.filters,
            "input_shape": [s.input_channels, s.input_height, s.input_width],
            "output_shape": [s.filters, s.output_height, s.output_width]}


def param_shapes(spec: Spec) -> dict:
    k = spec.kernel_size
    return {"kernel": (spec.filters, spec.input_channels, k, k), "conv_bias": (spec.filters,)}


def init(spec: Spec, rng: np.random.Generator) -> dict:
    """LOOM's InitConv2DLayer: kernel ~ N(0, sqrt(2/(C*k*k))) (He), conv_bias 0."""
    shapes = param_shapes(spec)
    fan_in = spec.input_channels * spec.kernel_size ** 2
    return {"kernel": he(rng, fan_in, shapes["kernel"]),
            "conv_bias": np.zeros(spec.filters, np.float32)}


def _geometry(spec: Spec, n: int, dtype) -> tuple:
    """(K, P, samples per chunk) for a batch of n."""
    K = spec.input_channels * spec.kernel_size ** 2
    P = spec.output_height * spec.output_width
    step = max(1, min(n, CHUNK_BYTES // (K * P * np.dtype(dtype).itemsize)))
    return K, P, step


def forward(spec: Spec, params: dict, x: np.ndarray):
    """x: (batch, C*H*W), NCHW per sample -> y: (batch, F*oh*ow), NCHW per sample."""
    s, n = spec, x.shape[0]
    dt = np.result_type(x.dtype, params["kernel"].dtype, np.float32)
    x4 = np.ascontiguousarray(x, dtype=dt).reshape(n, s.input_channels, s.input_height,
                                                   s.input_width)
    K, P, step = _geometry(s, n, dt)
    W = np.ascontiguousarray(params["kernel"], dtype=dt).reshape(s.filters, K)
    cols = np.empty((step, K, s.output_height, s.output_width), dt)
    z = np.empty((n, s.filters, P), dt)  # pre-activation, (batch, F, oh*ow)
    y = np.empty_like(z)
    for a in range(0, n, step):
        e = min(n, a + step)
        c = kc.im2col(x4[a:e], s.kernel_size, s.stride, s.padding, cols[:e - a])
        np.matmul(W, c.reshape(e - a, K, P), out=z[a:e])
        kc.bias_act(z[a:e], params["conv_bias"], s.activation, y[a:e])
    return y.reshape(n, s.filters * P), (x4, z, y)


def backward(spec: Spec, params: dict, cache, dy: np.ndarray):
    """dy: (batch, F*oh*ow) -> dx: (batch, C*H*W), grads {kernel, conv_bias}."""
    s = spec
    x4, z, y = cache
    n, dt = x4.shape[0], x4.dtype
    K, P, step = _geometry(s, n, dt)
    W = np.ascontiguousarray(params["kernel"], dtype=dt).reshape(s.filters, K)
    Wt = np.ascontiguousarray(W.T)  # (K, F)
    dy3 = np.ascontiguousarray(dy, dtype=dt).reshape(z.shape)
    cols = np.empty((step, K, s.output_height, s.output_width), dt)
    dcols = np.empty_like(cols)
    dW, db = np.zeros((s.filters, K), dt), np.zeros(s.filters, np.float64)
    dx = np.empty_like(x4)
    for a in range(0, n, step):
        e = min(n, a + step)
        dz = kc.act_back_bias(z[a:e], y[a:e], dy3[a:e], s.activation, db)  # (m, F, P)
        c = kc.im2col(x4[a:e], s.kernel_size, s.stride, s.padding, cols[:e - a])
        c3 = c.reshape(e - a, K, P)
        for i in range(e - a):
            dW += dz[i] @ c3[i].T
        np.matmul(Wt, dz, out=dcols[:e - a].reshape(e - a, K, P))
        kc.col2im(dcols[:e - a], s.kernel_size, s.stride, s.padding, dx[a:e])
    grads = {"kernel": dW.reshape(param_shapes(s)["kernel"]), "conv_bias": db.astype(dt)}
    return dx.reshape(n, s.input_channels * s.input_height * s.input_width), grads


def to_config(spec: Spec, branch: bool = False) -> dict:
    """LOOM's cfg keys in LOOM's order (the same inside a parallel branch)."""
    s = spec
    return {"type": TYPE, "activation": s.activation, "input_channels": s.input_channels,
            "filters": s.filters, "kernel_size": s.kernel_size, "stride": s.stride,
            "padding": s.padding, "input_height": s.input_height, "input_width": s.input_width,
            "output_height": s.output_height, "output_width": s.output_width}


def from_config(cfg: dict) -> Spec:
    """Spec from a LOOM cfg; a stored output size must agree with the computed one."""
    spec = Spec(cfg["input_height"], cfg["input_width"], cfg["input_channels"], cfg["filters"],
                cfg["kernel_size"], cfg.get("stride", 1), cfg.get("padding", 0),
                cfg.get("activation", "relu"))
    for side in ("height", "width"):
        stored, computed = cfg.get(f"output_{side}"), getattr(spec, f"output_{side}")
        if stored not in (None, 0, computed):
            raise ConfigError(
                f"conv2d config: output_{side} is {stored} but input, kernel_size, stride and "
                f"padding give {computed}; fix output_{side} or the other fields")
    return spec


def loom_gradients(spec: Spec, grads: dict):
    """LOOM's (KernelGradients, BiasGradients) entries: kernel [F][C][k][k] flat, bias [F]."""
    return grads["kernel"].ravel(), grads["conv_bias"].ravel()


def init_conv2d_layer(input_height: int, input_width: int, input_channels: int, filters: int,
                      kernel_size: int, stride: int, padding: int,
                      activation: str | int = "relu") -> Spec:
    """LOOM's InitConv2DLayer(inH, inW, inC, filters, kernelSize, stride, padding, activation)."""
    return Spec(input_height, input_width, input_channels, filters, kernel_size, stride,
                padding, activation)


INIT_FUNCTIONS = {"InitConv2DLayer": init_conv2d_layer}
