"""GPU conv2d vs the CPU layer on odd sizes (every activation, strides, paddings), plus the
shape error."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.errors import ShapeError  # noqa: E402
from loomdist.kernels.gpu.array import to_gpu  # noqa: E402
from loomdist.kernels.gpu.layers import conv2d as gpu_conv2d  # noqa: E402
from loomdist.kernels.gpu.stream import Stream  # noqa: E402
from loomdist.layers import conv2d  # noqa: E402
from tests.cases import Case  # noqa: E402
from tests.gpu.test_parity import (  # noqa: E402
    test_forward_and_backward_match_cpu as check_parity,
)

pytestmark = pytest.mark.gpu
S = conv2d.Spec
BIG = [Case(f"conv2d_{a}", S(13, 11, 3, 5, 4, 3, 2, a), 3, 3 * 13 * 11)
       for a in ("relu", "sigmoid", "tanh", "softplus", "leaky_relu", "linear")]
BIG += [
    Case("conv2d_k1", S(7, 9, 4, 3, 1, 1, 0, "tanh"), 2, 4 * 7 * 9),
    Case("conv2d_k5_pad3_stride3", S(10, 8, 2, 6, 5, 3, 3, "leaky_relu"), 5, 2 * 10 * 8),
    Case("conv2d_kernel_is_input", S(5, 5, 3, 2, 5, 1, 0, "sigmoid"), 4, 3 * 5 * 5),
]


@pytest.mark.parametrize("case", BIG, ids=lambda c: c.name)
def test_conv2d_matches_cpu_on_odd_sizes(case):
    check_parity(case)  # the shared suite's check, its tolerance for this kind


def test_wrong_input_size_is_a_shape_error():
    spec = S(5, 5, 2, 3, 3, 1, 1)
    params = {k: to_gpu(v) for k, v in conv2d.init(spec, np.random.default_rng(0)).items()}
    with pytest.raises(ShapeError, match="input features per sample is 49, the layer expects 50"):
        gpu_conv2d.forward(Stream(), spec, params, to_gpu(np.zeros((2, 49), np.float32)))
