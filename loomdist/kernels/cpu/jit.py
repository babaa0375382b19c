"""Numba kernels in two builds: serial for small arrays, prange-parallel for large ones.

Waking Numba's thread pool costs tens of microseconds per call, more than the whole work of
a small array (a step-mode tick of a 64-wide attention layer spends most of its time there),
and nothing is gained on one thread. `sized_njit` compiles a kernel twice and picks the
parallel build only when its first argument has at least PARALLEL_MIN elements and Numba
has more than one thread. Both builds run the same loop body, so results agree up to the
reduction order of fastmath kernels.
"""

from __future__ import annotations

import hashlib
import types

import numba

PARALLEL_MIN = 1 << 16  # elements of a kernel's first argument


class SizedKernel:
    """`fn` compiled serial (`.serial`) and parallel (`.parallel`); calls pick by size."""

    def __init__(self, fn, fastmath):
        # error_model "numpy" in both: a prange build divides by zero to inf/nan instead of
        # raising, and the serial build must give the same results
        opts = dict(cache=True, fastmath=fastmath, error_model="numpy")
        self._fn, self.__name__, self.__doc__ = fn, fn.__name__, fn.__doc__
        self.serial = numba.njit(**opts)(_twin(fn, "serial", opts))
        self.parallel = numba.njit(parallel=True, **opts)(_twin(fn, "parallel", opts))

    @property
    def py_func(self):
        """The plain Python function (what NUMBA_DISABLE_JIT=1 runs)."""
        return self._fn

    def pick(self, size: int):
        """The build for a first argument of `size` elements under the current threads."""
        return self.parallel if size >= PARALLEL_MIN and numba.get_num_threads() > 1 \
            else self.serial

    def __call__(self, *args):
        return self.pick(args[0].size)(*args)


def _twin(fn, build: str, opts: dict):
    """A copy of `fn` whose qualified name names the build and a hash of its options.

    Numba's on-disk cache is keyed by the qualified name, the bytecode and the source file's
    stamp, not by compile flags: without this the two builds would share cache entries, and
    a change of options here would load machine code compiled with the old ones."""
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                              fn.__closure__)
    flags = hashlib.sha1(repr(sorted((k, sorted(v) if isinstance(v, set) else v)
                                     for k, v in opts.items())).encode()).hexdigest()[:8]
    twin.__qualname__ = f"{fn.__qualname__}_{build}_{flags}"
    return twin


def sized_njit(fastmath=True):
    """Decorator: a SizedKernel with these fastmath flags (cache=True)."""
    return lambda fn: SizedKernel(fn, fastmath)
