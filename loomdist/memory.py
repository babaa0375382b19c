"""Keep freed memory in the process: glibc's malloc tuned for training's allocate-free cycle.

Every micro-batch allocates its activations (an array or three per layer, 1-32 MiB each at
the benchmark's sizes) and frees them after its backward. By default glibc serves such
blocks from fresh mmap()s until one is freed, and it hands the top of the heap back to the
kernel whenever more than about twice that block size lies free there. After each backward
it lies free, so the next forward writes to fresh pages again: a page fault and a zeroed page
for every 4 KiB. jobs/bench_memory.py counts them: about 16,600 per whole-batch step of the
grid below with glibc's defaults, 0-2 with memory kept. (A bare loop of dense layers over one
shape escaped this once glibc had raised its thresholds after the first free; a training
step, with its mix of sizes, did not.)

Measured on the 2-core VM, with memory kept against glibc's defaults:
- jobs/bench_pipeline.py (8 cells x 2 dense 1024, batch 4096, one CPU per actor; one run
  each, docs/benchmarks/pipeline-2core-memory-{glibc,retain}.json): one actor's step took
  3.4/3.3 s (before/after the sweep) against 4.0/4.9 s, one actor with 16 micro-batches 3.9 s
  against 4.6 s, two stages 2.3 s against 2.6 s;
- jobs/bench_memory.py (the same grid, whole-batch train_steps in one process, two runs of 3
  repeats; docs/benchmarks/memory-local-2core.json is the second): 3427 against 3927 ms a
  step, and 3391 against 3705 ms.

`retain_freed_memory()` sets M_TRIM_THRESHOLD to 2 GiB - 1, so freed heap memory stays mapped
for the next micro-batch, and M_MMAP_THRESHOLD to 1 GiB (32 MiB, the ceiling of glibc's own
adjustment, where a glibc refuses more), so blocks below it come from the heap. The process
then keeps the heap of its largest step, as PyTorch's caching allocator keeps its blocks: RSS
does not shrink between steps.

The Ray actors (cell, branch, step) call it as they start, and `loomdist train --backend
local` before it trains; LOOMDIST_RETAIN_MEMORY=0 in their environment turns it off. Library
calls (run_training, Trainer) leave the caller's process alone. Other C libraries (musl,
macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int
MMAP_THRESHOLDS = (1 << 30, 32 << 20)  # the first one this glibc takes
_STATE: dict = {}  # "mmap_threshold": what retain_freed_memory set (None: nothing), once


def retain_freed_memory() -> bool:
    """Tune glibc's malloc to reuse freed memory rather than return it to the kernel (see
    the module docstring). Once per process; returns whether the settings are in effect."""
    if "mmap_threshold" not in _STATE:
        _STATE["mmap_threshold"] = _apply() if retention_wanted() else None
    return is_retaining()


def _apply() -> int | None:
    """Set the thresholds; returns the mmap threshold set, or None when it was not taken
    (the trim threshold may be set then: alone it only keeps more memory)."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a static or unusual build
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # the trim threshold first: alone it only keeps more, where a raised mmap threshold
    # alone would move big blocks to a heap that glibc still trims
    if not mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD):
        return None
    return next((t for t in MMAP_THRESHOLDS if mallopt(M_MMAP_THRESHOLD, t)), None)


def retention_wanted() -> bool:
    """False when LOOMDIST_RETAIN_MEMORY is 0, false or no (processes started with this
    environment leave glibc at its defaults)."""
    return os.environ.get("LOOMDIST_RETAIN_MEMORY", "1").strip().lower() not in (
        "0", "false", "no")


def is_retaining() -> bool:
    """Whether retain_freed_memory has put its settings in effect in this process."""
    return mmap_threshold() is not None


def mmap_threshold() -> int | None:
    """The M_MMAP_THRESHOLD retain_freed_memory set in this process (None: not set): blocks
    of at least this many bytes still come from mmap() and go back to the kernel on free."""
    return _STATE.get("mmap_threshold")
