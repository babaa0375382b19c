"""CellActor: one pipeline stage (a run of consecutive cells) with its weights, gradients,
optimizer state and a stash of forward walks per micro-batch.

`Cell` is the plain object (all math via engine/losses/optim, runnable without Ray);
`CellActor` is the same class as a Ray actor. A stage is cut into pieces at Parallel layers
whose branches live on BranchActors:

    [walk: slots 0..2] -> [parallel 3: scatter x, gather outs, combine] -> [walk: slots 4..5]

Parallel layers leave LOOM's residual untouched, so it passes around a remote piece as it
passes between pipeline stages. With backend="wgpu" every walk piece is a GpuPiece
(gpu_cell.py): the same walk on the device, activations in and out as numpy.
"""

from __future__ import annotations

import numpy as np
import ray

from ..engine import WeightGradStash, walk_backward, walk_forward
from ..errors import ConfigError
from ..io.checkpoint import read_cell, write_cell
from ..layers import parallel
from ..losses import fused_softmax_ce, loss_and_grad
from ..memory import retain_freed_memory
from ..network import Layer
from ..optim import Optimizer
from ..threads import set_threads
from .pinning import Pinnable
from .transport import LocalTransport


class ParamOwner:
    """What every parameter-owning actor shares: gradients, norms, updates, weights.

    self.owned: list of (key prefix (row, col, layer, name prefix), Layer) whose params and
    grads this object owns; keys are the Network's (row, col, layer, name).
    self.wstash: the WeightGradStash of deferred weight gradients, or None (each backward
    computes its micro-batch's weight gradients at once); flushed before gradients are read.
    """

    owned: list
    opt: Optimizer
    wstash: WeightGradStash | None = None

    def params(self):
        for (r, c, lay, pre), slot in self.owned:
            for name, w in slot.params.items():
                yield (r, c, lay, pre + name), w

    def grads(self) -> dict:
        """{key: accumulated gradient} (after an update: the averaged, clipped ones used)."""
        self._flush()
        return self._own_grads()

    def _flush(self) -> None:
        if self.wstash is not None:
            self.wstash.flush()

    def _defer(self, mb: int):
        """walk_backward's `defer` for micro-batch mb (None: weight gradients at once)."""
        return None if self.wstash is None else self.wstash.defer_for(mb)

    def _own_grads(self) -> dict:
        return {(r, c, lay, pre + name): g for (r, c, lay, pre), slot in self.owned
                for name, g in slot.grads.items()}

    def weight_grads(self, mb: int) -> None:
        """The deferred weight gradients of micro-batch mb, now (ZB-H1's "wgt" ticks); a
        no-op when they are not deferred (the backward computed them)."""
        if self.wstash is not None:
            self.wstash.flush_micro(mb)

    def begin_step(self, step: int = 0) -> None:
        """Drop the gradients and stashes of the previous mini-batch (`step` is the one
        beginning, 1-based; fault injection keys on it)."""
        for _, slot in self.owned:
            slot.grads = {}
        self.stash = {}
        if self.wstash is not None:
            self.wstash.clear()

    def grad_sq_norm(self, *replica_grads) -> float:
        """Sum the replicas' gradients (replica order, so every replica gets the same bits)
        into this owner's, then return their squared L2 norm."""
        self._flush()
        if replica_grads:
            for (r, c, lay, pre), slot in self.owned:
                keys = [(n, (r, c, lay, pre + n)) for n in slot.params]
                slot.grads = {n: _sum([g[k] for g in replica_grads]) for n, k in keys
                              if k in replica_grads[0]}
        return sum(float(np.dot(g.ravel(), g.ravel())) for g in self._own_grads().values())

    def apply(self, lr: float, clip_scale: float = 1.0) -> None:
        """Scale gradients by clip_scale (global-norm clip), then one optimizer step."""
        self._flush()
        if clip_scale != 1.0:
            for _, slot in self.owned:  # new arrays: a gradient may be a read-only Ray buffer
                slot.grads = {k: g * g.dtype.type(clip_scale) for k, g in slot.grads.items()}
        self.opt.step(self.params(), self._own_grads().items(), lr)

    def state(self) -> dict:
        """{key: (parameter, [optimizer slots])} (for checkpoints and the driver's Network)."""
        slots = self.opt.state["slots"]
        return {k: (w, list(slots.get(k, ()))) for k, w in self.params()}

    def ping(self) -> bool:
        """Returns once every call submitted before it has run (actor calls run in order)."""
        return True

    def load(self, directory: str, optimizer_t: int) -> None:
        """Replace parameters, optimizer slots and step count with those of the checkpoint
        in `directory` (read by grid coordinates, so any plan can load any checkpoint)."""
        params, by_cell, slots = dict(self.params()), {}, {}
        for r, c, lay, name in params:
            by_cell.setdefault((r, c), []).append((lay, name))
        for rc, entries in by_cell.items():
            for (lay, name), (w, s) in read_cell(directory, rc, entries).items():
                params[(*rc, lay, name)][...] = w
                if s:
                    slots[(*rc, lay, name)] = s
        self.opt.state = {"t": int(optimizer_t), "slots": slots}



class Cell(ParamOwner):
    """One pipeline stage.

    Args:
        entries: [(flat index, (row, col, layer), Layer)] of this stage, in grid order.
        optim: OptimConfig for this stage's parameters.
        loss: None, or (loss_type, fused) on the last stage; fused is train.fused_softmax's
            (temperature, cols) or None.
        branches: {flat index: [(BranchActor handle, branch indices), ...]} for fanned-out
            Parallel layers of this stage.
        transport: how to reach branch actors (LocalTransport when they are plain objects).
        fault: a recovery.Fault (tests: exit as a chosen step begins), or None.
        defer: defer weight gradients to one GEMM per mini-batch (engine.WeightGradStash)
            for layers whose module supports it; False computes them per micro-batch.
        backend: "cpu", or "wgpu": the walk pieces run on the device (actors/gpu_cell.py;
            weight gradients per micro-batch there, so `defer` does not apply); activations
            still come and go as numpy.
    """

    def __init__(self, entries, optim, loss=None, branches=None, transport=None, fault=None,
                 defer: bool = True, backend: str = "cpu"):
        branches = branches or {}
        self.wstash = WeightGradStash() if defer and backend == "cpu" else None
        self.fault, self.step_no = fault, 0
        self.transport = transport or LocalTransport()
        self.loss, self.pieces, self.owned, self.stash, self.seed = loss, [], [], {}, {}
        for i, rcl, slot in entries:
            slot = Layer(slot.spec, {k: np.array(v) for k, v in slot.params.items()})  # own,
            if i in branches:                                          # writable copies
                self.pieces.append(("par", slot.spec, branches[i]))
            else:
                self.owned.append(((*rcl, ""), slot))
                if not self.pieces or self.pieces[-1][0] != "walk":
                    self.pieces.append(("walk", []))
                self.pieces[-1][1].append(slot)
        self.cells = sorted({rcl[:2] for _, rcl, _ in entries})
        if backend != "cpu":
            self._to_device(backend, {i: rcl for i, rcl, _ in entries})
        self.groups = [g for p in self.pieces if p[0] == "par" for g in p[2]]
        self.opt = Optimizer(optim)

    def _to_device(self, backend: str, coords: dict) -> None:
        """Walk pieces -> ("gpu", GpuPiece); owned slots become the device's GpuLayers."""
        if backend != "wgpu":
            raise ConfigError(f"Cell: unknown backend {backend!r}; use 'cpu' or 'wgpu'")
        from .gpu_cell import GpuPiece
        where = {id(slot): rcl for rcl, slot in self.owned}
        on_device = {}
        for k, piece in enumerate(self.pieces):
            if piece[0] == "walk":
                gpu = GpuPiece(piece[1], [where[id(slot)][:3] for slot in piece[1]])
                on_device.update({id(a): b for a, b in zip(piece[1], gpu.slots)})
                self.pieces[k] = ("gpu", gpu)
        self.owned = [(rcl, on_device[id(slot)]) for rcl, slot in self.owned]

    # --------------------------------------------------------------- passes
    def forward(self, mb: int, x: np.ndarray, residual=None):
        """x (batch, in), residual -> (y (batch, out), residual_out); stashes the walk."""
        x, residual, self.stash[mb] = self._forward(mb, x, residual, self.pieces)
        return x, residual

    def _forward(self, mb, x, residual, pieces):
        records = []
        for piece in pieces:
            if piece[0] == "gpu":
                x, residual = piece[1].forward(mb, x, residual)
                records.append(None)
            elif piece[0] == "walk":
                walk = walk_forward(piece[1], x, residual)
                records.append(walk)
                x, residual = walk.output, walk.residual_out
            else:
                outs = self._scatter(piece, mb, x)
                records.append([o.shape for o in outs])
                x = parallel.combine(piece[1], outs, x.shape[0])
        return x, residual, records

    def forward_loss(self, mb: int, x, residual, target, scale: float) -> float:
        """Last stage: forward, then the loss of this micro-batch times `scale` (its share of
        the mini-batch's output values, LOOM's normalisation); stashes dL/d(output)."""
        loss_type, fused = self.loss
        if self.pieces[-1][0] == "gpu":  # the loss on the device; its seed stays there
            x, residual, records = self._forward(mb, x, residual, self.pieces[:-1])
            self.stash[mb] = records + [None]
            loss, self.seed[mb] = self.pieces[-1][1].forward_loss(mb, x, residual, self.loss,
                                                                  target, scale)
            return loss
        y, _ = self.forward(mb, x, residual)
        if fused is not None:
            logits = self.stash[mb][-1].tensors[-2]
            t, cols = fused
            loss, _, dy = fused_softmax_ce(logits, target.reshape(logits.shape), t,
                                           cols or logits.shape[-1])
        else:
            loss, dy = loss_and_grad(loss_type, y, target.reshape(y.shape))
        self.seed[mb] = dy * dy.dtype.type(scale)
        return loss * scale

    def backward(self, mb: int, dy=None, d_residual=None, keep_dx: bool = True):
        """dL/dy, dL/d(residual_out) -> (dL/dx, dL/d(residual_in)); accumulates gradients.
        On the last stage dy is the seed forward_loss stashed (pass None). keep_dx=False
        (the first stage: nothing takes the input's gradient) returns None instead, so no
        array goes to the object store; a first walk piece skips its first layer's input
        gradient (engine.walk_backward's need_input), a first GPU piece reads none back and
        branch actors of an opening Parallel layer return none."""
        self._fault_point("backward")
        records = self.stash.pop(mb)
        fused_last = dy is None and self.loss[1] is not None
        if dy is None:
            dy, d_residual = self.seed.pop(mb), None
        for k in range(len(self.pieces) - 1, -1, -1):
            piece, rec = self.pieces[k], records[k]
            skip = fused_last and k == len(self.pieces) - 1
            need_dx = keep_dx or k > 0  # the first piece's dL/dx leaves the stage
            if piece[0] == "gpu":
                dy, d_residual = piece[1].backward(mb, dy, d_residual, skip, need_dx)
            elif piece[0] == "walk":
                upto = len(rec.tape) - 1 if skip else None
                dy, d_residual = walk_backward(rec, dy, d_residual, upto, self._defer(mb),
                                               need_dx)
            else:
                dy = self._gather_backward(piece, mb, dy, rec, need_dx)
        return (dy, d_residual) if keep_dx else None

    def _scatter(self, piece, mb, x) -> list:
        _, spec, groups = piece
        refs = [self.transport.call(h, "forward", mb, x) for h, _ in groups]
        outs = [None] * len(spec.branches)
        for (_, idx), got in zip(groups, self.transport.get(refs, "branch forward")):
            for i, y in zip(idx, got):
                outs[i] = y
        return outs

    def _gather_backward(self, piece, mb, dy, shapes, need_dx: bool = True):
        _, spec, groups = piece
        dys = parallel.split(spec, dy, shapes)
        refs = [self.transport.call(h, "backward", mb, [dys[i] for i in idx], need_dx)
                for h, idx in groups]
        got = self.transport.get(refs, "branch backward")
        return _sum(got) if need_dx else None

    # ------------------------------------------- step bookkeeping, fanned out
    # The driver talks to cells only; a cell forwards these to its branch actors, so they
    # run after the branch calls of its passes (Ray orders calls per caller, not globally).
    def begin_step(self, step: int = 0) -> None:
        if self.fault is not None:
            self.fault.trigger(self.cells, step)
        self.step_no = step
        super().begin_step(step)
        self.seed = {}
        for p in self._gpu():
            p.clear()
        self._fan("begin_step", step)

    def weight_grads(self, mb: int) -> None:
        self._fault_point("weight_grads")
        refs = [self.transport.call(h, "weight_grads", mb) for h, _ in self.groups]
        super().weight_grads(mb)  # while the branch actors compute theirs
        self.transport.get(refs, "branch weight_grads")

    def grads(self) -> dict:
        out = super().grads()
        for got in self._fan("grads"):
            out.update(got)
        return out

    def grad_sq_norm(self, *replica_grads) -> float:
        own = (sum(p.sq_norm() for p in self._gpu()) if self._gpu() and not replica_grads
               else super().grad_sq_norm(*replica_grads))
        return own + sum(self._fan("grad_sq_norm", *replica_grads))

    def apply(self, lr: float, clip_scale: float = 1.0) -> None:
        if self._gpu():  # a GPU stage owns no CPU slots: every walk piece is on the device
            self.opt.state["t"] += 1
            for p in self._gpu():
                p.update(self.opt, lr, clip_scale)
        else:
            super().apply(lr, clip_scale)
        self._fan("apply", lr, clip_scale)

    def _fault_point(self, method: str) -> None:
        if self.fault is not None:
            self.fault.check(self.cells, self.step_no, method)

    def _gpu(self) -> list:
        return [p[1] for p in self.pieces if p[0] == "gpu"]

    def _fan(self, method: str, *args) -> list:
        refs = [self.transport.call(h, method, *args) for h, _ in self.groups]
        return self.transport.get(refs, f"branch {method}")

    # -------------------------------------------------- weights, checkpoints
    def full_state(self) -> dict:
        """state() of this stage and of its branch actors: every parameter it is responsible
        for, keyed (row, col, layer, name)."""
        out = self.state()
        for got in self._fan("state"):
            out.update(got)
        return out

    def checkpoint(self, directory: str) -> tuple[dict, int]:
        """Write cell_<r>_<c>.npz (parameters + optimizer slots) for this stage's cells into
        `directory` (the driver's temporary checkpoint dir).

        Returns ({file: sha256}, optimizer step count)."""
        state: dict = {rc: {} for rc in self.cells}
        for (r, c, lay, name), value in self.full_state().items():
            state[(r, c)][(lay, name)] = value
        digests: dict = {}
        for rc, cell in state.items():
            digests.update(write_cell(directory, rc, cell))
        return digests, self.opt.state["t"]

    def load(self, directory: str, optimizer_t: int) -> None:
        super().load(directory, optimizer_t)
        self._fan("load", directory, optimizer_t)


def _sum(arrays: list) -> np.ndarray:
    total = arrays[0].copy()
    for a in arrays[1:]:
        total += a
    return total


@ray.remote
class CellActor(Pinnable, Cell):
    """Cell as a Ray actor; sets Numba/BLAS threads to its CPU share
    and keeps freed memory for the next micro-batch (loomdist.memory) first."""

    def __init__(self, *args, threads: int = 1, **kw):
        set_threads(threads)
        retain_freed_memory()
        super().__init__(*args, **kw)
