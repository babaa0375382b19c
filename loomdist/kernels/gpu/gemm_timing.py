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


def _encode_all(dev: Device, encode: Callable, repeats: int, queries) -> tuple:
    """A finished command buffer of `repeats` passes (timestamped when `queries`)."""
    encoder, resolved = dev.raw.create_command_encoder(), None
    for r in range(repeats):
        writes = None
        if queries is not None:
            writes = {"query_set": queries, "beginning_of_pass_write_index": 2 * r,
                      "end_of_pass_write_index": 2 * r + 1}
        encode(encoder, writes)
    if queries is not None:
        resolved = dev.raw.create_buffer(
            size=16 * repeats, usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC)
        encoder.resolve_query_set(queries, 0, 2 * repeats, resolved, 0)
    return encoder.finish(), resolved


def _trial(dev: Device, encode: Callable, repeats: int, queries) -> dict:
    commands, resolved = _encode_all(dev, encode, repeats, queries)
    _wait(dev)
    start = time.perf_counter()
    dev.raw.queue.submit([commands])
    _wait(dev)
    out = {"wall_s": (time.perf_counter() - start) / repeats}
    if resolved is not None:
        ticks = np.frombuffer(dev.raw.queue.read_buffer(resolved), dtype=np.uint64)
        ns = ticks.astype(np.float64).reshape(repeats, 2)
        out["gpu_s"] = float(ns[-1, 1] - ns[0, 0]) / 1e9 / repeats
        out["gpu_min_s"] = float((ns[:, 1] - ns[:, 0]).min()) / 1e9
    return out


def time_dispatches(dev: Device, encode: Callable, repeats: int, trials: int = 3,
                    warmup_s: float = 0.5) -> dict:
    """Seconds per dispatch of `encode(encoder, timestamp_writes)`, `repeats` in one submit.

    First submits untimed batches for `warmup_s` (GPU clocks ramp up from idle), then runs
    `trials` timed submits. Returns the median trial's "wall_s" (perf_counter around
    submit-and-wait, per dispatch) and, with the timestamp feature, "gpu_s" (median of first
    pass start to last pass end, per dispatch) and "gpu_min_s" (fastest single pass).
    """
    start = time.perf_counter()
    while time.perf_counter() - start < warmup_s:
        _trial(dev, encode, repeats, None)
    queries = None
    if TIMESTAMP in dev.features:
        queries = dev.raw.create_query_set(type="timestamp", count=2 * repeats)
    runs = [_trial(dev, encode, repeats, queries) for _ in range(trials)]
    out = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
    if "gpu_min_s" in out:
        out["gpu_min_s"] = min(r["gpu_min_s"] for r in runs)
    return out
