"""Parallel on the GPU: branches through the GPU registry (nested too), four combine modes.

    concat        branch-major over the whole flat buffer (LOOM): buffer copies
    add / avg     element-wise sum / mean
    grid_scatter  per sample, branch column blocks in grid-cell order (copy_cols)
"""

from __future__ import annotations

from loomdist.kernels.gpu import layers as registry
from loomdist.kernels.gpu import ops
from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream
from loomdist.layers.parallel import _scatter_order, branch_key, branch_params

SKIPS_DX = True  # backward(..., need_dx=False) skips dL/dx (layers.backward)


def check(spec, where: str = "parallel") -> None:
    """Every branch (recursively) must have a GPU module."""
    for i, b in enumerate(spec.branches):
        registry.check(b, f"{where} branch {i}")


def forward(s: Stream, spec, params: dict, x: GpuArray):
    """x: (batch, n) -> combined branch outputs (batch, out_features)."""
    outs, caches = [], []
    for i, b in enumerate(spec.branches):
        y, cache = registry.gpu_module(b.kind).forward(s, b, branch_params(params, i), x)
        outs.append(y)
        caches.append(cache)
    return _combine(s, spec, outs, x.shape[0]), (caches, [o.shape for o in outs])


def _combine(s: Stream, spec, outs: list, batch: int) -> GpuArray:
    mode = spec.mode
    if mode in ("add", "avg"):
        total = s.scratch(outs[0].shape, "parallel out")
        s.copy(outs[0], total)
        for o in outs[1:]:
            ops.add_into(s, o, total)
        if mode == "avg":
            ops.scale(s, total, 1.0 / len(outs))
        return total
    out = s.scratch((batch, sum(o.size for o in outs) // batch), "parallel out")
    if mode == "concat":
        at = 0
        for o in outs:
            s.copy(o, out, o.size, 0, at)
            at += o.size
        return out
    at = 0
    for b in _scatter_order(spec):
        ops.copy_cols(s, outs[b], out, outs[b].shape[1], 0, at)
        at += outs[b].shape[1]
    return out


def backward(s: Stream, spec, params: dict, cache, dy: GpuArray, need_dx: bool = True):
    """dy: (batch, out) -> dx (sum over branches), grads named "branch<i>.<name>";
    need_dx=False asks no branch for its dx (None comes back)."""
    caches, shapes = cache
    dx, grads = None, {}
    for i, (b, g) in enumerate(zip(spec.branches, _split(s, spec, dy, shapes))):
        dxi, gi = registry.backward(s, b, branch_params(params, i), caches[i], g, need_dx)
        grads.update({branch_key(i, k): v for k, v in gi.items()})
        if dxi is None:
            continue
        if dx is None:  # a fresh sum: a branch may hand back an array it still uses
            dx = s.scratch(dxi.shape, "parallel dx")
            s.copy(dxi, dx)
        else:
            ops.add_into(s, dxi, dx)
    return dx, grads


def _split(s: Stream, spec, dy: GpuArray, shapes: list) -> list:
    mode = spec.mode
    if mode == "add":
        return [dy] * len(shapes)
    if mode == "avg":
        share = s.scratch(dy.shape, "parallel dy")
        s.copy(dy, share)
        ops.scale(s, share, 1.0 / len(shapes))
        return [share] * len(shapes)
    parts = [s.scratch(shape, "parallel dy") for shape in shapes]
    if mode == "concat":
        at = 0
        for part in parts:
            s.copy(dy, part, part.size, at, 0)
            at += part.size
        return parts
    at = 0
    for b in _scatter_order(spec):
        ops.copy_cols(s, dy, parts[b], shapes[b][1], at, 0)
        at += shapes[b][1]
    return parts
