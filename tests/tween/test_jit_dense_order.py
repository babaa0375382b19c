"""jit_dense's reordered Dense loops equal the spec's literal loops (plain float32 Python)."""

import numpy as np
import pytest

from loomdist.tween import jit_dense as jd

F = np.float32


def _clip(v, m):
    return -m if v < -m else (m if v > m else v)


def _phi(a, y, c):
    return jd.phi_out.py_func(a, y, c[0], c[1], c[2])


def ref_backward(W, g, y, a, s, c):
    n_in, n_out = W.shape
    d = np.zeros(n_out, F)
    for j in range(min(g.size, y.size, n_out)):
        d[j] = _clip(g[j] * _phi(a, y[j], c) * s, F(10))
    nu = F(1.0 / np.sqrt(n_out)) if n_out > 1 else F(1)
    out = np.empty(n_in, F)
    for k in range(n_in):
        acc = F(0)
        for j in range(n_out):
            acc = F(acc + W[k, j] * d[j])
        out[k] = _clip(F(acc * nu), F(10))
    return out


def ref_update(W, b, vel, g, x, y, a, r, mom, c):
    n_in, n_out = W.shape
    for j in range(min(g.size, y.size, n_out)):
        d = g[j] * _phi(a, y[j], c)
        nb = b[j] + _clip(r * d, F(1))
        if np.isfinite(nb):
            b[j] = nb
        for k in range(min(x.size, n_in)):
            v = mom * vel[k, j] + (F(1) - mom) * _clip(r * x[k] * d, F(1))
            vel[k, j] = v
            if np.isfinite(W[k, j] + v):
                W[k, j] = W[k, j] + v


@pytest.mark.filterwarnings("ignore:overflow")
@pytest.mark.parametrize("a", range(6))
@pytest.mark.parametrize("shape", [(7, 5), (8, 3), (13, 1), (4, 9)])
def test_reordered_loops_equal_literal_loops(a, shape):
    rng = np.random.default_rng(a * 31 + shape[0])
    W = rng.normal(0, 3, shape).astype(F)
    W[0, 0] = np.float32(3e38)  # an update that overflows keeps the old weight
    g, y = rng.normal(0, 2, shape[1]).astype(F), rng.uniform(-1, 1, shape[1]).astype(F)
    x, c = rng.normal(0, 2, shape[0]).astype(F), np.array([1.1, 0.1, 1e-3], F)
    x[0] = np.float32(1e30)
    out = np.empty(shape[0], F)
    jd.dense_chain_backward(W, g, y, a, F(1.7), c, out)
    np.testing.assert_array_equal(out, ref_backward(W, g, y, a, F(1.7), c))
    b, vel = rng.normal(0, 1, shape[1]).astype(F), rng.normal(0, 1, shape).astype(F)
    W2, b2, v2 = W.copy(), b.copy(), vel.copy()
    jd.dense_chain_update(W, b, vel, g, x, y, a, F(0.3), F(0.9), c)
    ref_update(W2, b2, v2, g, x, y, a, F(0.3), F(0.9), c)
    for u, v in ((W, W2), (b, b2), (vel, v2)):
        np.testing.assert_array_equal(u, v)
