"""loomdist.memory: glibc keeps freed activation memory for the next micro-batch."""

import json
import os
import platform
import subprocess
import sys

import pytest

from loomdist import memory

GLIBC = platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC or not os.path.exists("/proc/self/statm"),
                                 reason="glibc's malloc and /proc only")

# `count` arrays of `mib` MiB, freed: resident MiB before and after the free, whether
# retain_freed_memory() put its settings in effect, and the mmap threshold it set.
CHILD = """
import os, sys
import numpy as np
from loomdist.memory import is_retaining, mmap_threshold, retain_freed_memory
on = retain_freed_memory()
assert is_retaining() == on
page = os.sysconf("SC_PAGE_SIZE")
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page >> 20
count, mib = int(sys.argv[1]), int(sys.argv[2])
arrays = [np.ones((mib * 256, 1024), np.float32) for _ in range(count)]
before = rss()
del arrays
print(on, before, rss(), mmap_threshold() or 0)
"""


def _child(env_value, count=64, mib=1):
    env = {k: v for k, v in os.environ.items() if k != "LOOMDIST_RETAIN_MEMORY"}
    if env_value is not None:
        env["LOOMDIST_RETAIN_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", CHILD, str(count), str(mib)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2]), int(out[3])


@needs_glibc
def test_freed_activations_stay_resident_for_the_next_micro_batch():
    on, before, after, _ = _child(None)
    assert on
    assert after >= before - 8  # the 64 MiB freed stayed mapped for reuse


@needs_glibc
def test_blocks_below_the_raised_mmap_threshold_stay_too():
    on, before, after, threshold = _child(None, count=1, mib=48)  # batch-8192 sizes and up
    assert on
    if threshold <= 48 << 20:
        pytest.skip(f"this glibc took an mmap threshold of {threshold} bytes only")
    assert after >= before - 8


@needs_glibc
@pytest.mark.parametrize("value", ["0", "false", "No"])
def test_loomdist_retain_memory_0_leaves_glibc_at_its_defaults(value):
    on, before, after, threshold = _child(value)
    assert not on and threshold == 0
    assert after < before - 48  # glibc gave the freed blocks back to the kernel


class FakeLibc:
    """Stands in for ctypes.CDLL(None): records mallopt calls, answers `answers`."""

    def __init__(self, answers=None, has_mallopt=True):
        self.calls, self.answers = [], dict(answers or {})
        if has_mallopt:
            def mallopt(param, value):
                self.calls.append((param, value))
                return self.answers.get((param, value), 1)
            self.mallopt = mallopt


def _fresh(monkeypatch, libc, libc_name="glibc"):
    monkeypatch.setattr(memory, "_STATE", {})
    monkeypatch.delenv("LOOMDIST_RETAIN_MEMORY", raising=False)
    monkeypatch.setattr(memory.platform, "libc_ver", lambda: (libc_name, "2.36"))
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda _name: libc)


def test_settings_are_applied_once_per_process(monkeypatch):
    libc = FakeLibc()
    _fresh(monkeypatch, libc)
    assert memory.retain_freed_memory() and memory.retain_freed_memory()
    assert libc.calls == [(memory.M_TRIM_THRESHOLD, memory.TRIM_THRESHOLD),
                          (memory.M_MMAP_THRESHOLD, 1 << 30)]
    assert memory.is_retaining() and memory.mmap_threshold() == 1 << 30


def test_a_glibc_that_refuses_1_gib_gets_32_mib(monkeypatch):
    libc = FakeLibc({(memory.M_MMAP_THRESHOLD, 1 << 30): 0})
    _fresh(monkeypatch, libc)
    assert memory.retain_freed_memory()
    assert memory.mmap_threshold() == 32 << 20


@pytest.mark.parametrize("libc, name", [
    (FakeLibc({(memory.M_TRIM_THRESHOLD, memory.TRIM_THRESHOLD): 0}), "glibc"),
    (FakeLibc({(memory.M_MMAP_THRESHOLD, 1 << 30): 0, (memory.M_MMAP_THRESHOLD, 32 << 20): 0}),
     "glibc"),
    (FakeLibc(has_mallopt=False), "glibc"),
    (FakeLibc(), ""),  # musl, macOS: left alone
], ids=["trim refused", "mmap refused", "no mallopt", "not glibc"])
def test_nothing_claimed_where_the_settings_did_not_take(monkeypatch, libc, name):
    _fresh(monkeypatch, libc, name)
    assert memory.retain_freed_memory() is False
    assert not memory.is_retaining() and memory.mmap_threshold() is None
    if not name:
        assert libc.calls == []



def test_bench_memory_job_runs_both_modes_in_fresh_processes(tmp_path):
    job = os.path.join(os.path.dirname(__file__), "..", "jobs", "bench_memory.py")
    out = tmp_path / "m.json"
    res = subprocess.run([sys.executable, job, "--cells", "1", "--layers-per-cell", "1",
                          "--width", "16", "--batch", "8", "--steps", "2", "--repeats", "1",
                          "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert [r["applied"] for r in report["runs"]["glibc"]] == [False]
    assert [r["applied"] for r in report["runs"]["retain"]] == [GLIBC]
    assert all(len(r["step_ms"]) == len(r["minor_faults"]) == 2
               for rs in report["runs"].values() for r in rs)
    assert set(report["median_step_ms"]) == {"glibc", "retain"}
    bad = subprocess.run([sys.executable, job, "--steps", "1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--steps >= 2" in bad.stderr
