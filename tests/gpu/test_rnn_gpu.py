"""GPU rnn and lstm vs the CPU layers (true BPTT) on odd sizes and inferred sequence lengths,
plus the shape error. One file for both: they share the sequence rules and the BPTT helpers."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.errors import ShapeError  # noqa: E402
from loomdist.kernels.gpu.array import to_gpu  # noqa: E402
from loomdist.kernels.gpu.layers import gpu_module  # noqa: E402
from loomdist.kernels.gpu.stream import Stream  # noqa: E402
from loomdist.layers import lstm, rnn  # noqa: E402
from tests.cases import Case  # noqa: E402
from tests.gpu.test_parity import (  # noqa: E402
    test_forward_and_backward_match_cpu as check_parity,
)

pytestmark = pytest.mark.gpu
BIG = [case for m in (rnn, lstm) for case in (
    Case(f"{m.TYPE}_odd", m.Spec(5, 7, 6), 3, 30),
    Case(f"{m.TYPE}_inferred_seq", m.Spec(3, 11), 4, 27),
    Case(f"{m.TYPE}_one_step", m.Spec(4, 3, 1), 5, 4),
    Case(f"{m.TYPE}_wide_batch", m.Spec(2, 9, 4), 17, 8),
    # more hidden units than the 256 invocations that walk one sample's steps
    Case(f"{m.TYPE}_wide_hidden", m.Spec(3, 300, 3), 2, 9),
)]


@pytest.mark.parametrize("case", BIG, ids=lambda c: c.name)
def test_recurrent_layer_matches_cpu_on_odd_sizes(case):
    check_parity(case)  # the shared suite's check, its tolerance for this kind


@pytest.mark.parametrize("m", [rnn, lstm], ids=lambda m: m.TYPE)
def test_partial_time_step_is_a_shape_error(m):
    spec = m.Spec(3, 4)
    params = {k: to_gpu(v) for k, v in m.init(spec, np.random.default_rng(0)).items()}
    with pytest.raises(ShapeError, match="not a positive multiple of input_size 3"):
        gpu_module(m.TYPE).forward(Stream(), spec, params, to_gpu(np.zeros((2, 7), np.float32)))
