"""GPU multi_head_attention vs the CPU layer (true gradients) on odd sizes, plus the shape
error."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.errors import ShapeError  # noqa: E402
from loomdist.kernels.gpu.array import to_gpu  # noqa: E402
from loomdist.kernels.gpu.device import get_device  # noqa: E402
from loomdist.kernels.gpu.layers import multi_head_attention as gpu_mha  # noqa: E402
from loomdist.kernels.gpu.stream import Stream  # noqa: E402
from loomdist.layers import multi_head_attention as mha  # noqa: E402
from tests.cases import Case  # noqa: E402
from tests.gpu.test_parity import (  # noqa: E402
    test_forward_and_backward_match_cpu as check_parity,
)

pytestmark = pytest.mark.gpu
BIG = [
    Case("mha_3heads_seq7", mha.Spec(12, 3), 3, 7 * 12),
    Case("mha_hd6_seq9", mha.Spec(12, 2, 9), 2, 9 * 12),
    Case("mha_seq1", mha.Spec(6, 3), 4, 6),
    Case("mha_long_seq", mha.Spec(8, 4), 1, 33 * 8),  # 3 tiles of 16: skipped/partial tiles
    Case("mha_hd16_seq37", mha.Spec(32, 2), 2, 37 * 32),
]


@pytest.mark.parametrize("case", BIG, ids=lambda c: c.name)
def test_mha_matches_cpu_on_odd_sizes(case):
    check_parity(case)  # the shared suite's check, its tolerance for this kind


def test_more_head_pairs_than_one_dispatch_dimension_holds(monkeypatch):
    # 5 samples x 2 heads = 10 (sample, head) pairs against a limit of 4 workgroups per
    # dimension: the batched GEMM must split them over 3 dispatches and still match the CPU
    monkeypatch.setitem(get_device().limits, "max-compute-workgroups-per-dimension", 4)
    check_parity(Case("mha_split_pairs", mha.Spec(4, 2), 5, 3 * 4))


def test_partial_position_is_a_shape_error():
    spec = mha.Spec(8, 2)
    params = {k: to_gpu(v) for k, v in mha.init(spec, np.random.default_rng(0)).items()}
    with pytest.raises(ShapeError, match="not a positive multiple of d_model 8"):
        gpu_mha.forward(Stream(), spec, params, to_gpu(np.zeros((2, 12), np.float32)))
