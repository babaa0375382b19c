"""Tiled float32 GEMM on the GPU (gemm.wgsl, unrolled by gemm_codegen).

`encode_gemm` records C = op(A) @ op(B) (+ C) on device buffers into a command encoder;
`Gemm` keeps its own operands resident (for repeated dispatches); `matmul` is one-shot numpy.
"""

from __future__ import annotations

import numpy as np
import wgpu

from loomdist.errors import ConfigError, ShapeError
from loomdist.kernels.gpu.device import Device, get_device
from loomdist.kernels.gpu.gemm_codegen import Tile, shader_source

STORAGE = wgpu.BufferUsage.STORAGE
BIG_GRID = 256  # workgroups of 128x128 tiles from which the big tile keeps a GPU busy


def gemm_shape(a_shape: tuple, b_shape: tuple, trans_a: bool, trans_b: bool) -> tuple:
    """(M, N, K) of op(A) @ op(B); raises ShapeError when the operands do not chain."""
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise ShapeError(f"gemm: operands must be 2-D (a {a_shape}, b {b_shape}); reshape them")
    m, ka = a_shape[::-1] if trans_a else a_shape
    kb, n = b_shape[::-1] if trans_b else b_shape
    if ka != kb:
        raise ShapeError(
            f"gemm: inner dimensions differ (op(a) {m}x{ka}, op(b) {kb}x{n}, trans_a={trans_a}, "
            f"trans_b={trans_b}); pass operands whose K agree"
        )
    return m, n, ka


def choose_tile(dev: Device, m: int, n: int, k: int, trans_a: bool = False,
                trans_b: bool = False) -> Tile:
    """The fastest tile measured on an H200 (docs/benchmarks/gemm-h200.json) that fits.

    128x128x8 when C has enough such tiles to fill the GPU; else 64x64, with bk 16 where
    both operands' rows are 4-aligned (whole-vec4 fetches) and 8 otherwise. Smaller bk
    where the adapter's workgroup memory is short.
    """
    limit = dev.limits.get("max-compute-workgroup-storage-size", 16384)
    if -(-m // 128) * -(-n // 128) >= BIG_GRID:
        tiles = [Tile(128, 128, 8), Tile(128, 128, 4)]
    else:
        tiles = [Tile(64, 64, 8), Tile(64, 64, 4)]
        if can_fetch_vec4(Tile(64, 64, 16), m, n, k, trans_a, trans_b):
            tiles.insert(0, Tile(64, 64, 16))
    return next((t for t in tiles if t.shared_bytes <= limit), tiles[-1])


def gemm_pipeline(dev: Device, tile: Tile, trans_a: bool, trans_b: bool, vec4: bool = False):
    """The compiled pipeline of `tile` for these transposes and fetch width (cached on `dev`)."""
    name = f"gemm[{tile.name},ta={int(trans_a)},tb={int(trans_b)},v4={int(vec4)}]"
    return dev.pipeline_from_code(name, shader_source(tile, trans_a, trans_b, vec4))


def can_fetch_vec4(tile: Tile, m: int, n: int, k: int, trans_a: bool, trans_b: bool) -> bool:
    """Whether the tile fetches whole vec4s and both operands' stored rows are 4-aligned."""
    rows = (m if trans_a else k, k if trans_b else n)  # stored row lengths of A and B
    return tile.vec4_fetch() and all(r % 4 == 0 for r in rows)


def _check_buffer(buf: wgpu.GPUBuffer, floats: int, what: str, shape: str) -> None:
    if not buf.usage & STORAGE:
        raise ConfigError(f"encode_gemm: {what} lacks STORAGE usage (usage {buf.usage}); "
                          "create it with wgpu.BufferUsage.STORAGE")
    if buf.size < 4 * floats:
        raise ShapeError(f"encode_gemm: {what} holds {buf.size} bytes, fewer than its "
                         f"{shape} float32 needs ({4 * floats}); pass a larger buffer")


def _grid(dev: Device, tile: Tile, m: int, n: int) -> tuple[int, int, int]:
    grid = (-(-n // tile.bn), -(-m // tile.bm), 1)
    limit = dev.limits["max-compute-workgroups-per-dimension"]
    if max(grid) > limit:
        raise ConfigError(f"encode_gemm: {grid[:2]} workgroups exceed "
                          f"max-compute-workgroups-per-dimension = {limit} (m={m}, n={n}); "
                          "split the product into row or column blocks")
    return grid


class GemmPlan:
    """Pipeline, workgroup grid and parameters of one (m, n, k, transposes, accumulate)."""

    def __init__(self, dev: Device, m: int, n: int, k: int, trans_a: bool = False,
                 trans_b: bool = False, accumulate: bool = False, tile: Tile | None = None):
        self.dev, self.m, self.n, self.k = dev, m, n, k
        self.tile = tile or choose_tile(dev, m, n, k, trans_a, trans_b)
        if self.tile.shared_bytes > dev.limits["max-compute-workgroup-storage-size"]:
            raise ConfigError(
                f"encode_gemm: tile {self.tile.name} needs {self.tile.shared_bytes} bytes of "
                f"workgroup memory > max-compute-workgroup-storage-size = "
                f"{dev.limits['max-compute-workgroup-storage-size']}; use a smaller tile")
        self.grid = _grid(dev, self.tile, m, n)
        self.vec4 = can_fetch_vec4(self.tile, m, n, k, trans_a, trans_b)
        self.pipeline = gemm_pipeline(dev, self.tile, trans_a, trans_b, self.vec4)
        self.params = dev.uniform_u32((m, n, k, int(accumulate)))

    def bind_group(self, a_buf, b_buf, c_buf) -> wgpu.GPUBindGroup:
        entries = [{"binding": i, "resource": {"buffer": buf}}
                   for i, buf in enumerate((a_buf, b_buf, c_buf, self.params))]
        return self.dev.raw.create_bind_group(
            layout=self.pipeline.get_bind_group_layout(0), entries=entries)

    def dispatch(self, encoder, bind_group, timestamp_writes: dict | None = None) -> None:
        """Record one compute pass running this GEMM with `bind_group`."""
        cpass = encoder.begin_compute_pass(timestamp_writes=timestamp_writes)
        cpass.set_pipeline(self.pipeline)
        cpass.set_bind_group(0, bind_group)
        cpass.dispatch_workgroups(*self.grid)
        cpass.end()


def encode_gemm(device: Device, encoder: wgpu.GPUCommandEncoder, a_buf: wgpu.GPUBuffer,
                b_buf: wgpu.GPUBuffer, c_buf: wgpu.GPUBuffer, m: int, n: int, k: int,
                trans_a: bool = False, trans_b: bool = False, accumulate: bool = False,
                tile: Tile | None = None) -> None:
    """Record C (m x n) = op(A) @ op(B) (+ C when `accumulate`) into `encoder`.

    Buffers hold row-major float32: A is (m, k), or (k, m) when `trans_a`; B is (k, n), or
    (n, k) when `trans_b`; C is (m, n); buffers may be larger (their start is used) and C must
    be a different buffer from A and B (wgpu refuses a buffer bound both read-only and
    writable). With k == 0, C is cleared (C needs COPY_DST usage) or, when accumulating, left
    as it is. `tile` overrides the automatic tile choice. Each call makes one bind group; the
    pipeline and the (m, n, k, accumulate) uniform are cached on `device`.
    Raises:
        ShapeError: a buffer smaller than its operand.
        ConfigError: a buffer without STORAGE usage, or a grid or tile beyond the limits.
    """
    _check_buffer(c_buf, m * n, "c_buf", f"{m}x{n}")
    if m * n == 0:
        return
    if k == 0:
        if not accumulate:
            encoder.clear_buffer(c_buf, 0, 4 * m * n)
        return
    _check_buffer(a_buf, m * k, "a_buf", f"{k}x{m}" if trans_a else f"{m}x{k}")
    _check_buffer(b_buf, k * n, "b_buf", f"{n}x{k}" if trans_b else f"{k}x{n}")
    plan = GemmPlan(device, m, n, k, trans_a, trans_b, accumulate, tile)
    plan.dispatch(encoder, plan.bind_group(a_buf, b_buf, c_buf))


def upload(dev: Device, x: np.ndarray, where: str, usage: int = STORAGE) -> wgpu.GPUBuffer:
    """A new storage buffer holding `x` as C-contiguous float32 (size-checked)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    dev.check_size(x.nbytes, where)
    return dev.raw.create_buffer_with_data(data=x, usage=usage)


def read_matrix(dev: Device, buf: wgpu.GPUBuffer, rows: int, cols: int) -> np.ndarray:
    """A (rows, cols) float32 copy of the start of `buf` (one readback)."""
    data = dev.raw.queue.read_buffer(buf, 0, 4 * rows * cols)
    return np.frombuffer(data, dtype=np.float32).reshape(rows, cols).copy()


class Gemm:
    """C = op(A) @ op(B) with A, B and C resident on the device.

    `encode` records one dispatch into a command encoder (call it as often as needed, e.g. to
    time repeats in one submit); `read` copies C back as an (M, N) float32 array.
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, trans_a: bool = False,
                 trans_b: bool = False, dev: Device | None = None, tile: Tile | None = None):
        self.dev = dev or get_device()
        self.m, self.n, self.k = gemm_shape(a.shape, b.shape, trans_a, trans_b)
        self.plan = GemmPlan(self.dev, self.m, self.n, self.k, trans_a, trans_b, tile=tile)
        # Kept as attributes so the buffers live as long as the bind group that uses them.
        self.a = upload(self.dev, a, "gemm A")
        self.b = upload(self.dev, b, "gemm B")
        self.dev.check_size(4 * self.m * self.n, "gemm C")
        self.c = self.dev.raw.create_buffer(
            size=4 * self.m * self.n, usage=STORAGE | wgpu.BufferUsage.COPY_SRC)
        self.bind_group = self.plan.bind_group(self.a, self.b, self.c)

    def encode(self, encoder: wgpu.GPUCommandEncoder,
               timestamp_writes: dict | None = None) -> None:
        """Record one GEMM dispatch into `encoder` (optionally timestamped)."""
        self.plan.dispatch(encoder, self.bind_group, timestamp_writes)

    def run(self, repeats: int = 1) -> None:
        """Submit `repeats` dispatches in one command buffer and wait for them."""
        encoder = self.dev.raw.create_command_encoder()
        for _ in range(repeats):
            self.encode(encoder)
        self.dev.raw.queue.submit([encoder.finish()])
        # A 4-byte readback waits for the submit; wgpu-py 0.32's on_submitted_work_done_sync
        # fails in its callback signature (TypeError from cffi) on wgpu-native.
        self.dev.raw.queue.read_buffer(self.c, 0, 4)

    def read(self) -> np.ndarray:
        """C as a new (M, N) float32 array (one readback)."""
        return read_matrix(self.dev, self.c, self.m, self.n)


def matmul(a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False,
           tile: Tile | None = None) -> np.ndarray:
    """op(a) @ op(b) in float32 on the GPU: upload, one dispatch, one readback.

    Args:
        a: (M, K), or (K, M) when `trans_a`.
        b: (K, N), or (N, K) when `trans_b`.
        tile: overrides the automatic tile choice (tests use it to reach every variant).
    Returns:
        (M, N) float32 array.
    Raises:
        ShapeError: operands not 2-D or inner dimensions differ.
        ConfigError: no adapter, or an operand larger than the adapter's buffer limits.
    """
    m, n, k = gemm_shape(np.shape(a), np.shape(b), trans_a, trans_b)
    if m * n * k == 0:  # wgpu cannot bind empty buffers; the product is all zeros
        return np.zeros((m, n), dtype=np.float32)
    dev = get_device()
    a_buf, b_buf = upload(dev, a, "gemm A"), upload(dev, b, "gemm B")
    dev.check_size(4 * m * n, "gemm C")
    c_buf = dev.raw.create_buffer(size=4 * m * n, usage=STORAGE | wgpu.BufferUsage.COPY_SRC)
    encoder = dev.raw.create_command_encoder()
    encode_gemm(dev, encoder, a_buf, b_buf, c_buf, m, n, k, trans_a, trans_b, tile=tile)
    dev.raw.queue.submit([encoder.finish()])
    return read_matrix(dev, c_buf, m, n)
