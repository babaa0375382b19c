"""Thread counts for Numba and BLAS, set once per process (or actor) so they do not thrash."""

from __future__ import annotations

import os

_STATE: dict = {}


def set_threads(n: int | None = None) -> int:
    """Use `n` threads for Numba's parallel loops and for BLAS (default: all visible cores).

    Returns the count applied. Call it once per process; Ray actors call it with their
    num_cpus. Environment variables (LOOMDIST_THREADS) override the default.
    """
    import numba
    from threadpoolctl import threadpool_limits

    if n is None:
        n = int(os.environ.get("LOOMDIST_THREADS", 0)) or len(os.sched_getaffinity(0))
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")  # applies process-wide until changed
    _STATE["n"] = n
    return n


def current_threads() -> int:
    """The count last applied by set_threads, or 0 if never called."""
    return _STATE.get("n", 0)
