"""Timing of repeated GPU dispatches: wall clock around one submit, and the GPU's own
timestamps (when the device has the timestamp-query feature) to check the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import wgpu

from loomdist.kernels.gpu.device import Device

TIMESTAMP = "timestamp-query"


def _wait(dev: Device) -> None:
    """Block until all submitted work is done (a 4-byte readback through a tiny buffer)."""
    probe = dev.raw.create_buffer(size=4, usage=wgpu.BufferUsage.COPY_SRC)
    dev.raw.queue.read_buffer(probe, 0, 4)


def time_dispatches(dev: Device, encode: Callable, repeats: int) -> dict:
    """Seconds per dispatch of `encode(encoder, timestamp_writes)`, repeated in one submit.

    Returns {"wall_s": ...} from perf_counter around encode-submit-wait, and, with the
    timestamp feature, "gpu_s" (first pass start to last pass end, per dispatch) and
    "gpu_min_s" (the fastest single pass).
    """
    timed = TIMESTAMP in dev.features
    queries = dev.raw.create_query_set(type="timestamp", count=2 * repeats) if timed else None
    encoder = dev.raw.create_command_encoder()
    for r in range(repeats):
        writes = None
        if timed:
            writes = {"query_set": queries, "beginning_of_pass_write_index": 2 * r,
                      "end_of_pass_write_index": 2 * r + 1}
        encode(encoder, writes)
    if timed:
        resolved = dev.raw.create_buffer(
            size=16 * repeats, usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC)
        encoder.resolve_query_set(queries, 0, 2 * repeats, resolved, 0)
    _wait(dev)
    start = time.perf_counter()
    dev.raw.queue.submit([encoder.finish()])
    _wait(dev)
    out = {"wall_s": (time.perf_counter() - start) / repeats}
    if timed:
        ticks = np.frombuffer(dev.raw.queue.read_buffer(resolved), dtype=np.uint64)
        ns = ticks.astype(np.float64).reshape(repeats, 2)
        out["gpu_s"] = float(ns[-1, 1] - ns[0, 0]) / 1e9 / repeats
        out["gpu_min_s"] = float((ns[:, 1] - ns[:, 0]).min()) / 1e9
    return out
