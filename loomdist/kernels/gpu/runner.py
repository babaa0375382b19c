"""Runs a Network on the GPU: weights uploaded once, every pass recorded into one Stream.

`GpuRunner(net)` replaces each grid slot by a `GpuLayer` whose `params` / `grads` are host
caches of the device arrays, refreshed in place (one readback for the whole network, with the
optimizer state into opt.state["slots"]) the first time anything reads them after the device
changed. Assigning `slot.params` or `slot.grads` uploads the new values; parameter arrays
handed out are written back before the next pass, so in-place edits (net.param(...)[...] = v,
checkpoint loads) reach the device as on the CPU. A training step records forward, loss, backward,
clipping and the optimizer update into one command encoder and reads back only the loss and
the gradient norm. The walks are loomdist/engine.py's (LOOM's implicit residual), run on
GpuArrays through the Stream.
"""

from __future__ import annotations

import numpy as np

from loomdist.engine import Walk, residual_backward, residual_walk
from loomdist.errors import ConfigError, ShapeError
from loomdist.kernels.gpu import layers as registry
from loomdist.kernels.gpu import losses, ops
from loomdist.kernels.gpu.array import GpuArray, to_gpu
from loomdist.kernels.gpu.device import get_device
from loomdist.kernels.gpu.optim import GpuOptimizer, clip_global_norm
from loomdist.kernels.gpu.stream import Arena, Stream
from loomdist.network import Layer


class GpuLayer(Layer):
    """A grid slot whose parameters and gradients live on the device (see the module doc)."""

    def __init__(self, runner: GpuRunner, index: int, slot: Layer):
        self._runner, self._index = runner, index
        self.spec, self._grads = slot.spec, slot.grads
        # float32 host caches (the same arrays when they already are: references stay live)
        self._params = {k: np.ascontiguousarray(v, np.float32) for k, v in slot.params.items()}

    @property
    def params(self) -> dict:
        self._runner.pull()
        self._runner.handed = True  # the caller may edit them in place: push before next use
        return self._params

    @params.setter
    def params(self, value: dict) -> None:
        if any(np.asarray(v).dtype != np.float32 for v in value.values()):
            raise ConfigError(f"{self._runner.where(self._index)}: the wgpu backend keeps "
                              f"float32 parameters; call net.to('cpu') before casting")
        self._params = dict(value)
        self._runner._arenas = {}  # their bind groups hold the old parameter buffers
        self._runner.params[self._index] = _upload(value, self._runner.where(self._index))

    @property
    def grads(self) -> dict:
        self._runner.pull()
        return self._grads

    @grads.setter
    def grads(self, value: dict) -> None:
        self._grads = dict(value)
        self._runner.grads[self._index] = _upload(value, self._runner.where(self._index))

    def host(self) -> Layer:
        """A plain CPU Layer with the current values."""
        return Layer(self.spec, self.params, self.grads)


def _upload(arrays: dict, where: str) -> dict:
    return {k: to_gpu(v, where=f"{where} {k}") for k, v in arrays.items()}


class GpuRunner:
    """The device side of a Network on the wgpu backend."""

    def __init__(self, net):
        self.net, self.device = net, get_device()
        self.params: list = [{} for _ in net.layers]
        self.grads: list = [{} for _ in net.layers]
        self.tape, self.residual, self.d_residual_in = None, None, None
        self._layer_dx: list = []  # (layer, dL/d(input)) of the last backward, for events
        self.stale = False  # device newer than the host caches
        self._optimizers: dict = {}
        self._exported: dict = {}  # id(opt) -> {key: the slot list last synced with opt.state}
        self.handed = False  # host parameter arrays handed out (maybe edited) since last push
        self._arenas: dict = {}  # dropped when a layer is placed: its bind groups hold params
        for i, slot in enumerate(net.layers):
            if slot is not None:
                registry.check(slot.spec, self.where(i))
        for i, slot in enumerate(list(net.layers)):
            if slot is not None:
                net.layers[i] = self.place(i, slot)

    def where(self, i: int) -> str:
        kind = "empty" if self.net.layers[i] is None else self.net.layers[i].spec.kind
        return f"layer {self.net.coords(i)} ({kind}) on wgpu"

    def place(self, i: int, slot: Layer) -> GpuLayer:
        """Upload `slot` as grid slot i; raises UnsupportedLayerError before touching it."""
        registry.check(slot.spec, f"layer {self.net.coords(i)} ({slot.spec.kind}) on wgpu")
        self.pull()
        self._arenas = {}
        layer = GpuLayer(self, i, slot)
        self.params[i] = _upload(slot.params, f"layer {self.net.coords(i)}")
        self.grads[i] = _upload(slot.grads, f"layer {self.net.coords(i)}")
        return layer

    def release(self) -> None:
        """Give the network plain CPU layers (current values) and optimizer state back."""
        self.stale = True  # optimizer state too, even if nothing ran since the last pull
        self.pull()
        self.net.layers = [None if s is None else s.host() for s in self.net.layers]

    def pull(self) -> None:
        """Refresh the host caches (every GpuLayer's params and grads, and the state of each
        optimizer trained here, into opt.state["slots"]) from the device: one readback. Host
        arrays are updated in place, so references handed out earlier stay current."""
        if not self.stale:
            return
        self.stale = False
        keys = [(i, part, name) for i in range(len(self.params))
                for part, store in (("p", self.params), ("g", self.grads))
                for name in store[i]]
        arrays = [(self.params if p == "p" else self.grads)[i][n] for i, p, n in keys]
        slots = [(opt, k, a) for opt, gopt in self._optimizers.values()
                 for k, a in gopt.slots.items()]
        values = Stream(self.device).read(*arrays, *[x for _, _, a in slots for x in a])
        fresh = {i: ({}, {}) for i, slot in enumerate(self.net.layers) if slot is not None}
        for (i, part, name), v in zip(keys, values):
            slot = self.net.layers[i]
            old = slot._params if part == "p" else slot._grads
            fresh[i][part == "g"][name] = _in_place(old.get(name), v)
        for i, (params, grads) in fresh.items():
            self.net.layers[i]._params, self.net.layers[i]._grads = params, grads
        self._pull_slots(slots, values[len(keys):])

    def _pull_slots(self, slots: list, values: list) -> None:
        at = 0
        for opt, key, arrays in slots:
            old = opt.state["slots"].get(key) or [None] * len(arrays)
            fresh = [_in_place(o, v) for o, v in zip(old, values[at:at + len(arrays)])]
            at += len(arrays)
            if opt.state["slots"].get(key) is not None:
                opt.state["slots"][key][:] = fresh
            else:
                opt.state["slots"][key] = fresh
            self._exported[id(opt)][key] = opt.state["slots"][key]

    def push(self) -> None:
        """Write host parameter caches handed out since the last pass back to the device
        (into the same buffers, so cached bind groups stay valid)."""
        if not self.handed:
            return
        self.handed = False
        for i, slot in enumerate(self.net.layers):
            if slot is None:
                continue
            for name, w in slot._params.items():
                w = np.ascontiguousarray(w, dtype=np.float32)
                if w.size:
                    self.device.raw.queue.write_buffer(self.params[i][name].buffer, 0, w)

    # ------------------------------------------------------------ passes
    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (batch, features) -> the output (batch, out); one readback."""
        self.push()
        s = Stream(self.device)
        (y,) = s.read(self.record_forward(s, to_gpu(x, self.device, "Network.forward x")))
        return y

    def backward(self, dy: np.ndarray, skip_last: bool = False) -> np.ndarray:
        """dL/d(output) -> dL/d(input); accumulates gradients on the device."""
        if self.tape is None:
            raise ConfigError("Network.backward: no forward pass recorded; call forward first")
        tape, tensors = self.tape
        out = tensors[-2 if skip_last else -1]
        if dy.size != out.size:
            raise ShapeError(f"Network.backward: gradient has {dy.size} values, the last "
                             f"output has {out.size}; pass dL/d(output) of the last forward")
        self.push()
        s = Stream(self.device)
        dx = self.record_backward(s, to_gpu(dy.reshape(out.shape), self.device),
                                  len(tape) - 1 if skip_last else None)
        (dx_host,) = s.read(dx)
        return dx_host

    def activations(self, *indices: int) -> list[np.ndarray]:
        """[input, output of layer 0, ...] of the last forward (or those at `indices`)."""
        if self.tape is None:
            raise ConfigError("Network.activations: no forward pass recorded; call forward")
        tensors = self.tape[1][1:]
        return Stream(self.device).read(*[tensors[i] for i in indices or range(len(tensors))])

    def layer_input_grads(self) -> list:
        """[(layer index, dL/d(its input))] of the last backward, in backward order (one
        readback; for LOOM's backward events)."""
        pairs = self._layer_dx
        values = Stream(self.device).read(*[dx for _, dx in pairs]) if pairs else []
        return [(i, v) for (i, _), v in zip(pairs, values)]

    def record_forward(self, s: Stream, x: GpuArray, residual_in: GpuArray | None = None
                       ) -> GpuArray:
        """Record the forward walk; keeps (tape, tensors) for backward and, in `residual`,
        the tensor index of the residual it hands on (engine.Walk's; a pipeline stage passes
        the residual its predecessor left as residual_in)."""
        def run(i, slot, h):
            return registry.gpu_module(slot.spec.kind).forward(s, slot.spec, self.params[i], h)

        walk = residual_walk(self.net.layers, x, residual_in, lambda i, _: self.where(i), run,
                             lambda a, b: ops.add(s, a, b))
        self.tape, self.residual = (walk.tape, walk.tensors), walk.residual
        return walk.output

    def record_backward(self, s: Stream, dy: GpuArray, upto: int | None = None,
                        d_residual: GpuArray | None = None,
                        need_input: bool = True) -> GpuArray | None:
        """Record backward from dL/d(output) (or of layer upto-1's output); returns dx.
        d_residual: gradient for the residual the forward handed on (from later stages);
        dL/d(residual_in) is left in self.d_residual_in (None when nothing reached it).
        need_input=False (engine.walk_backward's): nobody reads dx nor d_residual_in, the
        first layer skips its dx where its GPU module can, and None comes back."""
        tape, tensors = self.tape
        self._layer_dx = []

        def back(entry, gy, need_dx):
            i, spec = entry.slot._index, entry.slot.spec
            dx, g = registry.backward(s, spec, self.params[i], entry.cache, gy, need_dx)
            if dx is not None:
                self._layer_dx.append((i, dx))
            self._add_grads(s, i, g)
            return dx

        grads = residual_backward(Walk(tape, tensors, self.residual), dy, d_residual, upto,
                                  back, lambda a, b: ops.add(s, a, b), need_input)
        self.stale, self.d_residual_in = True, grads[0] if need_input else None
        if not need_input:
            return None
        return grads[1] if grads[1] is not None else s.empty(tensors[1].shape)  # zeros

    def _add_grads(self, s: Stream, i: int, g: dict) -> None:
        store = self.grads[i]
        for name, value in g.items():
            store[name] = value if name not in store else ops.add(s, store[name], value)

    # ----------------------------------------------------------- training
    def train_step(self, opt, cfg, x, target, lr: float) -> tuple[float, float]:
        """loomdist.train.train_step on the device: one submit, one readback (loss, norm)."""
        from loomdist.losses import target_like
        from loomdist.train import fused_softmax
        self.push()
        s = Stream(self.device, self.arena("train"))
        out = self.record_forward(s, s.upload(self.net.as_batch(x), "train x"))
        fused = fused_softmax(self.net, cfg)
        self.grads = [{} for _ in self.grads]
        if fused is not None:
            logits = self.tape[1][-2]
            t = s.upload(target_like(target, logits.shape), "train target")
            loss, _, dz = losses.fused_softmax_ce(s, logits, t, fused[0],
                                                  fused[1] or logits.shape[-1])
            self.record_backward(s, dz, upto=len(self.tape[0]) - 1, need_input=False)
        else:
            t = s.upload(target_like(target, out.shape), "train target")
            loss, dy = losses.loss_and_grad(s, cfg.loss_type, out, t)
            self.record_backward(s, dy, need_input=False)
        sq = clip_global_norm(s, [g for store in self.grads for g in store.values()],
                              cfg.gradient_clip)
        opt.state["t"] += 1
        self.record_update(s, opt, lr)
        loss_v, sq_v = s.read(loss, sq)
        return float(loss_v[0]), float(np.sqrt(sq_v[0]))

    def record_update(self, s: Stream, opt, lr: float) -> None:
        """Record `opt`'s update (step opt.state["t"], already counted) of every parameter
        with a gradient; its state stays on the device (synced into opt.state on pull)."""
        self._gpu_optimizer(opt).step(s, self._keyed(self.params), dict(self._keyed(self.grads)),
                                      lr, opt.state["t"])
        self.stale = True

    def arena(self, name: str) -> Arena:
        """The Arena of a repeated step kind ("train", or a benchmark's), made on first use."""
        return self._arenas.setdefault(name, Arena())

    def _keyed(self, stores: list) -> list:
        return [((*self.net.coords(i), name), a) for i, store in enumerate(stores)
                for name, a in store.items()]

    def _gpu_optimizer(self, opt) -> GpuOptimizer:
        """The device twin of `opt`; slot lists opt.state gained or replaced since the last
        sync (a CPU run, a loaded checkpoint) are uploaded."""
        if id(opt) not in self._optimizers:
            self._optimizers[id(opt)] = (opt, GpuOptimizer(opt.cfg))
            self._exported[id(opt)] = {}
        gopt, exported = self._optimizers[id(opt)][1], self._exported[id(opt)]
        for key, arrays in opt.state["slots"].items():
            if exported.get(key) is not arrays:
                gopt.slots[key] = [to_gpu(a, self.device, f"optimizer {key}") for a in arrays]
                exported[key] = arrays
        return gopt

def _in_place(old, new: np.ndarray) -> np.ndarray:
    """`new`'s values in `old` when it is a writable array of the same shape, else `new`."""
    if isinstance(old, np.ndarray) and old.shape == new.shape and old.flags.writeable:
        np.copyto(old, new)
        return old
    return new


