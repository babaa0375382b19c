"""Gradient checks: float64 central finite differences for layers and whole networks.

Use it when adding a layer kind: `check_layer(module, spec, params, x)` raises an
AssertionError naming the input or parameter whose backward disagrees.
"""

from __future__ import annotations

import numpy as np


def _as64(params: dict) -> dict:
    return {k: np.array(v, dtype=np.float64) for k, v in params.items()}


def numeric_grad(f, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f() / d arr by central differences; `arr` is perturbed in place and restored."""
    g = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def check_layer(module, spec, params: dict, x: np.ndarray, seed: int = 0,
                rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Assert backward(dy) equals finite differences of <forward(x), dy>."""
    p64, x64 = _as64(params), np.array(x, dtype=np.float64)
    y, cache = module.forward(spec, p64, x64)
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    dx, grads = module.backward(spec, p64, cache, dy)

    def loss():
        return float(np.sum(module.forward(spec, p64, x64)[0] * dy))

    np.testing.assert_allclose(dx, numeric_grad(loss, x64), rtol=rtol, atol=atol,
                               err_msg=f"{spec}: input gradient")
    if set(grads) != set(p64):  # explicit: python -O strips asserts
        raise AssertionError(f"{spec}: grads {sorted(grads)} != params {sorted(p64)}")
    for name, arr in p64.items():
        np.testing.assert_allclose(grads[name], numeric_grad(loss, arr), rtol=rtol, atol=atol,
                                   err_msg=f"{spec}: gradient of {name}")
