"""Forward and backward walks over a Network's layers, with LOOM's residual bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


@dataclass
class TapeEntry:
    """What backward needs from one layer's forward."""

    slot: object
    cache: object
    residual: int | None  # tensor index added to this layer's output (post) or input (pre)
    mode: str | None      # the module's RESIDUAL constant


def run_forward(net, x: np.ndarray):
    """Returns (output, tape, tensors) where tensors[0] = x and tensors[i+1] = layer i's output."""
    tensors, tape, residual = [x], [], None
    for i, slot in enumerate(net.layers):
        where = _where(net, i, slot)
        if slot is None:
            rcl = ", ".join(map(str, net.coords(i)))
            raise ConfigError(f"{where}: no layer is set here; call set_layer({rcl}, spec)")
        h = tensors[-1]
        slot.spec.out_features(h.shape[1], where)
        mode = getattr(slot.module, "RESIDUAL", None)
        added = residual if mode == "pre_add" and _fits(tensors, residual, h) else None
        if added is not None:
            h = h + tensors[added]
        y, cache = slot.module.forward(slot.spec, slot.params, h)
        if mode == "post_add" and _fits(tensors, residual, y):
            added = residual
            y = y + tensors[added]
        tensors.append(y)
        tape.append(TapeEntry(slot, cache, added, mode))
        if mode == "store_input":
            residual = i
        elif mode in ("pre_add", "post_add"):
            residual = i + 1
    return tensors[-1], tape, tensors


def run_backward(net, tape: list, dy: np.ndarray) -> np.ndarray:
    """Walk the tape in reverse; accumulates into each slot's grads; returns dL/dx."""
    grads: list = [None] * (len(tape) + 1)
    grads[-1] = dy
    for i in range(len(tape) - 1, -1, -1):
        entry, gy = tape[i], grads[i + 1]
        if gy is None:
            continue
        if entry.mode == "post_add" and entry.residual is not None:
            _accumulate(grads, entry.residual, gy)
        dx, g = entry.slot.module.backward(entry.slot.spec, entry.slot.params, entry.cache, gy)
        for name, value in g.items():
            prev = entry.slot.grads.get(name)
            entry.slot.grads[name] = value if prev is None else prev + value
        if entry.mode == "pre_add" and entry.residual is not None:
            _accumulate(grads, entry.residual, dx)
        _accumulate(grads, i, dx)
    return grads[0] if grads[0] is not None else np.zeros_like(dy)


def _accumulate(grads: list, k: int, g: np.ndarray) -> None:
    grads[k] = g if grads[k] is None else grads[k] + g


def _fits(tensors, residual, h) -> bool:
    return residual is not None and tensors[residual].shape == h.shape


def _where(net, i: int, slot) -> str:
    kind = "empty" if slot is None else slot.spec.kind
    return f"layer {net.coords(i)} ({kind})"
