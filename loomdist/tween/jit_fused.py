"""Fused Numba kernels of a TweenStep over a network of Dense layers (spec 4.5-4.9).

One call does the chain-rule sweep of every layer (output error, derivative from the output,
depth scale, 1/sqrt(out) damping, clip 10, safe), the backward targets, the link budgets,
gaps and depth barrier; a second call does every layer's update (clip 1, EMA momentum,
safe). They call jit_dense's per-layer loops in the generic path's order, so the results are
bit for bit those of passes.chain_backward / link_budgets / chain_update.

Flat buffers: A holds the activations a_0..a_L at offsets oa, G the errors g_0..g_L and T the
targets t_0..t_L at offsets og (g_L and t_L have out_size values).
"""

from __future__ import annotations

import numba
import numpy as np

from . import jit_dense as jd

_JIT = dict(cache=True, nogil=True)


@numba.njit(**_JIT)
def fused_backward(Ws, acts, A, oa, G, T, og, c, out_size, scales, consts, tb, gscale,
                   budgets, gaps, barrier):
    """Chain sweep, targets, budgets/gaps and depth barrier of L Dense layers (in place).

    acts[k]: activation id of layer k; scales[k]: its float32 depth scale; tb (L, 3):
    lo, hi, clamp flag of layer k's target bounds."""
    L = len(Ws)
    gL, tL = G[og[L]:og[L + 1]], T[og[L]:og[L + 1]]
    y = A[oa[L]:oa[L + 1]]
    for j in range(out_size):
        gL[j] = -y[j] if j < y.size else np.float32(0)
        tL[j] = np.float32(0)
    if 0 <= c < out_size:
        gL[c] += np.float32(1)
        tL[c] = np.float32(1)
    for k in range(L - 1, -1, -1):
        x, y = A[oa[k]:oa[k + 1]], A[oa[k + 1]:oa[k + 2]]
        g, cur = G[og[k + 1]:og[k + 2]], G[og[k]:og[k + 1]]
        jd.dense_chain_backward(Ws[k], g, y, acts[k], scales[k], consts, cur)
        jd.safe_clip(cur, np.float32(10))
        jd.chain_target(x, cur, gscale, tb[k, 0], tb[k, 1], tb[k, 2] != 0,
                        T[og[k]:og[k + 1]])
    prod = 1.0
    for i in range(L):
        b, gp = jd.budget_gap(A[oa[i + 1]:oa[i + 2]], T[og[i + 1]:og[i + 2]])
        budgets[i], gaps[i] = b, gp
        prod *= np.float64(np.float32(b))
        barrier[i] = prod


@numba.njit(**_JIT)
def fused_update(Ws, bs, vels, acts, A, oa, G, og, rate, trates, scales, mom, consts):
    """Every layer's chain update with r = float32(rate * trates[k] * scales[k]) (float64)."""
    for k in range(len(Ws)):
        r = np.float32(rate * trates[k] * scales[k])
        jd.dense_chain_update(Ws[k], bs[k], vels[k], G[og[k + 1]:og[k + 2]],
                              A[oa[k]:oa[k + 1]], A[oa[k + 1]:oa[k + 2]], acts[k], r, mom,
                              consts)
