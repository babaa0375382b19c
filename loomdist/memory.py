"""Keep freed memory in the process: glibc's malloc tuned for training's allocate-free cycle.

Every micro-batch allocates its activations (an array or three per layer, 1-32 MiB each)
and frees them after its backward. By default glibc serves such blocks from fresh mmap()s
until one is freed, and it hands the top of the heap back to the kernel whenever more than
about twice that block size lies free there. After each backward it lies free, so the next
forward writes to fresh pages again: a page fault, and the kernel zeroing 4 KiB, for every
page. In a VM each fault is a trip through the hypervisor. A loop that repeats one shape
mostly escapes this (glibc raises its thresholds after the first free); the stage actors of
the benchmark below, with their mix of sizes (activations, Ray's buffers, the concatenated
weight-gradient inputs), did not.
Measured on the 2-core VM with jobs/bench_pipeline.py (8 cells x 2 dense 1024, batch 4096,
one CPU per actor; docs/benchmarks/pipeline-2core-memory-{glibc,retain}.json): one actor's
step went from 4.0-4.9 s to 3.3-3.4 s, one actor with 16 micro-batches from 4.6 s to 3.9 s,
two stages from 2.6 s to 2.3 s.

`retain_freed_memory()` sets M_MMAP_THRESHOLD to 32 MiB (the largest glibc takes), so blocks
below it come from the heap, and M_TRIM_THRESHOLD to 2 GiB - 1, so freed heap memory stays
mapped for the next micro-batch. The process then keeps the heap of its largest step, as
PyTorch's caching allocator keeps its blocks; RSS does not shrink between steps.

Ray actors (cell, branch, step) and in-process training call it. LOOMDIST_RETAIN_MEMORY=0
turns it off. Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
MMAP_THRESHOLD = 32 << 20   # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int
_STATE: dict = {}


def retain_freed_memory() -> bool:
    """Tune glibc's malloc to reuse freed memory rather than return it to the kernel (see
    the module docstring). Once per process; returns whether the settings are in effect."""
    if "on" in _STATE:
        return _STATE["on"]
    on = False
    if not wanted():
        log.debug("LOOMDIST_RETAIN_MEMORY=0: glibc's malloc left at its defaults")
    elif platform.libc_ver()[0] == "glibc":
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):  # a static or unusual build
            mallopt = None
        on = bool(mallopt and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                  and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _STATE["on"] = on
    return on


def wanted() -> bool:
    """False when LOOMDIST_RETAIN_MEMORY is 0, false or no (processes started with this
    environment leave glibc at its defaults)."""
    return os.environ.get("LOOMDIST_RETAIN_MEMORY", "1").strip().lower() not in (
        "0", "false", "no")


def retaining() -> bool:
    """Whether retain_freed_memory has put its settings in effect in this process."""
    return _STATE.get("on", False)
