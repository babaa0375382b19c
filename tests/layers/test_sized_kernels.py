"""jit.SizedKernel: serial and parallel builds of one kernel agree, and calls pick the
parallel build only for large arrays on more than one thread."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from loomdist.kernels.cpu import attention, norm, softmax
from loomdist.kernels.cpu.jit import PARALLEL_MIN, SizedKernel


def test_pick_by_size_and_threads():
    k = attention._causal_softmax
    assert isinstance(k, SizedKernel) and k.py_func.__name__ == "_causal_softmax"
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)  # one thread: always the serial build
        assert k.pick(PARALLEL_MIN) is k.serial
        if numba.config.NUMBA_NUM_THREADS > 1:
            numba.set_num_threads(2)
            assert k.pick(PARALLEL_MIN - 1) is k.serial
            assert k.pick(PARALLEL_MIN) is k.parallel
    finally:
        numba.set_num_threads(before)


def test_builds_have_their_own_cache_files():
    k = norm._ln_forward
    if not hasattr(k.serial, "_cache"):
        pytest.skip("NUMBA_DISABLE_JIT: no builds")
    names = {b: getattr(k, b)._cache._cache_file._index_name for b in ("serial", "parallel")}
    assert names["serial"] != names["parallel"], names
    assert all(n.startswith(f"norm._ln_forward_{b}_") for b, n in names.items()), names


@pytest.mark.parametrize("rows", [3, 700])
def test_serial_and_parallel_builds_agree(rows):
    x = np.random.default_rng(rows).standard_normal((rows, 96)).astype(np.float32)
    out = {}
    for build in ("serial", "parallel"):
        rng = np.random.default_rng(1)
        y = np.empty_like(x)
        getattr(softmax._KERNELS["_softmax_rows"], build)(x, np.float32(1.0), y)
        s = rng.standard_normal((2, 7, 7)).astype(np.float32)  # (n, seq, seq) scores
        p = np.empty_like(s)
        getattr(attention._causal_softmax, build)(s.copy(), np.float32(0.5), p)
        out[build] = (y, p)
    for a, b in zip(out["serial"], out["parallel"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out["serial"][0], e / e.sum(axis=1, keepdims=True), rtol=1e-5)


def test_serial_build_divides_like_the_parallel_one():
    """A zero softmax total (here from NaN scores under fastmath) must not raise in the
    serial build: both use Numba's numpy error model, as prange code does."""
    s = np.full((1, 2, 2), np.nan, np.float32)
    for build in ("serial", "parallel"):
        getattr(attention._causal_softmax, build)(s.copy(), np.float32(1.0), np.empty_like(s))
