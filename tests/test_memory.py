"""loomdist.memory: glibc keeps freed activation memory for the next micro-batch."""

import os
import platform
import subprocess
import sys

import pytest

from loomdist import memory

GLIBC = platform.libc_ver()[0] == "glibc"

# 64 arrays of 1 MiB, freed: resident MiB before and after the free, and whether
# retain_freed_memory() put its settings in effect.
CHILD = """
import numpy as np
from loomdist.memory import retain_freed_memory, retaining
on = retain_freed_memory()
assert retaining() == on
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
arrays = [np.ones((256, 1024), np.float32) for _ in range(64)]
before = rss()
del arrays
print(on, before, rss())
"""


def _child(env_value):
    env = {k: v for k, v in os.environ.items() if k != "LOOMDIST_RETAIN_MEMORY"}
    if env_value is not None:
        env["LOOMDIST_RETAIN_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2])


@pytest.mark.skipif(not GLIBC or not os.path.exists("/proc/self/statm"),
                    reason="glibc's malloc and /proc only")
def test_freed_activations_stay_resident_for_the_next_micro_batch():
    on, before, after = _child(None)
    assert on
    assert after >= before - 8  # the 64 MiB freed stayed mapped for reuse


@pytest.mark.skipif(not GLIBC or not os.path.exists("/proc/self/statm"),
                    reason="glibc's malloc and /proc only")
@pytest.mark.parametrize("value", ["0", "false", "No"])
def test_loomdist_retain_memory_0_leaves_glibc_at_its_defaults(value):
    on, before, after = _child(value)
    assert not on
    assert after < before - 48  # glibc gave the freed blocks back to the kernel


def test_retain_freed_memory_is_applied_once_per_process(monkeypatch):
    monkeypatch.setattr(memory, "_STATE", {"on": True})
    monkeypatch.setenv("LOOMDIST_RETAIN_MEMORY", "0")  # read only on the first call
    assert memory.retain_freed_memory() is True
    assert memory.retaining()
