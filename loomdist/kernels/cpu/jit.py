"""Numba kernels in two builds: serial for small arrays, prange-parallel for large ones.

Waking Numba's thread pool costs tens of microseconds per call, more than the whole work of
a small array (a step-mode tick of a 64-wide attention layer spends most of its time there),
and nothing is gained on one thread. `sized_njit` compiles a kernel twice and picks the
parallel build only when its first argument has at least PARALLEL_MIN elements and Numba
has more than one thread. Both builds run the same loop body, so results agree up to the
reduction order of fastmath kernels.
"""

from __future__ import annotations

import types

import numba

PARALLEL_MIN = 1 << 16  # elements of a kernel's first argument


class SizedKernel:
    """`fn` compiled serial (`.serial`) and parallel (`.parallel`); calls pick by size."""

    def __init__(self, fn, fastmath):
        # a renamed copy for the serial build: Numba's on-disk cache is keyed by the
        # function's qualified name and bytecode, not by its compile flags
        twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial",
                                  fn.__defaults__, fn.__closure__)
        twin.__qualname__ = fn.__qualname__ + "_serial"
        # error_model "numpy" in both: a prange build divides by zero to inf/nan instead of
        # raising, and the serial build must give the same results
        opts = dict(cache=True, fastmath=fastmath, error_model="numpy")
        self.serial = numba.njit(**opts)(twin)
        self.parallel = numba.njit(parallel=True, **opts)(fn)
        self.__name__, self.__doc__ = fn.__name__, fn.__doc__

    @property
    def py_func(self):
        """The plain Python function (what NUMBA_DISABLE_JIT=1 runs)."""
        return getattr(self.parallel, "py_func", self.parallel)

    def pick(self, size: int):
        """The build for a first argument of `size` elements under the current threads."""
        return self.parallel if size >= PARALLEL_MIN and numba.get_num_threads() > 1 \
            else self.serial

    def __call__(self, *args):
        return self.pick(args[0].size)(*args)


def sized_njit(fastmath=True):
    """Decorator: a SizedKernel with these fastmath flags (cache=True)."""
    return lambda fn: SizedKernel(fn, fastmath)
