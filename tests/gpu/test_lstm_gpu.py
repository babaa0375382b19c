"""GPU lstm vs the CPU layer (true BPTT) on odd sizes and inferred sequence lengths, plus the
shape error."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.errors import ShapeError  # noqa: E402
from loomdist.kernels.gpu.array import to_gpu  # noqa: E402
from loomdist.kernels.gpu.layers import lstm as gpu_lstm  # noqa: E402
from loomdist.kernels.gpu.stream import Stream  # noqa: E402
from loomdist.layers import lstm  # noqa: E402
from tests.cases import Case  # noqa: E402
from tests.gpu.test_parity import _cpu_and_gpu  # noqa: E402

pytestmark = pytest.mark.gpu
RTOL, ATOL = 1e-4, 1e-5  # float32 BPTT over up to 9 steps
BIG = [
    Case("lstm_odd", lstm.Spec(5, 7, 6), 3, 30),
    Case("lstm_inferred_seq", lstm.Spec(3, 11), 4, 27),
    Case("lstm_one_step", lstm.Spec(4, 3, 1), 5, 4),
]


@pytest.mark.parametrize("case", BIG, ids=lambda c: c.name)
def test_lstm_matches_cpu_on_odd_sizes(case):
    want, got, names = _cpu_and_gpu(case)
    for name, w, g in zip(names, want, got):
        assert g.shape == np.shape(w), name
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, err_msg=f"{case.name}: {name}")


def test_partial_time_step_is_a_shape_error():
    spec = lstm.Spec(3, 4)
    params = {k: to_gpu(v) for k, v in lstm.init(spec, np.random.default_rng(0)).items()}
    with pytest.raises(ShapeError, match="not a positive multiple of input_size 3"):
        gpu_lstm.forward(Stream(), spec, params, to_gpu(np.zeros((2, 7), np.float32)))
