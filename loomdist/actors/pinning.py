"""CPU pinning: each actor with whole CPUs gets its own CPUs of its node.

Ray reserves CPUs as a count, not as cores: every worker process may run on all of a
node's CPUs, and the kernel is free to put two busy single-thread actors on one core (or on
two vCPUs that a hypervisor maps to one physical core) while others idle. On the 16-core
GPU host, four unpinned single-thread GEMM loops ran at 2.83x one loop; pinned to four
CPUs, 3.8-4.4x (jobs/cpu_pairs.py). So the driver pins every actor whose CPU share is a
whole number to a disjoint run of that many CPUs of its node, whenever all actors of a node
fit in the CPUs its Ray workers may use and that no other live process of the machine is
pinned to (another trainer's actors, say); otherwise nothing is pinned on that node. Runs are
handed out from the node's highest free CPU down, so CPU 0 (interrupts, the driver and Ray's
own processes tend to run there) is the last one given to an actor.

Modes (Plan.pin_cpus):
    "process"  every thread of the actor process, Ray's own and BLAS's pool included, and
               the threads it starts later (the default).
    "thread"   only the thread that runs the actor's tasks (and threads it starts later):
               Ray's I/O threads, and the Numba and OpenBLAS pools (started when the actor
               set its thread count), stay free to run on any CPU. Meant for one-CPU actors,
               whose BLAS work runs on the calling thread.
On the 16-core host (one-CPU stage actors, K=4 stages, 16 micro-batches,
jobs/bench_pipeline.py, one session) "process" gave 923 ms per step and "thread" 1040 ms.
"""

from __future__ import annotations

import logging
import os
import resource
import time

import ray

from ..plan import PIN_MODES as MODES
from ..threads import set_threads

log = logging.getLogger(__name__)


class Pinnable:
    """Mixed into actor classes: report where they run, pin themselves."""

    def cpu_report(self, ignore: tuple = ()) -> tuple[str, list[int], list[int]]:
        """(Ray node id, the CPUs this process may run on, the CPUs other processes of this
        machine are pinned to, not counting the processes `ignore` names: (node id, pid)
        pairs, e.g. actors a restart has just killed)."""
        node = ray.get_runtime_context().get_node_id()
        return (node, sorted(os.sched_getaffinity(0)),
                sorted(pinned_elsewhere({pid for n, pid in ignore if n == node})))

    def process(self) -> tuple[str, int]:
        """(Ray node id, pid) of this actor's process."""
        return ray.get_runtime_context().get_node_id(), os.getpid()

    def usage(self) -> dict:
        """This actor's process so far (getrusage): "minor_faults" (pages the kernel had to
        map and zero, e.g. freed memory handed back and touched again), "cpu_s" (user +
        system seconds of all its threads) and "preempted" (involuntary context switches:
        other threads took its CPU)."""
        r = resource.getrusage(resource.RUSAGE_SELF)
        return {"minor_faults": r.ru_minflt, "cpu_s": r.ru_utime + r.ru_stime,
                "preempted": r.ru_nivcsw}

    def pin_cpus(self, cpus: list[int], mode: str = "process") -> list[int]:
        """Run all this actor's threads (mode "process") or its task thread ("thread") on
        `cpus` with len(cpus) BLAS/Numba threads; returns the calling thread's CPUs."""
        return pin_process(cpus, mode)


def pinned_elsewhere(ignore: set[int] = frozenset()) -> set[int]:
    """CPUs that other live Ray workers of this machine (processes named "ray::...") are
    restricted to, where that is fewer than all CPUs: the pinned actors of another trainer.
    Processes in `ignore` (pids) are not counted, nor kernel threads and other programs.
    Empty without /proc."""
    everyone, taken = set(range(os.cpu_count() or 1)), set()
    skip = set(ignore) | {os.getpid()}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in skip]
    except OSError:
        return taken
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if not f.read(5).startswith(b"ray::"):
                    continue
            with open(f"/proc/{pid}/status") as f:
                line = next((ln for ln in f if ln.startswith("Cpus_allowed_list:")), "")
        except OSError:  # ended meanwhile, or not ours to read
            continue
        cpus = _cpu_list(line.split(":", 1)[1]) if line else everyone
        if cpus and cpus < everyone:
            taken |= cpus
    return taken


def _cpu_list(text: str) -> set[int]:
    """"0-3,8,10-11" -> {0, 1, 2, 3, 8, 10, 11}."""
    out: set = set()
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


def pin_process(cpus: list[int], mode: str = "process") -> list[int]:
    """Pin the calling thread ("thread") or all threads of this process ("process") to
    `cpus`, then set_threads(len(cpus)); returns the calling thread's CPUs."""
    cpus = sorted(int(c) for c in cpus)
    if not cpus:
        raise ValueError("pin_process: no CPUs given; pass at least one CPU id")
    if mode not in MODES:
        raise ValueError(f"pin_process: unknown mode {mode!r}; use one of {MODES}")
    done: set = set()
    while True:  # until no thread appeared while the others were pinned
        tids = {0} if mode == "thread" else _threads()
        if tids <= done:
            break
        for tid in tids - done:
            try:
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:  # a thread that ended meanwhile
                pass
        done |= tids
    set_threads(len(cpus))
    return sorted(os.sched_getaffinity(0))


def _threads() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:  # no /proc: the calling thread only
        return {0}


def assign_cpus(reports: list[tuple], per: int, warn: bool = True) -> list[list[int] | None]:
    """Disjoint runs of `per` CPUs for actors, in order, from the free CPUs of each node.

    reports: (node id, allowed CPUs[, CPUs pinned by other processes]) per actor, as
        Pinnable.cpu_report returns; a node's free CPUs are those every one of its actors
        may use, less those pinned elsewhere.
    Returns per actor its CPUs, or None for every actor of a node whose actors need more
    CPUs than the node has free (then that node is left to the kernel, with a warning
    unless `warn` is false).
    """
    if per < 1:
        return [None] * len(reports)
    by_node: dict = {}
    for i, (node, allowed, *taken) in enumerate(reports):
        free, members = by_node.get(node, (None, []))
        mine = set(allowed) - set(taken[0] if taken else ())
        by_node[node] = (mine if free is None else free & mine, members + [i])
    out: list = [None] * len(reports)
    for node, (free, members) in by_node.items():
        cpus = sorted(free)
        if per * len(members) > len(cpus):
            if warn:
                log.warning("not pinning %d actors x %d CPUs on node %s: it has %d free "
                            "CPUs", len(members), per, node[:8], len(cpus))
            continue
        top = len(cpus)
        for k, i in enumerate(members):  # from the highest CPU down
            out[i] = cpus[top - (k + 1) * per:top - k * per]
    return out


def whole_cpus(per: float) -> int:
    """`per` as a CPU count when it is a whole number >= 1, else 0 (not pinned)."""
    return int(per) if per >= 1 and float(per).is_integer() else 0


def pin_actors(handles: list, per: float, get, mode: str | None = "process",
               replaced: tuple = ()) -> list[list[int] | None]:
    """Pin `handles` (Pinnable actors, each with `per` CPUs) to disjoint CPUs (`mode` as in
    pin_process; None pins nothing).

    get: waits for a list of ObjectRefs with a timeout and a name (the driver's transport).
    replaced: (node id, pid) of the actors these replace (a restart killed them): CPUs they
        may still hold while they exit count as free.
    Returns the CPUs each actor's task thread runs on afterwards (None: left unpinned).
    """
    n = whole_cpus(per)
    if not n or not handles or mode is None:
        return [None] * len(handles)
    for wait in (0.25, 0.5, 1.0, 2.0, 0.0):  # other killed actors take a moment to exit
        reports = get([h.cpu_report.remote(tuple(replaced)) for h in handles],
                      "actor CPU report")
        want = assign_cpus(reports, n, warn=False)
        if None not in want or not any(r[2] for r in reports) or not wait:
            break
        time.sleep(wait)
    if None in want:
        assign_cpus(reports, n)  # says which node is left unpinned, and why
    pinned = [i for i, c in enumerate(want) if c is not None]
    got = get([handles[i].pin_cpus.remote(want[i], mode) for i in pinned], "actor pinning")
    out: list = [None] * len(handles)
    for i, cpus in zip(pinned, got):
        if cpus != want[i]:
            log.warning("actor %d asked for CPUs %s and runs on %s", i, want[i], cpus)
        out[i] = cpus
    return out
