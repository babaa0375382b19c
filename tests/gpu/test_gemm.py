"""Tiled GPU GEMM against numpy float32, plus the device's error branches."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.errors import ConfigError, ShapeError  # noqa: E402
from loomdist.kernels.gpu import device  # noqa: E402
from loomdist.kernels.gpu.gemm import gemm_pipeline, matmul  # noqa: E402
from loomdist.kernels.gpu.gemm_codegen import Tile  # noqa: E402

pytestmark = pytest.mark.gpu

# float32 GEMM with K <= 256: |error| <= RTOL*|c| + ATOL*sqrt(K) covers summation-order drift.
RTOL, ATOL = 1e-5, 1e-5
SHAPES = [(1, 1, 1), (17, 33, 9), (128, 64, 256), (65, 70, 130), (3, 200, 1)]  # (M, K, N)


def _operands(m: int, k: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k), dtype=np.float32)  # (M, K)
    b = rng.standard_normal((k, n), dtype=np.float32)  # (K, N)
    return a, b


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_matmul_matches_numpy(m, k, n, trans_a, trans_b):
    a, b = _operands(m, k, n)
    a_in = np.ascontiguousarray(a.T) if trans_a else a
    b_in = np.ascontiguousarray(b.T) if trans_b else b
    c = matmul(a_in, b_in, trans_a=trans_a, trans_b=trans_b)
    assert c.shape == (m, n) and c.dtype == np.float32
    np.testing.assert_allclose(c, a @ b, rtol=RTOL, atol=ATOL * np.sqrt(k))


def test_matmul_empty_inner_dimension_gives_zeros():
    c = matmul(np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32))
    np.testing.assert_array_equal(c, np.zeros((3, 4), np.float32))


def test_matmul_rejects_mismatched_inner_dimensions():
    with pytest.raises(ShapeError, match=r"gemm: inner dimensions differ \(op\(a\) 2x3"):
        matmul(np.ones((2, 3), np.float32), np.ones((4, 5), np.float32))


def test_buffer_larger_than_limit_names_limit_and_size(monkeypatch):
    dev = device.get_device()
    monkeypatch.setitem(dev.limits, "max-storage-buffer-binding-size", 64)
    with pytest.raises(ConfigError,
                       match=r"gemm A: buffer too large .*\(80 bytes > "
                             r"max-storage-buffer-binding-size = 64"):
        matmul(np.ones((4, 5), np.float32), np.ones((5, 2), np.float32))


def test_no_adapter_raises_config_error(monkeypatch):
    monkeypatch.setattr(device, "_request_adapter", lambda: None)
    device.get_device.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"get_device: no wgpu adapter found"):
            device.get_device()
    finally:
        device.get_device.cache_clear()


def test_pipeline_cached_per_tile_and_transposes():
    dev = device.get_device()
    tile = Tile(64, 64, 8)
    plain = gemm_pipeline(dev, tile, False, False)
    assert gemm_pipeline(dev, Tile(64, 64, 8), False, False) is plain
    assert gemm_pipeline(dev, tile, True, False) is not plain
    assert gemm_pipeline(dev, Tile(64, 64, 4), False, False) is not plain
