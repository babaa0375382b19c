"""Tiled float32 GEMM on the GPU (gemm.wgsl): `matmul` one-shot, `Gemm` device-resident."""

from __future__ import annotations

import numpy as np
import wgpu

from loomdist.errors import ShapeError
from loomdist.kernels.gpu.device import Device, get_device

BLOCK = 64  # rows and columns of C per workgroup (BM = BN in gemm.wgsl)
STORAGE = wgpu.BufferUsage.STORAGE


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


class Gemm:
    """C = op(A) @ op(B) with A, B and C resident on the device.

    `encode` records one dispatch into a command encoder (call it as often as needed, e.g. to
    time repeats in one submit); `read` copies C back as an (M, N) float32 array.
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, trans_a: bool = False,
                 trans_b: bool = False, dev: Device | None = None):
        self.dev = dev or get_device()
        self.m, self.n, self.k = gemm_shape(a.shape, b.shape, trans_a, trans_b)
        self.pipeline = self.dev.pipeline(
            "gemm", {"TRANS_A": int(trans_a), "TRANS_B": int(trans_b)})
        # Kept as attributes so the buffers live as long as the bind group that uses them.
        self.a = self._upload(a, "gemm A")
        self.b = self._upload(b, "gemm B")
        self.c = self._output(self.m * self.n * 4)
        params = np.array([self.m, self.n, self.k, 0], dtype=np.uint32)
        self.params = self.dev.raw.create_buffer_with_data(
            data=params, usage=wgpu.BufferUsage.UNIFORM)
        self.bind_group = self._bind_group()

    def _upload(self, x: np.ndarray, where: str) -> wgpu.GPUBuffer:
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.dev.check_size(x.nbytes, where)
        return self.dev.raw.create_buffer_with_data(data=x, usage=STORAGE)

    def _output(self, nbytes: int) -> wgpu.GPUBuffer:
        self.dev.check_size(nbytes, "gemm C")
        return self.dev.raw.create_buffer(size=nbytes, usage=STORAGE | wgpu.BufferUsage.COPY_SRC)

    def _bind_group(self) -> wgpu.GPUBindGroup:
        buffers = (self.a, self.b, self.c, self.params)
        return self.dev.raw.create_bind_group(
            layout=self.pipeline.get_bind_group_layout(0),
            entries=[{"binding": i, "resource": {"buffer": buf}} for i, buf in enumerate(buffers)],
        )

    def encode(self, encoder: wgpu.GPUCommandEncoder) -> None:
        """Record one GEMM dispatch into `encoder`."""
        cpass = encoder.begin_compute_pass()
        cpass.set_pipeline(self.pipeline)
        cpass.set_bind_group(0, self.bind_group)
        cpass.dispatch_workgroups(-(-self.n // BLOCK), -(-self.m // BLOCK), 1)
        cpass.end()

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
        data = self.dev.raw.queue.read_buffer(self.c)
        return np.frombuffer(data, dtype=np.float32).reshape(self.m, self.n).copy()


def matmul(a: np.ndarray, b: np.ndarray, trans_a: bool = False,
           trans_b: bool = False) -> np.ndarray:
    """op(a) @ op(b) in float32 on the GPU: upload, one dispatch, one readback.

    Args:
        a: (M, K), or (K, M) when `trans_a`.
        b: (K, N), or (N, K) when `trans_b`.
    Returns:
        (M, N) float32 array.
    Raises:
        ShapeError: operands not 2-D or inner dimensions differ.
        ConfigError: no adapter, or an operand larger than the adapter's buffer limits.
    """
    m, n, k = gemm_shape(np.shape(a), np.shape(b), trans_a, trans_b)
    if m * n * k == 0:  # wgpu cannot bind empty buffers; the product is all zeros
        return np.zeros((m, n), dtype=np.float32)
    gemm = Gemm(np.asarray(a), np.asarray(b), trans_a, trans_b)
    encoder = gemm.dev.raw.create_command_encoder()
    gemm.encode(encoder)
    gemm.dev.raw.queue.submit([encoder.finish()])
    return gemm.read()
