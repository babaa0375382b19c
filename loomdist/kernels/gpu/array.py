"""GpuArray: a float32 tensor resident in a wgpu storage buffer (shape on the host).

Public API (stable; the GPU layer modules build on it):

    GpuArray(buffer, shape, device)   .buffer (STORAGE|COPY_SRC|COPY_DST), .shape, .size,
                                      .nbytes, .device, .reshape(shape) (same buffer),
                                      .numpy() (one readback; tests and lazy reads only)
    to_gpu(x, device=None)            upload a numpy array (cast to float32)
    empty(shape, device=None)         uninitialised device array
    zeros(shape, device=None)         zero-filled device array

A zero-element array still owns a 4-byte buffer, since wgpu cannot create or bind empty
buffers; kernels are never dispatched over it. Every allocation is checked against the
adapter's limits (ConfigError naming the limit and the size).
"""

from __future__ import annotations

import math

import numpy as np
import wgpu

from loomdist.errors import ShapeError
from loomdist.kernels.gpu.device import Device, get_device

USAGE = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST


class GpuArray:
    """A float32 array on the device. Operations record into a Stream; nothing runs here."""

    def __init__(self, buffer: wgpu.GPUBuffer, shape: tuple, device: Device):
        self.buffer = buffer
        self.shape = tuple(int(s) for s in shape)
        self.device = device

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return 4 * self.size

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def reshape(self, *shape) -> GpuArray:
        """The same buffer seen with another shape (one -1 is inferred)."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        if -1 in shape:
            known = math.prod(s for s in shape if s != -1)
            shape = tuple(self.size // max(known, 1) if s == -1 else s for s in shape)
        if math.prod(shape) != self.size:
            raise ShapeError(f"GpuArray.reshape: cannot view {self.shape} ({self.size} values) "
                             f"as {shape}; keep the number of values")
        return GpuArray(self.buffer, shape, self.device)

    def numpy(self) -> np.ndarray:
        """A host copy (one readback; waits for the queue)."""
        if self.size == 0:
            return np.zeros(self.shape, np.float32)
        data = self.device.raw.queue.read_buffer(self.buffer, 0, self.nbytes)
        return np.frombuffer(data, dtype=np.float32).reshape(self.shape).copy()

    def __repr__(self) -> str:
        return f"GpuArray(shape={self.shape})"


def _allocate(nbytes: int, where: str, device: Device) -> wgpu.GPUBuffer:
    device.check_size(nbytes, where)
    return device.raw.create_buffer(size=max(nbytes, 4), usage=USAGE)


def empty(shape, device: Device | None = None, where: str = "gpu.empty") -> GpuArray:
    """An uninitialised float32 device array of `shape`."""
    device = device or get_device()
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return GpuArray(_allocate(4 * math.prod(shape), where, device), shape, device)


def zeros(shape, device: Device | None = None, where: str = "gpu.zeros") -> GpuArray:
    """A zero-filled float32 device array (wgpu zero-initialises new buffers)."""
    return empty(shape, device, where)


def to_gpu(x, device: Device | None = None, where: str = "gpu.to_gpu") -> GpuArray:
    """Upload `x` (any shape, cast to float32, C order) to a new device array."""
    device = device or get_device()
    x = np.ascontiguousarray(x, dtype=np.float32)
    buf = _allocate(x.nbytes, where, device)
    if x.size:
        device.raw.queue.write_buffer(buf, 0, x)
    return GpuArray(buf, x.shape, device)
