"""encode_gemm on device buffers (accumulate, k == 0, error branches) and every GEMM tile."""

import numpy as np
import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from loomdist.errors import ConfigError, ShapeError  # noqa: E402
from loomdist.kernels.gpu.device import get_device  # noqa: E402
from loomdist.kernels.gpu.gemm import (  # noqa: E402
    STORAGE,
    can_fetch_vec4,
    choose_tile,
    encode_gemm,
    matmul,
    read_matrix,
    upload,
)
from loomdist.kernels.gpu.gemm_codegen import Tile, shader_source  # noqa: E402

pytestmark = pytest.mark.gpu

RTOL, ATOL = 1e-5, 1e-5
TILES = [Tile(bm, bn, bk) for bm in (64, 128) for bn in (64, 128) for bk in (4, 8, 16)]
VEC4_TILES = [t for t in TILES if t.vec4_fetch()] + [Tile(128, 128, 8, warp=True)]
TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]
COPY = wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST


def _fits(tile: Tile) -> bool:
    return tile.shared_bytes <= get_device().limits["max-compute-workgroup-storage-size"]


def _run(a, b, c0, m, n, k, trans_a=False, trans_b=False, accumulate=False):
    """encode_gemm on fresh buffers holding a, b and c0; returns C read back."""
    dev = get_device()
    c_buf = upload(dev, c0, "c", STORAGE | COPY)
    encoder = dev.raw.create_command_encoder()
    encode_gemm(dev, encoder, upload(dev, a, "a"), upload(dev, b, "b"), c_buf, m, n, k,
                trans_a, trans_b, accumulate)
    dev.raw.queue.submit([encoder.finish()])
    return read_matrix(dev, c_buf, m, n)


@pytest.mark.parametrize("tile", TILES + [Tile(64, 128, 4, warp=True)], ids=lambda t: t.name)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
def test_every_tile_matches_numpy_on_ragged_shapes(tile, trans_a, trans_b):
    if not _fits(tile):
        pytest.skip(f"tile {tile.name} needs more workgroup memory than this adapter has")
    rng = np.random.default_rng(1)
    m, k, n = 131, 37, 197  # edges in every dimension, K not a multiple of any bk
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    c = matmul(np.ascontiguousarray(a.T) if trans_a else a,
               np.ascontiguousarray(b.T) if trans_b else b, trans_a, trans_b, tile=tile)
    np.testing.assert_allclose(c, a @ b, rtol=RTOL, atol=ATOL * np.sqrt(k))


@pytest.mark.parametrize("tile", VEC4_TILES, ids=lambda t: t.name)
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_vec4_fetch_matches_numpy_on_aligned_ragged_shapes(tile, trans_a, trans_b):
    if not _fits(tile):
        pytest.skip(f"tile {tile.name} needs more workgroup memory than this adapter has")
    rng = np.random.default_rng(4)
    m, k, n = 132, 36, 196  # multiples of 4, not of any tile
    assert can_fetch_vec4(tile, m, n, k, trans_a, trans_b)
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    c = matmul(np.ascontiguousarray(a.T) if trans_a else a,
               np.ascontiguousarray(b.T) if trans_b else b, trans_a, trans_b, tile=tile)
    np.testing.assert_allclose(c, a @ b, rtol=RTOL, atol=ATOL * np.sqrt(k))


def test_vec4_fetch_only_for_aligned_rows_and_whole_vec4_shares():
    big = Tile(128, 128, 8)
    assert can_fetch_vec4(big, 8, 8, 8, False, False)
    assert not can_fetch_vec4(big, 8, 8, 6, False, False)  # K rows of A not 4-aligned
    assert can_fetch_vec4(big, 8, 8, 6, True, False)  # A stored (K, M): rows of M
    assert not can_fetch_vec4(big, 8, 6, 8, False, False)  # B rows of N
    assert not can_fetch_vec4(Tile(64, 64, 8), 8, 8, 8, False, False)  # 2 floats a thread
    with pytest.raises(ConfigError, match=r"shader_source: tile 64x64x8 cannot fetch whole"):
        shader_source(Tile(64, 64, 8), False, False, vec4=True)


def test_tile_parse_reads_sizes_and_warp_layout():
    assert Tile.parse("128x64x16") == Tile(128, 64, 16)
    assert Tile.parse("128x128x8w") == Tile(128, 128, 8, warp=True)
    assert Tile(128, 128, 8, warp=True).name == "128x128x8w"


@pytest.mark.parametrize("trans_a,trans_b", [(False, True), (True, False)])
def test_accumulate_adds_to_c(trans_a, trans_b):
    rng = np.random.default_rng(2)
    m, k, n = 70, 20, 66
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    c0 = rng.standard_normal((m, n), np.float32)
    c = _run(np.ascontiguousarray(a.T) if trans_a else a,
             np.ascontiguousarray(b.T) if trans_b else b, c0, m, n, k, trans_a, trans_b,
             accumulate=True)
    np.testing.assert_allclose(c, c0 + a @ b, rtol=RTOL, atol=ATOL * np.sqrt(k))


def test_buffers_larger_than_operands_use_their_start():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((40, 9), np.float32), rng.standard_normal((9, 5), np.float32)
    c = _run(np.concatenate([a.ravel(), np.ones(7, np.float32)]), b,
             np.zeros(300, np.float32), 40, 5, 9)
    np.testing.assert_allclose(c, a @ b, rtol=RTOL, atol=ATOL * 3)


@pytest.mark.parametrize("accumulate", [False, True])
def test_k_zero_clears_or_keeps_c(accumulate):
    c0 = np.full((3, 4), 2.5, np.float32)
    dummy = np.ones(1, np.float32)  # k = 0: the operands are never read
    c = _run(dummy, dummy, c0, 3, 4, 0, accumulate=accumulate)
    np.testing.assert_array_equal(c, c0 if accumulate else np.zeros_like(c0))


def test_small_buffer_raises_shape_error():
    with pytest.raises(ShapeError, match=r"encode_gemm: b_buf holds 24 bytes, fewer than its "
                                         r"4x3 float32 needs \(48\)"):
        _run(np.ones((2, 3), np.float32), np.ones(6, np.float32), np.zeros(8, np.float32),
             2, 4, 3, trans_b=True)


def test_buffer_without_storage_usage_raises_config_error():
    dev = get_device()
    c_buf = dev.raw.create_buffer(size=64, usage=COPY)
    with pytest.raises(ConfigError, match=r"encode_gemm: c_buf lacks STORAGE usage"):
        encode_gemm(dev, dev.raw.create_command_encoder(), c_buf, c_buf, c_buf, 2, 2, 2)


def test_grid_beyond_limit_raises_config_error(monkeypatch):
    dev = get_device()
    monkeypatch.setitem(dev.limits, "max-compute-workgroups-per-dimension", 1)
    with pytest.raises(ConfigError, match=r"encode_gemm: \(2, 1\) workgroups exceed "
                                          r"max-compute-workgroups-per-dimension = 1"):
        matmul(np.ones((3, 2), np.float32), np.ones((2, 100), np.float32), tile=Tile(64, 64, 4))


def test_tile_beyond_workgroup_memory_raises_config_error(monkeypatch):
    dev = get_device()
    monkeypatch.setitem(dev.limits, "max-compute-workgroup-storage-size", 1000)
    with pytest.raises(ConfigError, match=r"tile 64x64x4 needs 4352 bytes of workgroup memory"):
        matmul(np.ones((3, 2), np.float32), np.ones((2, 4), np.float32), tile=Tile(64, 64, 4))


def test_unsupported_tile_raises_config_error():
    with pytest.raises(ConfigError, match=r"gemm Tile: unsupported tile \(32x64x8\)"):
        Tile(32, 64, 8)


def test_choose_tile_by_grid_alignment_and_memory(monkeypatch):
    dev = get_device()
    monkeypatch.setitem(dev.limits, "max-compute-workgroup-storage-size", 32768)
    assert choose_tile(dev, 100, 100, 100) == Tile(64, 64, 16)  # rows 4-aligned: vec4
    assert choose_tile(dev, 100, 100, 99) == Tile(64, 64, 8)
    assert choose_tile(dev, 100, 100, 99, trans_a=True) == Tile(64, 64, 16)  # A rows: M
    assert choose_tile(dev, 100, 100, 99, trans_a=True, trans_b=True) == Tile(64, 64, 8)
    assert choose_tile(dev, 4096, 4096, 7) == Tile(128, 128, 8)
    monkeypatch.setitem(dev.limits, "max-compute-workgroup-storage-size", 16384)
    assert choose_tile(dev, 4096, 4096, 4096) == Tile(128, 128, 4)
    assert choose_tile(dev, 100, 100, 100) == Tile(64, 64, 8)


def test_generated_source_has_no_placeholders_left():
    source = shader_source(Tile(128, 64, 16), True, False)
    assert "$" not in source and "acc7_0" in source and "acc0_1" not in source
