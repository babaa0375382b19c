"""LOOM's "gradient attention" for StepBackward: g <- g * N * softmax(|g|) per gradient vector.

LOOM scales each layer's kernel-gradient vector and its bias-gradient vector separately. Which
parameters form those vectors is what the layer module's `loom_gradients` packs into its
(kernel, bias) pair; `scale_layer_grads` finds that out generically by packing element ids.
"""

from __future__ import annotations

import numpy as np


def softmax_scale(g: np.ndarray) -> np.ndarray:
    """g * N * softmax(|g|) for one flat vector (N = g.size); the mean factor is exactly 1.

    softmax(|g|)_k = exp(|g_k| - max|g|) / sum_j exp(|g_j| - max|g|), computed in float64;
    the result has g's dtype.
    """
    a = np.abs(np.asarray(g, dtype=np.float64))
    e = np.exp(a - a.max()) if a.size else a
    return (np.asarray(g, dtype=np.float64) * (a.size * e / e.sum())).astype(np.asarray(g).dtype)


def loom_groups(module, spec, shapes: dict) -> list[np.ndarray]:
    """Flat element ids (into the concatenation of `shapes` in dict order) of the module's
    kernel and bias gradient vectors, as its `loom_gradients` packs them."""
    ids, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        ids[name] = np.arange(offset, offset + size, dtype=np.float64).reshape(shape)
        offset += size
    packed = module.loom_gradients(spec, ids)
    return [np.asarray(v).ravel().astype(np.int64) for v in packed if v is not None]


def scale_layer_grads(module, spec, grads: dict) -> dict:
    """One layer's gradients {name: array} with LOOM's scaling applied to each group."""
    if not grads:
        return {}
    names = list(grads)
    flat = np.concatenate([np.ravel(grads[k]) for k in names])
    for group in loom_groups(module, spec, {k: np.shape(grads[k]) for k in names}):
        if group.size:
            flat[group] = softmax_scale(flat[group])
    out, offset = {}, 0
    for k in names:
        size = np.size(grads[k])
        out[k] = flat[offset:offset + size].reshape(np.shape(grads[k]))
        offset += size
    return out
