"""A pipeline stage's walk pieces on the wgpu backend (Cell(backend="wgpu")).

`GpuPiece` owns a run of consecutive layers through a GpuRunner (kernels/gpu/runner.py: the
same walk, LOOM residual included, as one Network on the device). Per micro-batch it uploads
the activations it receives (numpy, from the Ray object store), records the pass into one
Stream and reads back only what the neighbouring stages need:

    forward(mb, x, residual)        -> (y, residual_out)      one submit, one readback
    forward_loss(mb, x, residual, ...) -> (loss, seed)        seed dL/dy stays on the device
    backward(mb, dy, d_residual)    -> (dx, d_residual_in)    gradients accumulate on device

Weights, gradients and optimizer state stay on the device; `sq_norm` and `update` run the
stage's reduction and optimizer step there (one scalar readback / no readback).
"""

from __future__ import annotations

import numpy as np

from ..kernels.gpu import losses, ops
from ..kernels.gpu.array import GpuArray
from ..kernels.gpu.optim import clip_global_norm
from ..kernels.gpu.runner import GpuRunner
from ..kernels.gpu.stream import Stream


class _PieceNet:
    """What GpuRunner needs of a Network: the piece's slots and their grid coordinates."""

    def __init__(self, slots: list, coords: list):
        self.layers, self._coords = list(slots), coords

    def coords(self, i: int) -> tuple:
        return self._coords[i]


class GpuPiece:
    """Consecutive layers of one stage on the device (see the module doc)."""

    def __init__(self, slots: list, coords: list):
        self.runner = GpuRunner(_PieceNet(slots, coords))
        self.slots = self.runner.net.layers  # GpuLayers: params / grads read from the device
        self.stash: dict = {}  # micro-batch -> (tape, residual index) of its forward

    def _record_forward(self, mb: int, x, residual):
        r = self.runner
        r.push()
        s = Stream(r.device)
        y = r.record_forward(s, s.upload(x, "stage x"),
                             None if residual is None else s.upload(residual, "stage residual"))
        self.stash[mb] = (r.tape, r.residual)
        return s, y

    def forward(self, mb: int, x: np.ndarray, residual=None):
        """x (batch, in), residual -> (y, residual_out) as numpy."""
        s, y = self._record_forward(mb, x, residual)
        at, tensors = self.runner.residual, self.runner.tape[1]
        if at is None or at == 0:  # none, or the incoming one passed on untouched
            return s.read(y)[0], residual
        return tuple(s.read(y, tensors[at]))

    def forward_loss(self, mb: int, x, residual, loss, target, scale: float):
        """Forward, then `loss` = (loss_type, fused) times `scale` on the device; returns
        (loss value, the scaled seed dL/d(output) as a device array for backward)."""
        loss_type, fused = loss
        s, y = self._record_forward(mb, x, residual)
        if fused is not None:
            logits = self.runner.tape[1][-2]
            t = s.upload(np.reshape(target, logits.shape), "stage target")
            value, _, seed = losses.fused_softmax_ce(s, logits, t, fused[0],
                                                     fused[1] or logits.shape[-1])
        else:
            t = s.upload(np.reshape(target, y.shape), "stage target")
            value, seed = losses.loss_and_grad(s, loss_type, y, t)
        ops.scale(s, seed, scale)
        (v,) = s.read(value)
        return float(v[0]) * scale, seed

    def backward(self, mb: int, dy, d_residual=None, skip_last: bool = False,
                 need_dx: bool = True):
        """dL/dy (numpy or a device seed), dL/d(residual_out) -> (dx, d_residual_in);
        need_dx=False (the first stage): nothing is read back, (None, None) returned."""
        r = self.runner
        r.push()
        r.tape, r.residual = self.stash.pop(mb)
        s = Stream(r.device)
        out = r.tape[1][-2 if skip_last else -1]
        if not isinstance(dy, GpuArray):
            dy = s.upload(np.reshape(dy, out.shape), "stage dy")
        dres = None if d_residual is None else s.upload(d_residual, "stage d_residual")
        dx = r.record_backward(s, dy, len(r.tape[0]) - 1 if skip_last else None, dres,
                               need_input=need_dx)
        if not need_dx:
            s.submit()
            return None, None
        if r.d_residual_in is None:
            return s.read(dx)[0], None
        return tuple(s.read(dx, r.d_residual_in))

    def clear(self) -> None:
        self.stash = {}

    def sq_norm(self) -> float:
        """Squared L2 norm of this piece's gradients (one scalar readback)."""
        s = Stream(self.runner.device)
        (sq,) = s.read(clip_global_norm(s, self._grads(), 0.0))
        return float(sq[0])

    def update(self, opt, lr: float, clip_scale: float) -> None:
        """Scale the gradients by clip_scale, then `opt`'s step (opt.state["t"], already
        counted) on the device."""
        r = self.runner
        r.push()
        s = Stream(r.device)
        if clip_scale != 1.0:
            for g in self._grads():
                ops.scale(s, g, clip_scale)
        r.record_update(s, opt, lr)
        s.submit()

    def _grads(self) -> list:
        return [g for store in self.runner.grads for g in store.values() if g.size]
