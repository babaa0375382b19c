"""Stream: records every GPU op of a step into one command encoder; one submit, one readback.

Public API (stable; the GPU layer modules build on it):

    s = Stream(device=None, arena=None)
        arena: an Arena that a repeated step (same shapes each time) passes every time, so its
        buffers and bind groups are reused instead of created (see Arena)
    s.dispatch(shader, arrays, params=None, workgroups=(x, y, z), constants=None, entry="main")
        shader: file name (without .wgsl) of a shader beside this module. Bindings, group 0:
        arrays in order at 0..n-1, then the uniform `params` at binding n when given.
        params: dict packed in order, int/bool -> u32, float -> f32, np.int32 -> i32
        (declare the WGSL struct with the same fields in the same order).
        constants: WGSL `override` values (part of the pipeline cache key).
    s.groups(n, size=256) -> (x, y, 1)   workgroups covering n threads; shaders take the linear
        index as (wg.y * num_workgroups.x + wg.x) * size + lid.x (see elementwise.wgsl)
    s.gemm(a, b, c, m, n, k, trans_a=False, trans_b=False, accumulate=False)
        c (m, n) (+)= op(a) @ op(b); op(a) is a (m, k), or a stored (k, m) when trans_a.
    s.copy(src, dst, count=None, src_offset=0, dst_offset=0)   element offsets and count
    s.fill_zero(a)                     clear a device array
    s.submit()                         send what is recorded (no wait)
    s.finish()                         submit and wait until the device is done (timing)
    s.read(*arrays) -> list[np.ndarray]   submit, then one map of one staging buffer
    s.empty(shape) -> GpuArray         a zero-filled array for this step (arena-aware)
    s.scratch(shape) -> GpuArray       like empty, but uninitialised when it comes from the
                                       arena: only for outputs a kernel writes entirely
    s.upload(x) -> GpuArray            a host array on the device (arena-aware)
Arrays and uniform buffers used by recorded work are kept alive until the next submit.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import wgpu

from loomdist.errors import ConfigError, ShapeError
from loomdist.kernels.gpu.array import GpuArray, empty, to_gpu
from loomdist.kernels.gpu.device import Device, get_device
from loomdist.kernels.gpu.gemm import GemmPlan, encode_gemm

WORKGROUP = 256  # threads per workgroup of the 1-D shaders
UNIFORM_CACHE = 4096  # immutable uniform buffers kept per device, least recently used out


def pack_params(params: dict) -> np.ndarray:
    """Uniform bytes of `params` in order (u32 / f32 / i32 words), padded to 16 bytes."""
    words = []
    for name, v in params.items():
        if isinstance(v, np.int32):
            words.append(np.array(v, np.int32).view(np.uint32))
        elif isinstance(v, (bool, int, np.integer)):
            if v < 0:
                raise ConfigError(f"Stream.dispatch: param {name}={v} is negative; pass "
                                  f"np.int32({v}) for a signed i32 field")
            words.append(np.uint32(v))
        else:
            words.append(np.array(v, np.float32).view(np.uint32))
    words += [np.uint32(0)] * (-len(words) % 4 if words else 4)
    return np.array(words, dtype=np.uint32)


class Arena:
    """Buffers and bind groups of a step that repeats with the same shapes.

    The n-th array a Stream allocates with this arena reuses the n-th buffer of the previous
    step when the size matches (cleared to zero first), so bind groups over the same buffers
    are cached too. Arrays from one step stay valid until the next step with this arena;
    submit a step before recording the next one with it (uploads use queue.write_buffer).
    """

    def __init__(self, max_groups: int = 16384):
        self.buffers: list = []
        self.groups: OrderedDict = OrderedDict()
        self.max_groups = max_groups

    def group(self, key: tuple, make):
        """The bind group for `key` (pipeline, buffers...), made once (LRU-bounded)."""
        group = self.groups.pop(key, None)
        if group is None:
            group = make()
            if len(self.groups) >= self.max_groups:
                self.groups.popitem(last=False)
        self.groups[key] = group
        return group


class Stream:
    """One command encoder that every dispatch of a step records into."""

    def __init__(self, device: Device | None = None, arena: Arena | None = None):
        self.device = device or get_device()
        self._encoder = None
        self._pass = None
        self._keep: list = []
        self._arena, self._next = arena, 0

    @property
    def encoder(self) -> wgpu.GPUCommandEncoder:
        """The open encoder (no compute pass open), for wrappers that record their own."""
        self._end_pass()
        if self._encoder is None:
            self._encoder = self.device.raw.create_command_encoder()
        return self._encoder

    def _compute_pass(self):
        if self._pass is None:
            self._pass = self.encoder.begin_compute_pass()
        return self._pass

    def _end_pass(self) -> None:
        if self._pass is not None:
            self._pass.end()
            self._pass = None

    def groups(self, n: int, size: int = WORKGROUP) -> tuple:
        """Workgroups covering n threads of `size`, split over x and y past the x limit."""
        total = max(1, -(-n // size))
        limit = self.device.limits.get("max-compute-workgroups-per-dimension", 65535)
        if total <= limit:
            return (total, 1, 1)
        return (limit, -(-total // limit), 1)

    def dispatch(self, shader: str, arrays: list, params: dict | None = None,
                 workgroups: tuple = (1, 1, 1), constants: dict | None = None,
                 entry: str = "main") -> None:
        """Record one compute dispatch (see the module docstring for the binding layout)."""
        pipeline = self.device.pipeline(shader, constants, entry)
        buffers = [a.buffer for a in arrays]
        if params is not None:
            buffers.append(self._uniform(pack_params(params)))
        def make():
            return self.device.raw.create_bind_group(
                layout=pipeline.get_bind_group_layout(0),
                entries=[{"binding": i, "resource": {"buffer": b}}
                         for i, b in enumerate(buffers)])

        group = make() if self._arena is None else self._arena.group((pipeline, *buffers), make)
        self._keep += [buffers, group]
        cpass = self._compute_pass()
        cpass.set_pipeline(pipeline)
        cpass.set_bind_group(0, group)
        cpass.dispatch_workgroups(*workgroups)

    def _uniform(self, words: np.ndarray) -> wgpu.GPUBuffer:
        """An immutable uniform buffer holding `words`, shared by equal params (LRU)."""
        cache = self.device.__dict__.setdefault("_param_uniforms", OrderedDict())
        key = words.tobytes()
        buf = cache.pop(key, None)
        if buf is None:
            buf = self.device.raw.create_buffer_with_data(data=words,
                                                          usage=wgpu.BufferUsage.UNIFORM)
            if len(cache) >= UNIFORM_CACHE:
                cache.popitem(last=False)
        cache[key] = buf
        return buf

    def gemm(self, a: GpuArray, b: GpuArray, c: GpuArray, m: int, n: int, k: int,
             trans_a: bool = False, trans_b: bool = False, accumulate: bool = False) -> None:
        """Record c (m, n) = op(a) @ op(b), or c += op(a) @ op(b) when `accumulate`
        (gemm.encode_gemm: k == 0 clears c, or leaves it when accumulating)."""
        self._keep += [a, b, c]
        if m * n * k == 0:
            encode_gemm(self.device, self.encoder, a.buffer, b.buffer, c.buffer, m, n, k,
                        trans_a=trans_a, trans_b=trans_b, accumulate=accumulate)
            return
        if a.size < m * k or b.size < k * n or c.size < m * n:
            raise ShapeError(f"Stream.gemm: operands {a.shape}, {b.shape}, {c.shape} are too "
                             f"small for m={m}, n={n}, k={k}; pass arrays of that size")
        plan = self._gemm_plan(m, n, k, trans_a, trans_b, accumulate)
        buffers = (a.buffer, b.buffer, c.buffer)
        group = (plan.bind_group(*buffers) if self._arena is None
                 else self._arena.group((plan, *buffers), lambda: plan.bind_group(*buffers)))
        self._keep.append(group)
        cpass = self._compute_pass()  # inside the open pass: no pass per GEMM
        cpass.set_pipeline(plan.pipeline)
        cpass.set_bind_group(0, group)
        cpass.dispatch_workgroups(*plan.grid)

    def _gemm_plan(self, *key) -> GemmPlan:
        """gemm.GemmPlan per (m, n, k, trans_a, trans_b, accumulate), cached per device."""
        plans = self.device.__dict__.setdefault("_stream_gemm_plans", {})
        if key not in plans:
            plans[key] = GemmPlan(self.device, *key)
        return plans[key]

    def copy(self, src: GpuArray, dst: GpuArray, count: int | None = None,
             src_offset: int = 0, dst_offset: int = 0) -> None:
        """Record a copy of `count` floats (default: all of src) between device arrays."""
        count = src.size - src_offset if count is None else count
        if count:
            self.encoder.copy_buffer_to_buffer(src.buffer, 4 * src_offset, dst.buffer,
                                               4 * dst_offset, 4 * count)
            self._keep += [src, dst]

    def fill_zero(self, a: GpuArray) -> None:
        """Record a clear of `a` to 0.0."""
        if a.size:
            self.encoder.clear_buffer(a.buffer, 0, a.nbytes)
            self._keep.append(a)

    def submit(self) -> None:
        """Send the recorded work to the queue (does not wait)."""
        self._end_pass()
        if self._encoder is not None:
            self.device.raw.queue.submit([self._encoder.finish()])
            self._encoder = None
        self._keep = []

    def finish(self) -> None:
        """Submit and wait for the device (a 4-byte readback: wgpu-py 0.32's
        on_submitted_work_done_sync fails in its cffi callback on wgpu-native)."""
        if getattr(self.device, "_fence", None) is None:
            self.device._fence = empty((1,), self.device, "Stream.finish")
        self.submit()
        self.device.raw.queue.read_buffer(self.device._fence.buffer, 0, 4)

    def read(self, *arrays: GpuArray) -> list[np.ndarray]:
        """Submit what is recorded, copy `arrays` into one staging buffer, map it once."""
        sizes = [a.size for a in arrays]
        total = sum(sizes)
        if total == 0:
            self.submit()
            return [np.zeros(a.shape, np.float32) for a in arrays]
        staging = self.device.raw.create_buffer(
            size=4 * total, usage=wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST)
        enc, at = self.encoder, 0
        for a in arrays:
            if a.size:
                enc.copy_buffer_to_buffer(a.buffer, 0, staging, 4 * at, a.nbytes)
            at += a.size
        self._keep.append(list(arrays))
        self.submit()
        staging.map_sync(wgpu.MapMode.READ)
        flat = np.frombuffer(staging.read_mapped(), dtype=np.float32).copy()
        staging.unmap()
        staging.destroy()
        offsets = np.cumsum([0] + sizes)
        return [flat[o:o + s].reshape(a.shape) for a, o, s in zip(arrays, offsets, sizes)]

    def empty(self, shape, where: str = "gpu.Stream") -> GpuArray:
        """A zero-filled device array for this step (from the arena when there is one)."""
        return self._take(shape, where, clear=True)

    def scratch(self, shape, where: str = "gpu.Stream") -> GpuArray:
        """An array whose every value the next kernel writes (not cleared when reused)."""
        return self._take(shape, where, clear=False)

    def _take(self, shape, where: str, clear: bool) -> GpuArray:
        if self._arena is None:
            return empty(shape, self.device, where)
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        pool, i = self._arena.buffers, self._next
        self._next += 1
        if i < len(pool) and pool[i].size == math.prod(shape):
            a = pool[i].reshape(shape)
            if clear:
                self.fill_zero(a)
            return a
        del pool[i:]  # the step diverged from the last one: rebuild from here
        pool.append(empty(shape, self.device, where))
        return pool[i]

    def upload(self, x, where: str = "gpu.Stream.upload") -> GpuArray:
        """`x` as float32 on the device (into an arena buffer when there is one)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self._arena is None:
            return to_gpu(x, self.device, where)
        a = self._take(x.shape, where, clear=False)  # written before this step's commands
        if x.size:
            self.device.raw.queue.write_buffer(a.buffer, 0, x)
        return a

