"""Element-wise GPU ops against numpy: column sums, activations, column-block copies."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.activations import ACTIVATIONS, activate  # noqa: E402
from loomdist.kernels.gpu import ops  # noqa: E402
from loomdist.kernels.gpu.array import to_gpu  # noqa: E402
from loomdist.kernels.gpu.stream import Stream  # noqa: E402

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("rows,cols", [(1, 5), (64, 3), (65, 3), (300, 70)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_colsum_one_and_two_passes(rows, cols, accumulate):
    x = np.random.default_rng(rows).standard_normal((rows, cols)).astype(np.float32)
    start = np.arange(cols, dtype=np.float32)
    s = Stream()
    out = to_gpu(start)
    ops.colsum(s, to_gpu(x), out, accumulate)
    want = x.sum(axis=0) + (start if accumulate else 0)
    np.testing.assert_allclose(s.read(out)[0], want, rtol=1e-5, atol=1e-5)



@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activate_without_bias_matches_cpu(name):
    x = np.linspace(-30, 30, 301, dtype=np.float32)  # includes overflow-prone tails
    s = Stream()
    np.testing.assert_allclose(s.read(ops.activate(s, to_gpu(x), name))[0], activate(name, x),
                               rtol=1e-6, atol=1e-6)


def test_copy_cols_places_and_accumulates_blocks():
    src = np.arange(12, dtype=np.float32).reshape(3, 4)
    dst0 = np.ones((3, 5), np.float32)
    s = Stream()
    dst = to_gpu(dst0)
    ops.copy_cols(s, to_gpu(src), dst, 2, 1, 3, accumulate=True)
    want = dst0.copy()
    want[:, 3:5] += src[:, 1:3]
    np.testing.assert_array_equal(s.read(dst)[0], want)
