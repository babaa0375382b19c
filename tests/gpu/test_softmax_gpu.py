"""GPU softmax vs the CPU layer on larger, odd-sized inputs for every variant, plus the gumbel
generator sharing and the shape errors."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.errors import ShapeError  # noqa: E402
from loomdist.kernels.gpu.array import to_gpu  # noqa: E402
from loomdist.kernels.gpu.layers import softmax as gpu_softmax  # noqa: E402
from loomdist.kernels.gpu.stream import Stream  # noqa: E402
from loomdist.layers import _softmax_math as sm  # noqa: E402
from loomdist.layers import softmax  # noqa: E402
from loomdist.layers._common import whole_buffer  # noqa: E402
from tests.cases import Case  # noqa: E402
from tests.gpu.test_parity import TOLERANCE  # noqa: E402
from tests.gpu.test_parity import (  # noqa: E402
    test_forward_and_backward_match_cpu as check_parity,
)

pytestmark = pytest.mark.gpu
S = softmax.Spec
_MASK = tuple(bool(v) for v in np.random.default_rng(2).integers(0, 2, 37))
BIG = [
    Case("standard", S("standard"), 5, 37),
    Case("temperature", S("temperature", 0.3), 5, 37),
    Case("grid", S("grid", 1.7, rows=5, cols=7), 3, 35),
    Case("hierarchical", S("hierarchical", levels=(3, 5, 3)), 4, 45),
    Case("hierarchical_two_levels", S("hierarchical", levels=(3, 5)), 2, 15),
    Case("gumbel", S("gumbel", 0.6, gumbel_noise=True, noise_seed=11), 5, 37),
    Case("masked", S("masked", 2.0, mask=_MASK), 5, 37),
    Case("sparse", S("sparse"), 7, 37),
    Case("entmax_13", S("entmax", entmax_alpha=1.3), 5, 37),
    Case("entmax_1", S("entmax", entmax_alpha=1.0), 3, 9),
    Case("entmax_2", S("entmax", entmax_alpha=2.0), 3, 9),
    Case("adaptive", S("adaptive", 1.4, adaptive_clusters=((0, 5, 9), (1, 2), (30, 36, 11)),
           extended=True),
         5, 37),
    Case("adaptive_plain", S("adaptive", 3.0), 3, 11),
    Case("mixture", S("mixture", mixture_weights=(0.1, 0.6, 0.3), extended=True), 5, 39),
    Case("mixture_plain", S("mixture", 2.0), 3, 13),
    # rows longer than a workgroup of 64: several elements per invocation, ragged tail
    Case("standard_long", S("temperature", 0.7), 3, 203),
    Case("masked_long", S("masked", mask=tuple(i % 3 != 0 for i in range(131))), 2, 131),
    Case("sparse_long", S("sparse"), 4, 333),
    Case("entmax_long", S("entmax", entmax_alpha=1.6), 3, 150),
    Case("grid_long_rows", S("grid", rows=2, cols=97), 3, 194),
]


@pytest.mark.parametrize("case", BIG, ids=lambda c: c.name)
def test_variant_matches_cpu_on_odd_sizes(case):
    check_parity(case)  # the shared suite's check, its tolerance for this kind


def test_sparse_gpu_output_has_exact_zeros_on_a_simplex():
    x = np.random.default_rng(4).standard_normal((6, 31)).astype(np.float32) * 3
    s = Stream()
    y, _ = gpu_softmax.forward(s, S("sparse"), {}, to_gpu(x))
    (out,) = s.read(y)
    assert (out == 0).any() and (out >= 0).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_unseeded_gumbel_draws_from_the_cpu_generator():
    spec = S("gumbel", 0.8, gumbel_noise=True)
    x = np.random.default_rng(5).standard_normal((4, 9)).astype(np.float32)
    sm.set_gumbel_seed(123)
    s = Stream()
    y, _ = gpu_softmax.forward(s, spec, {}, to_gpu(x))
    (got,) = s.read(y)
    sm.set_gumbel_seed(123)
    want, _ = softmax.forward(spec, {}, x)
    rtol, atol = TOLERANCE["softmax"]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def test_grid_larger_than_the_input_is_a_shape_error():
    with pytest.raises(ShapeError, match="grid rows x cols = 2x3 = 6 does not match"):
        gpu_softmax.forward(Stream(), S("grid", rows=2, cols=3), {},
                            to_gpu(np.zeros((2, 5), np.float32)))


@pytest.mark.filterwarnings("ignore::loomdist.LoomFallbackWarning")
@pytest.mark.parametrize("case", [
    Case("masked_wrong_length", S("masked", 0.6, mask=(True, False, True)), 3, 7),
    Case("hierarchical_misfit", S("hierarchical", levels=(2, 2)), 3, 7),
    Case("grid_prefix", S("grid", rows=2, cols=3), 3, 11),
    Case("adaptive_loom", S("adaptive", 1.4, adaptive_clusters=((0, 5), (1, 2))), 3, 11),
    Case("mixture_loom", S("mixture", 2.0, mixture_weights=(0.5, 0.5)), 3, 12),
], ids=lambda c: c.name)
def test_loom_fallbacks_match_cpu(case):
    check_parity(case)


def test_whole_buffer_matches_cpu():
    x = np.random.default_rng(8).standard_normal((3, 7)).astype(np.float32)
    g = np.random.default_rng(9).standard_normal((3, 7)).astype(np.float32)
    spec = S("temperature", 0.8)
    with whole_buffer():
        s = Stream()
        y, cache = gpu_softmax.forward(s, spec, {}, to_gpu(x))
        dx, _ = gpu_softmax.backward(s, spec, {}, cache, to_gpu(g))
        got_y, got_dx = s.read(y, dx)
        want_y, c = softmax.forward(spec, {}, x)
        want_dx, _ = softmax.backward(spec, {}, c, g)
    assert got_y.shape == x.shape and abs(got_y.sum() - 1) < 1e-5
    rtol, atol = TOLERANCE["softmax"]
    np.testing.assert_allclose(got_y, want_y, rtol=rtol, atol=atol)
    np.testing.assert_allclose(got_dx, want_dx, rtol=rtol, atol=atol)


def test_more_rows_than_one_dispatch_dimension_holds():
    # one workgroup per row: 65535 + 77 rows need a 2-D grid; every row must still be computed
    rows = 65535 + 77
    x = np.random.default_rng(6).standard_normal((rows, 3)).astype(np.float32)
    s = Stream()
    assert s.groups(rows * gpu_softmax.WG, gpu_softmax.WG)[1] == 2
    y, _ = gpu_softmax.forward(s, S("standard"), {}, to_gpu(x))
    (got,) = s.read(y)
    want, _ = softmax.forward(S("standard"), {}, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
