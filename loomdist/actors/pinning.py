"""CPU pinning: each actor with whole CPUs gets its own CPUs of its node.

Ray reserves CPUs as a count, not as cores: every worker process may run on all of a
node's CPUs, and the kernel is free to put two busy single-thread actors on one core (or on
two vCPUs that a hypervisor maps to one physical core) while others idle. On the 16-core
GPU host, four unpinned single-thread GEMM loops ran at 2.83x one loop; pinned to four
CPUs, 3.8-4.4x (jobs/cpu_pairs.py). So the driver pins every actor whose CPU share is a
whole number to a disjoint run of that many CPUs of its node, whenever all actors of a node
fit in the CPUs its Ray workers may use; otherwise nothing is pinned on that node. Runs are
handed out from the node's highest CPU down, so CPU 0 (interrupts, the driver and Ray's own
processes tend to run there) is the last one given to an actor.

Modes (Plan.pin_cpus):
    "process"  every thread of the actor process, Ray's own and BLAS's pool included, and
               the threads it starts later (the default).
    "thread"   only the thread that runs the actor's tasks and the threads it starts later
               (Numba's pool): Ray's I/O threads stay free to run on idle CPUs.
On the 16-core host (K=4 stages, 16 micro-batches, jobs/bench_pipeline.py, one session)
"process" gave 923 ms per step and "thread" 1040 ms.
"""

from __future__ import annotations

import logging
import os

import ray

from ..threads import set_threads

log = logging.getLogger(__name__)


class Pinnable:
    """Mixed into actor classes: report where they run, pin themselves."""

    def cpu_report(self) -> tuple[str, list[int]]:
        """(Ray node id, the CPUs this process may run on)."""
        return ray.get_runtime_context().get_node_id(), sorted(os.sched_getaffinity(0))

    def pin_cpus(self, cpus: list[int], mode: str = "process") -> list[int]:
        """Run this actor's compute (mode "thread") or all its threads ("process") on
        `cpus` with len(cpus) BLAS/Numba threads; returns the calling thread's CPUs."""
        return pin_process(cpus, mode)


MODES = ("thread", "process")


def pin_process(cpus: list[int], mode: str = "process") -> list[int]:
    """Pin the calling thread ("thread") or all threads of this process ("process") to
    `cpus`, then set_threads(len(cpus)); returns the calling thread's CPUs."""
    cpus = sorted(int(c) for c in cpus)
    if not cpus:
        raise ValueError("pin_process: no CPUs given")
    if mode not in MODES:
        raise ValueError(f"pin_process: unknown mode {mode!r}; use one of {MODES}")
    tids = [0]  # Linux: 0 is the calling thread
    if mode == "process":
        try:
            tids = [int(t) for t in os.listdir("/proc/self/task")]
        except OSError:  # no /proc: the calling thread only
            pass
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # a thread that ended meanwhile
            pass
    set_threads(len(cpus))
    return sorted(os.sched_getaffinity(0))


def assign_cpus(reports: list[tuple[str, list[int]]], per: int) -> list[list[int] | None]:
    """Disjoint runs of `per` CPUs for actors, in order, from each one's node's CPU list.

    reports: (node id, allowed CPUs) per actor, as Pinnable.cpu_report returns.
    Returns per actor its CPUs, or None for every actor of a node whose actors need more
    CPUs than the node allows (then that node is left to the kernel).
    """
    if per < 1:
        return [None] * len(reports)
    by_node: dict = {}
    for i, (node, cpus) in enumerate(reports):
        by_node.setdefault(node, (cpus, []))[1].append(i)
    out: list = [None] * len(reports)
    for node, (cpus, members) in by_node.items():
        if per * len(members) > len(cpus):
            log.warning("not pinning %d actors x %d CPUs on node %s: it allows %d CPUs",
                        len(members), per, node[:8], len(cpus))
            continue
        top = len(cpus)
        for k, i in enumerate(members):  # from the highest CPU down
            out[i] = cpus[top - (k + 1) * per:top - k * per]
    return out


def whole_cpus(per: float) -> int:
    """`per` as a CPU count when it is a whole number >= 1, else 0 (not pinned)."""
    return int(per) if per >= 1 and float(per).is_integer() else 0


def pin_actors(handles: list, per: float, get, mode: str = "process") -> list[list[int] | None]:
    """Pin `handles` (Pinnable actors, each with `per` CPUs) to disjoint CPUs (`mode` as in
    pin_process).

    get: waits for a list of ObjectRefs with a timeout and a name (the driver's transport).
    Returns the CPUs given to each actor (None: left unpinned).
    """
    n = whole_cpus(per)
    if not n or not handles:
        return [None] * len(handles)
    reports = get([h.cpu_report.remote() for h in handles], "actor CPU report")
    cpus = assign_cpus(reports, n)
    get([h.pin_cpus.remote(c, mode) for h, c in zip(handles, cpus) if c is not None],
        "actor pinning")
    return cpus
