"""GPU multi_head_attention vs the CPU layer (true gradients) on odd sizes, plus the shape
error."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.errors import ShapeError  # noqa: E402
from loomdist.kernels.gpu.array import to_gpu  # noqa: E402
from loomdist.kernels.gpu.layers import multi_head_attention as gpu_mha  # noqa: E402
from loomdist.kernels.gpu.stream import Stream  # noqa: E402
from loomdist.layers import multi_head_attention as mha  # noqa: E402
from tests.cases import Case  # noqa: E402
from tests.gpu.test_parity import _cpu_and_gpu  # noqa: E402

pytestmark = pytest.mark.gpu
RTOL, ATOL = 1e-4, 1e-4  # attention gradients chain several float32 reductions
BIG = [
    Case("mha_3heads_seq7", mha.Spec(12, 3), 3, 7 * 12),
    Case("mha_hd6_seq9", mha.Spec(12, 2, 9), 2, 9 * 12),
    Case("mha_seq1", mha.Spec(6, 3), 4, 6),
    Case("mha_long_seq", mha.Spec(8, 4), 1, 33 * 8),
]


@pytest.mark.parametrize("case", BIG, ids=lambda c: c.name)
def test_mha_matches_cpu_on_odd_sizes(case):
    want, got, names = _cpu_and_gpu(case)
    for name, w, g in zip(names, want, got):
        assert g.shape == np.shape(w), name
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=f"{case.name}: {name}")


def test_partial_position_is_a_shape_error():
    spec = mha.Spec(8, 2)
    params = {k: to_gpu(v) for k, v in mha.init(spec, np.random.default_rng(0)).items()}
    with pytest.raises(ShapeError, match="not a positive multiple of d_model 8"):
        gpu_mha.forward(Stream(), spec, params, to_gpu(np.zeros((2, 12), np.float32)))
