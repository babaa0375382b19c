"""Timing of a Network on the wgpu backend, device-resident (for `loomdist bench layers`).

The input and the output gradient are uploaded once; a forward records the walk into one
Stream and waits for the device; forward+backward also records the backward pass. Times are
wall-clock medians in ms and include the Python recording of every dispatch.
"""

from __future__ import annotations

import numpy as np

from loomdist.kernels.gpu import layers as registry
from loomdist.kernels.gpu.array import to_gpu
from loomdist.kernels.gpu.stream import Stream


def runs_on_gpu(spec) -> bool:
    """Whether the spec (and its branches) has GPU modules."""
    return registry.runs_on_gpu(spec)


def time_network(net, x: np.ndarray, median_ms, repeats: int, warmup: int):
    """(first_call_ms, forward_ms, fwd_bwd_ms) of `net` (already on the GPU) on x."""
    import time
    runner = net.runner
    runner.push()
    xg = to_gpu(x, runner.device, "bench x")
    start = time.perf_counter()
    s = Stream(runner.device)
    y = runner.record_forward(s, xg)
    s.finish()
    first = (time.perf_counter() - start) * 1e3
    dy = to_gpu(np.ones(y.shape, np.float32), runner.device, "bench dy")

    def fwd():
        stream = Stream(runner.device, runner.arena("bench forward"))
        runner.record_forward(stream, xg)
        stream.finish()

    def fwd_bwd():
        stream = Stream(runner.device, runner.arena("bench fwd_bwd"))
        runner.grads = [{} for _ in runner.grads]
        runner.record_forward(stream, xg)
        runner.record_backward(stream, dy)
        stream.finish()

    return first, median_ms(fwd, repeats, warmup), median_ms(fwd_bwd, repeats, warmup)
