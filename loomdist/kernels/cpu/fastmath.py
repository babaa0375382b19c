"""Vectorisable float math for Numba kernels (this Numba has no SVML)."""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import overload

# reassociation lets LLVM vectorise reductions; no nnan/ninf assumptions
FM = {"reassoc", "contract", "nsz", "arcp"}


@numba.njit(cache=True, inline="always", fastmath=FM)
def exp32(v):
    under = v < np.float32(-87.0)  # exp underflows: exactly 0, as the exact exp gives
    # float32 exp without SVML, so LLVM can vectorise it: 2^k * p(r), r = v - k*ln2
    # (Cephes expf polynomial, <= 1 ulp on the clamped range)
    v = min(max(v, np.float32(-87.0)), np.float32(88.0))
    k = np.floor(v * np.float32(1.44269504) + np.float32(0.5))  # float: stays in SIMD
    r = v - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * r * r + r + np.float32(1.0)
    e = p * np.int32((np.int32(k) + np.int32(127)) << np.int32(23)).view(np.float32)
    return np.float32(0.0) if under else e




def fexp(v):
    """exp(v): exact in Python and for float64; the vectorisable exp32 for float32 in Numba."""
    return math.exp(v)


@overload(fexp, inline="always", jit_options={"fastmath": FM})
def _fexp_jit(v):
    if isinstance(v, numba.types.Float) and v.bitwidth == 32:
        def fast(v):
            return exp32(v)
        return fast

    def exact(v):
        return math.exp(v)
    return exact
