"""Losses on the GPU (losses.wgsl + reduce.wgsl) with loomdist.losses' formulas.

    loss_and_grad(stream, name, out, target) -> (loss (1,), dL/d(out))      mse, cross_entropy
    fused_softmax_ce(stream, logits, target, temperature, cols) -> (loss (1,), probs, dlogits)
    count_nonfinite(stream, a, out=None) -> (1,) count of NaN/Inf values (bitcast<u32> test)
The loss stays on the device; read it with the step's one readback.
"""

from __future__ import annotations

from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream
from loomdist.losses import check_loss


def _reduce(s: Stream, entry: str, x: GpuArray, out: GpuArray, scale: float,
            accumulate: bool = False) -> None:
    s.dispatch("reduce", [x, out], {"n": x.size, "scale": float(scale),
                                    "accumulate": int(accumulate)}, (1, 1, 1), entry=entry)


def loss_and_grad(s: Stream, name: str, out: GpuArray, target: GpuArray):
    """(loss (1,), grad like out); N = out.size (LOOM's mean over every output value)."""
    name = check_loss(name)
    n = out.size
    grad, terms, loss = s.scratch(out.shape), s.scratch(out.shape), s.scratch((1,))
    s.dispatch("losses", [out, target, grad, terms],
               {"n": n, "two_over_n": 2 / n, "nf": float(n)}, s.groups(n), entry=name)
    _reduce(s, "reduce_sum", terms, loss, (1 if name == "mse" else -1) / n)
    return loss, grad


def fused_softmax_ce(s: Stream, logits: GpuArray, target: GpuArray, temperature: float,
                     cols: int):
    """Cross-entropy through a softmax over groups of `cols` logits, from the logits."""
    n, rows = logits.size, logits.size // cols
    probs, grad, terms, loss = (s.scratch(logits.shape), s.scratch(logits.shape),
                                s.scratch((rows,)), s.scratch((1,)))
    s.dispatch("losses", [logits, target, probs, grad, terms],
               {"rows": rows, "cols": cols, "temperature": float(temperature),
                "scale": 1 / (temperature * n)}, s.groups(rows), entry="softmax_ce")
    _reduce(s, "reduce_sum", terms, loss, -1 / n)
    return loss, probs, grad


def count_nonfinite(s: Stream, a: GpuArray, out: GpuArray | None = None) -> GpuArray:
    """Add the number of NaN/Inf values of `a` to out[0] (a new (1,) zero array by default)."""
    out = out if out is not None else s.empty((1,))  # zero-filled
    if a.size:
        _reduce(s, "nonfinite", a, out, 1.0, accumulate=True)
    return out
