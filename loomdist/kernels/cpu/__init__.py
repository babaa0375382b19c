"""Numba CPU kernels: pure functions on C-contiguous float32/float64 arrays.

Numba's threading layer defaults to Numba's own `workqueue` here (unless NUMBA_THREADING_LAYER
says otherwise): OpenMP's worker threads keep spinning after a parallel loop and, on few cores,
starve the BLAS threads of the GEMM that follows (measured: a digits training step took
13 ms with `omp` and 1.6 ms with `workqueue` on 2 cores).
"""

import os
import warnings

# Numba's pedantic SSA check flags inlined float32 exp code it then compiles correctly.
warnings.filterwarnings("ignore", message=".*is not in scope", module="numba.core.ssa")

if "NUMBA_THREADING_LAYER" not in os.environ:
    import numba

    numba.config.THREADING_LAYER = "workqueue"
