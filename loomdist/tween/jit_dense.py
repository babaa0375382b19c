"""Numba loops of the Dense tween rules (chain backward, chain update), float32 throughout.

Dense is every benchmark network's workhorse, and the per-sample vectors are small (<= 64), so
numpy's per-call overhead would dominate a TweenStep; these loops do one layer in one call.
They follow spec 4.6/4.9 literally (same clip points, same skip rules); `NUMBA_DISABLE_JIT=1`
runs them as plain Python.
"""

from __future__ import annotations

import numba
import numpy as np

ACT_IDS = {"relu": 0, "sigmoid": 1, "tanh": 2, "softplus": 3, "leaky_relu": 4}
_JIT = dict(cache=True, nogil=True)


def act_id(name) -> int:
    """LOOM activation id for the derivative-from-output switch (5 = identity)."""
    return ACT_IDS.get(name, 5)


@numba.njit(**_JIT)
def phi_out(a, y, relu_slope, leaky_slope, eps):
    """activateDerivativeFromOutput for one float32 value y."""
    one = np.float32(1)
    if a == 0:
        return relu_slope if y > 0 else np.float32(0)
    if a == 1:
        return y * (one - y) + eps
    if a == 2:
        return one - y * y + eps
    if a == 3:
        return np.float32(one / (one + np.exp(-y))) + eps
    if a == 4:
        return one if y >= 0 else leaky_slope
    return one


@numba.njit(**_JIT)
def _clip(v, m):
    return -m if v < -m else (m if v > m else v)


@numba.njit(**_JIT)
def dense_chain_backward(W, g, y, a, s, consts, out):
    """out[k] = clip10(sum_j W[k,j] clip10(g_j phi'(y_j) s) * nu); W (in, out)."""
    n_in, n_out = W.shape
    m = min(g.size, y.size, n_out)
    ten = np.float32(10)
    d = np.zeros(n_out, np.float32)
    for j in range(m):
        d[j] = _clip(g[j] * phi_out(a, y[j], consts[0], consts[1], consts[2]) * s, ten)
    nu = np.float32(1.0 / np.sqrt(n_out)) if n_out > 1 else np.float32(1)
    k4 = n_in - n_in % 4
    for k in range(0, k4, 4):  # four rows at once, each summed in j order
        a0 = a1 = a2 = a3 = np.float32(0)
        for j in range(n_out):
            dj = d[j]
            a0 += W[k, j] * dj
            a1 += W[k + 1, j] * dj
            a2 += W[k + 2, j] * dj
            a3 += W[k + 3, j] * dj
        out[k], out[k + 1] = _clip(a0 * nu, ten), _clip(a1 * nu, ten)
        out[k + 2], out[k + 3] = _clip(a2 * nu, ten), _clip(a3 * nu, ten)
    for k in range(k4, n_in):
        acc = np.float32(0)
        for j in range(n_out):
            acc += W[k, j] * d[j]
        out[k] = _clip(acc * nu, ten)


@numba.njit(**_JIT)
def dense_chain_update(W, b, vel, g, x, y, a, r, mom, consts):
    """b_j += clip1(r d_j); v = mom v + (1-mom) clip1(r x_k d_j); W += v; non-finite keeps.

    Row-major sweep (each weight's arithmetic is independent, so the order is free)."""
    n_in, n_out = W.shape
    m = min(g.size, y.size, n_out)
    kk = min(x.size, n_in)
    one = np.float32(1)
    d = np.empty(m, np.float32)
    for j in range(m):
        d[j] = g[j] * phi_out(a, y[j], consts[0], consts[1], consts[2])
        nb = b[j] + _clip(r * d[j], one)
        if np.isfinite(nb):
            b[j] = nb
    keep = one - mom
    for k in range(kk):
        rx = r * x[k]
        Wk, vk = W[k], vel[k]
        for j in range(m):  # selects only (clip keeps NaN, w - w == 0 is isfinite): SIMD
            t = rx * d[j]
            t = one if t > one else t
            t = -one if t < -one else t
            v = mom * vk[j] + keep * t
            vk[j] = v
            nw = Wk[j] + v
            Wk[j] = nw if nw - nw == 0 else Wk[j]


@numba.njit(**_JIT)
def safe_clip(v, m):
    """In place: NaN/Inf -> 0, then clip to [-m, m]."""
    for i in range(v.size):
        e = v[i]
        v[i] = _clip(e, m) if np.isfinite(e) else np.float32(0)


@numba.njit(**_JIT)
def chain_target(x, g, scale, lo, hi, clamp, out):
    """out = x + scale*g over the common length (x beyond it; NaN -> x), clamped to [lo, hi]
    when `clamp`."""
    for j in range(x.size):
        t = x[j] + scale * g[j] if j < g.size else x[j]
        if not np.isfinite(t):
            t = x[j]
        if clamp:
            t = lo if t < lo else (hi if t > hi else t)
        out[j] = t


@numba.njit(**_JIT)
def budget_gap(f, b):
    """(link budget, gap) of output f against target b over their common length (float64)."""
    m = min(f.size, b.size)
    if m == 0:
        return 0.5, 0.0
    ff = bb = fb = sq = 0.0
    for j in range(m):
        u, w = np.float64(f[j]), np.float64(b[j])
        ff += u * u
        bb += w * w
        fb += u * w
        sq += (u - w) * (u - w)
    gap = sq / m
    if ff <= 0.001 or bb <= 0.001:
        return 0.5, gap
    return (fb / np.sqrt(ff * bb) + 1.0) / 2.0, gap


# Fused TweenStep kernels of an all-Dense network (fastplan.py). They live in this file so
# Numba's cache, which only watches the defining file, recompiles them with the loops above.
# Flat buffers: A holds a_0..a_L at offsets oa, G the errors g_0..g_L and T the targets
# t_0..t_L at offsets og (g_L and t_L have out_size values). They call the per-layer loops in
# the generic path's order, so the results are bit for bit passes.py's.
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
        dense_chain_backward(Ws[k], g, y, acts[k], scales[k], consts, cur)
        safe_clip(cur, np.float32(10))
        chain_target(x, cur, gscale, tb[k, 0], tb[k, 1], tb[k, 2] != 0,
                        T[og[k]:og[k + 1]])
    prod = 1.0
    for i in range(L):
        b, gp = budget_gap(A[oa[i + 1]:oa[i + 2]], T[og[i + 1]:og[i + 2]])
        budgets[i], gaps[i] = b, gp
        prod *= np.float64(np.float32(b))
        barrier[i] = prod


@numba.njit(**_JIT)
def fused_update(Ws, bs, vels, acts, A, oa, G, og, rate, trates, scales, mom, consts):
    """Every layer's chain update with r = float32(rate * trates[k] * scales[k]) (float64)."""
    for k in range(len(Ws)):
        r = np.float32(rate * trates[k] * scales[k])
        dense_chain_update(Ws[k], bs[k], vels[k], G[og[k + 1]:og[k + 2]],
                              A[oa[k]:oa[k + 1]], A[oa[k + 1]:oa[k + 2]], acts[k], r, mom,
                              consts)
