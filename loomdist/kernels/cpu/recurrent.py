"""RNN / LSTM time-step kernels: fused gate nonlinearities and cell update, and their backward.

The wrappers own the time loop: the input projection of all steps is one GEMM, each step is
one recurrent GEMM (numpy -> BLAS, on strided (batch, H) views of the (batch, seq, H) state
arrays, which BLAS reads in place) followed by one fused Numba kernel, and the recurrent weight
gradient is one GEMM over all steps at the end. LSTM gate blocks are stacked [i | f | g | o]
along the 4H axis (a computation detail; parameters keep LOOM's per-gate names).

float32 uses a vectorisable rational tanh and sigmoid(v) = (1 + tanh(v/2)) / 2 (this Numba has
no SVML; error_model="numpy" drops the zero-division checks that block SIMD). float64 and pure
Python (NUMBA_DISABLE_JIT=1) use the exact libm functions, so finite differences stay exact.
The step kernels stay serial: a prange twin was 10x slower, its threads fighting OpenBLAS's
spinning workers between the per-step GEMMs on 2 cores.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import overload

from .fastmath import FM as _FM

_F = np.float32
_ONE = _F(1.0)  # float32 literal: keeps float32 loops in float32, float64 ones exact


@numba.njit(cache=True, inline="always", fastmath=_FM, error_model="numpy")
def _tanh32(v):
    # Eigen's float32 rational tanh (13/6 odd/even polynomials), a few ulp on the clamped range
    v = min(max(v, _F(-7.90531110763549805)), _F(7.90531110763549805))
    v2 = v * v
    p = v2 * _F(-2.76076847742355e-16) + _F(2.00018790482477e-13)
    p = v2 * p + _F(-8.60467152213735e-11)
    p = v2 * p + _F(5.12229709037114e-08)
    p = v2 * p + _F(1.48572235717979e-05)
    p = v2 * p + _F(6.37261928875436e-04)
    p = v2 * p + _F(4.89352455891786e-03)
    q = v2 * _F(1.19825839466702e-06) + _F(1.18534705686654e-04)
    q = v2 * q + _F(2.26843463243900e-03)
    q = v2 * q + _F(4.89352518554385e-03)
    return v * p / q


def _tanh(v):
    """tanh; exact here, the vectorisable float32 twin under Numba.

    Keeps v's numpy scalar type: a bare Python float would meet the float32 `_ONE` and
    round the float64 reference mode (NUMBA_DISABLE_JIT) to float32 (NEP 50).
    """
    return type(v)(math.tanh(v))


def _sigmoid(v):
    """Logistic; exact here (no OverflowError for v << 0), a float32 twin under Numba."""
    if v >= 0:
        return type(v)(1.0 / (1.0 + math.exp(-v)))
    e = math.exp(v)
    return type(v)(e / (1.0 + e))


@overload(_tanh, inline="always", jit_options={"fastmath": _FM})
def _tanh_jit(v):
    if isinstance(v, numba.types.Float) and v.bitwidth == 32:
        return lambda v: _tanh32(v)
    return lambda v: math.tanh(v)


@overload(_sigmoid, inline="always", jit_options={"fastmath": _FM})
def _sigmoid_jit(v):
    if isinstance(v, numba.types.Float) and v.bitwidth == 32:
        return lambda v: _F(0.5) * _tanh32(_F(0.5) * v) + _F(0.5)  # vectorises, exp32 not
    return lambda v: 1.0 / (1.0 + math.exp(-v))  # exp overflows to inf: still 0


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _rnn_step(y, hh, b, t):
    # y: (batch, seq, H) holds x W_ih^T at step t on entry, h_t on exit; hh: (batch, H)
    nb, _, n = y.shape
    for r in range(nb):
        row, g = y[r, t], hh[r]
        for j in range(n):
            row[j] = _tanh(row[j] + g[j] + b[j])


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _rnn_step_back(dy, dhn, y, t, dz):
    # dz[:, t] = (dy[:, t] + dh from step t+1) * (1 - h_t^2); all (batch, seq, H) but dhn
    nb, _, n = y.shape
    for r in range(nb):
        h, d, g, out = y[r, t], dy[r, t], dhn[r], dz[r, t]
        for j in range(n):
            out[j] = (d[j] + g[j]) * (_ONE - h[j] * h[j])


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _lstm_step(gates, hh, b, cprev, c, y, t):
    # gates: (batch, seq, 4H) holds x W^T at step t on entry, activated [i|f|g|o] on exit;
    # hh: (batch, 4H) = h_{t-1} W_hh^T; cprev: (batch, H) = c_{t-1}; c, y: (batch, seq, H)
    nb, _, n = c.shape
    for r in range(nb):
        a, g, cp, cr, hr = gates[r, t], hh[r], cprev[r], c[r, t], y[r, t]
        for j in range(4 * n):  # one flat loop over the gate blocks vectorises best
            v = a[j] + g[j] + b[j]
            a[j] = _tanh(v) if 2 * n <= j < 3 * n else _sigmoid(v)
        for j in range(n):
            cv = a[j] * a[2 * n + j] + a[n + j] * cp[j]
            cr[j] = cv
            hr[j] = a[3 * n + j] * _tanh(cv)


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _lstm_step_back(dy, dhn, dcn, gates, cprev, c, t, dz):
    # dy, c: (batch, seq, H); gates, dz: (batch, seq, 4H); dhn: (batch, H) = dz_{t+1} W_hh;
    # cprev: (batch, H) = c_{t-1}; dcn: (batch, H) carries dL/dc_t -> dL/dc_{t-1} in place
    nb, _, n = c.shape
    for r in range(nb):
        a, d, cp, cr, out, gh, gc = gates[r, t], dy[r, t], cprev[r], c[r, t], dz[r, t], \
            dhn[r], dcn[r]
        for j in range(n):
            i, f, u, o = a[j], a[n + j], a[2 * n + j], a[3 * n + j]
            tc = _tanh(cr[j])
            dh = d[j] + gh[j]
            dc = gc[j] + dh * o * (_ONE - tc * tc)
            out[j] = dc * u * i * (_ONE - i)
            out[n + j] = dc * cp[j] * f * (_ONE - f)
            out[2 * n + j] = dc * i * (_ONE - u * u)
            out[3 * n + j] = dh * tc * o * (_ONE - o)
            gc[j] = dc * f


def _recurrent_gemm(h_prev: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    np.matmul(h_prev, w, out=out)  # h_prev: a strided (batch, H) view, read in place by BLAS


def rnn_forward(x3: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b: np.ndarray):
    """x3: (batch, seq, in) -> all hidden states (batch, seq, H), h_0 = 0."""
    nb, seq, _ = x3.shape
    y = (x3.reshape(nb * seq, -1) @ w_ih.T).reshape(nb, seq, -1)  # (batch, seq, H)
    hh = np.zeros((nb, y.shape[2]), y.dtype)
    for t in range(seq):
        if t:
            _recurrent_gemm(y[:, t - 1], w_hh.T, hh)
        _rnn_step(y, hh, b, t)
    return y


def rnn_backward(x3, y, w_ih, w_hh, dy):
    """BPTT. Returns dx (batch, seq, in), dW_ih (H, in), dW_hh (H, H), db (H,)."""
    nb, seq, n = y.shape
    dz = np.empty_like(y)  # dL/d(pre-activation), (batch, seq, H)
    dhn = np.zeros((nb, n), y.dtype)
    for t in range(seq - 1, -1, -1):
        _rnn_step_back(dy, dhn, y, t, dz)
        if t:
            _recurrent_gemm(dz[:, t], w_hh, dhn)
    dz2 = dz.reshape(nb * seq, n)
    dx = (dz2 @ w_ih).reshape(x3.shape)
    return dx, dz2.T @ x3.reshape(nb * seq, -1), shifted_outer(dz, y), dz2.sum(axis=0)


def shifted_outer(dz: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sum over b and t >= 1 of dz[b, t]^T y[b, t-1]: one GEMM over all steps.

    dz: (batch, seq, G), y: (batch, seq, H) -> (G, H). The flat rows of y shifted by one are
    h_{t-1}, except at t = 0 where they are the previous sample's last state: those few
    cross-sample products are subtracted afterwards.
    """
    nb, seq, g = dz.shape
    n = y.shape[2]
    out = dz.reshape(nb * seq, g)[1:].T @ y.reshape(nb * seq, n)[:-1]
    if nb > 1:
        out -= dz[1:, 0].T @ y[:-1, seq - 1]
    return out


def lstm_forward(x3, w_ih, w_hh, b):
    """x3: (batch, seq, in); stacked w_ih (4H, in), w_hh (4H, H), b (4H,).

    Returns (y, c, gates): hidden states and cells (batch, seq, H), activated gates
    (batch, seq, 4H) in [i|f|g|o] order.
    """
    nb, seq, _ = x3.shape
    n = w_hh.shape[1]
    gates = (x3.reshape(nb * seq, -1) @ w_ih.T).reshape(nb, seq, 4 * n)
    c = np.empty((nb, seq, n), gates.dtype)
    y = np.empty_like(c)
    hh = np.zeros((nb, 4 * n), gates.dtype)
    zero = np.zeros((nb, n), gates.dtype)  # c_{-1}
    for t in range(seq):
        if t:
            _recurrent_gemm(y[:, t - 1], w_hh.T, hh)
        _lstm_step(gates, hh, b, c[:, t - 1] if t else zero, c, y, t)
    return y, c, gates


def lstm_backward(x3, y, c, gates, w_ih, w_hh, dy):
    """BPTT. Returns dx (batch, seq, in), dW_ih (4H, in), dW_hh (4H, H), db (4H,)."""
    nb, seq, n = y.shape
    dz = np.empty_like(gates)  # dL/d(gate pre-activations), (batch, seq, 4H)
    dhn = np.zeros((nb, n), y.dtype)
    dcn = np.zeros((nb, n), y.dtype)
    zero = np.zeros((nb, n), y.dtype)  # c_{-1}
    for t in range(seq - 1, -1, -1):
        _lstm_step_back(dy, dhn, dcn, gates, c[:, t - 1] if t else zero, c, t, dz)
        if t:
            _recurrent_gemm(dz[:, t], w_hh, dhn)
    dz2 = dz.reshape(nb * seq, 4 * n)
    dx = (dz2 @ w_ih).reshape(x3.shape)
    return dx, dz2.T @ x3.reshape(nb * seq, -1), shifted_outer(dz, y), dz2.sum(axis=0)
