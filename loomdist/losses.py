"""Losses with LOOM's formulas (mean over every output value), and the fused softmax path."""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, ShapeError

LOSSES = ("mse", "cross_entropy")
_CLAMP = 1e-7


def check_loss(name: str) -> str:
    key = {"": "mse", "ce": "cross_entropy", "crossentropy": "cross_entropy"}.get(name, name)
    if key not in LOSSES:
        raise ConfigError(f"loss_type {name!r} is unknown; use one of {list(LOSSES)}")
    return key


def target_like(target, shape: tuple, where: str = "train") -> np.ndarray:
    """`target` reshaped to the output's `shape`; ShapeError when its size differs."""
    if target is None:
        raise ShapeError(f"{where}: the target is None; pass one target value per output "
                         f"value")
    t = np.asarray(target)
    want = int(np.prod(shape))
    if t.size != want:
        dims = f" ({' x '.join(str(d) for d in shape)})" if len(shape) > 1 else ""
        raise ShapeError(f"{where}: the target has {t.size} values, the network's output has "
                         f"{want}{dims}; pass one target value per output value "
                         f"(LOOM's flat [batch][outputs] layout or a (batch, outputs) array)")
    return t.reshape(shape)


def loss_and_grad(name: str, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """(loss, dL/d(out)) with LOOM's definitions, N = out.size.

    mse:           sum (o - t)^2 / N,                 grad 2 (o - t) / N
    cross_entropy: -sum_{t>0} t ln(clamp(o)) / N,     grad -(t / max(o, 1e-7)) / N where t > 0
    """
    n = out.size
    if name == "mse":
        diff = out - target
        return float(np.sum(diff.astype(np.float64) ** 2) / n), (2 / n) * diff
    pos = target > 0
    o = np.clip(out, _CLAMP, 1 - _CLAMP).astype(np.float64)
    loss = float(-np.sum(np.where(pos, target * np.log(o), 0)) / n)
    grad = np.where(pos, -target / np.maximum(out, out.dtype.type(_CLAMP)), 0) / n
    return loss, grad.astype(out.dtype, copy=False)


def fused_softmax_ce(logits: np.ndarray, target: np.ndarray, temperature: float, cols: int):
    """Cross-entropy through a softmax layer, computed from its logits (stable).

    Returns (loss, probabilities, dL/d(logits)) for loss = -sum t log softmax(z/T) / N, where
    the softmax runs over groups of `cols` values (a row, or a grid row). This is the true
    gradient; LOOM's clamp at 1e-7 is not applied (it only matters for p < 1e-7).
    """
    n = logits.size
    z = logits.reshape(-1, cols).astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    p = np.exp(logp)
    t = target.reshape(-1, cols).astype(np.float64)
    loss = float(-np.sum(t * logp) / n)
    grad = (p * t.sum(axis=1, keepdims=True) - t) / (temperature * n)
    dtype = logits.dtype
    return loss, p.astype(dtype).reshape(logits.shape), grad.astype(dtype).reshape(logits.shape)
