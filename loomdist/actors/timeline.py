"""Where a pipeline step's time goes, from Ray's task events (ray.timeline).

For steps timed between wall-clock windows, the stage actors' calls give the bubble (idle
share of K actors between a step's first call and its last) and, per stage in pipeline order,
its busy share, mean ms per call of each method and where its idle time went:

    wait_ms      waiting for a neighbour's output (the schedule's own idle ticks, and any
                 stage that runs slower than the others)
    hop_ms       from that output's end to the call's start: the hand-off, per hop
    overhead_ms  from the previous call's end to the start of a call whose input was already
                 there: Ray's own per-call work, per such call
    tail_ms      from the stage's last call to the step's last

busy + wait + hops + overheads + tail is the step's span on every stage. A call's own
Ray work (reading its arguments, storing its result) falls inside its task event, so it
counts as busy, not as overhead. `pace` is the slowest stage's busy share of the span: near
1 - ideal bubble the schedule ran as fast as its slowest stage allowed, and the rest of the
bubble is stages of unequal speed (`spread`: the busiest stage's busy time over the least
busy's, per step; "busy_ms_per_step" has every stage's). The events' timestamps are compared
across actors: meant for stages on one host (across nodes, clock skew enters hop and wait).

    out = stage_timeline(windows, programs(ticks, k), OPS)
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import Counter

import ray

log = logging.getLogger(__name__)
FLUSH = ("flush", -1)  # a stage's call after its schedule (the deferred weight GEMMs)


def programs(ticks, k: int) -> list[list[tuple[str, int]]]:
    """Per stage, its calls in the order the driver submits them: the (op, micro-batch) of
    the schedule's ticks, then FLUSH."""
    out = [[] for _ in range(k)]
    for t in ticks:
        out[t.stage].append((t.op, t.micro_batch))
    return [p + [FLUSH] for p in out]


def stage_timeline(windows: list, progs: list, ops: dict, wait_s: float = 8.0) -> dict | None:
    """{"bubble", "pace", "spread"} (medians over steps) and "per_stage" (see the module
    doc) of the task events whose "cat" is a key of `ops` (e.g. "task::CellActor.forward":
    "fwd"), for steps timed in `windows` ((start, end) microseconds of the epoch, as the
    events' ts), each running `progs` (programs()) on len(progs) actors. None when the
    events stay incomplete for `wait_s` (Ray may drop them under load)."""
    logging.getLogger("ray._private.state").setLevel(logging.ERROR)
    calls = sum(len(p) for p in progs)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(0.5)  # task events reach the GCS about once a second
        events = [e for e in ray.timeline() if e.get("cat") in ops]
        steps = [step_events(events, w, len(progs), calls) for w in windows]
        if None not in steps:
            return summary(steps, progs, ops)
    return None


def summary(steps: list, progs: list, ops: dict) -> dict:
    """stage_timeline's result for complete steps (lists of events)."""
    k, out = len(progs), {}
    gaps = [step_gaps(ev, progs, ops) for ev in steps]
    matched = None not in gaps
    out["bubble"] = statistics.median(bubble(ev, k) for ev in steps)
    out["pace"] = out["spread"] = None
    if not matched:
        log.warning("stage_timeline: %d of %d steps' events are not their stages' programs; "
                    "reporting busy shares only", gaps.count(None), len(gaps))
    else:
        busy = [[g["busy"] for g in s] for s in gaps]
        out["pace"] = statistics.median(max(b) / span(ev) for b, ev in zip(busy, steps))
        out["spread"] = statistics.median(max(b) / min(b) if min(b) > 0 else math.inf
                                          for b in busy)
        out["busy_ms_per_step"] = [[v / 1e3 for v in b] for b in busy]  # [step][stage]
    out["per_stage"] = per_stage(steps, gaps if matched else None)
    return out


def step_events(events: list, window: tuple, k: int, calls: int) -> list | None:
    """The events inside `window`; None unless there are `calls` of them on `k` actors."""
    t0, t1 = window
    ev = [e for e in events if t0 <= e["ts"] and e["ts"] + e["dur"] <= t1]
    if len(ev) != calls or len({e["tid"] for e in ev}) != k:
        return None
    return ev


def span(ev: list) -> float:
    """Microseconds from the first call's start to the last call's end."""
    return max(e["ts"] + e["dur"] for e in ev) - min(e["ts"] for e in ev)


def bubble(ev: list, k: int) -> float:
    """1 - busy / (K x span) of one step's events."""
    return 1.0 - sum(e["dur"] for e in ev) / (k * span(ev))


def stage_order(ev: list) -> list:
    """The actors ("tid") of one step in pipeline order: by their first call."""
    first: dict = {}
    for e in sorted(ev, key=lambda e: e["ts"]):
        first.setdefault(e["tid"], len(first))
    return list(first)


def step_gaps(ev: list, progs: list, ops: dict) -> list[Counter] | None:
    """Per stage of one step, microseconds of busy, wait, hop, overhead and tail, and the
    counts hops and ready (calls whose input was there); None unless every stage's events,
    in time order, are its program's calls (ops[cat] == op)."""
    k, order = len(progs), stage_order(ev)
    by = {tid: sorted((e for e in ev if e["tid"] == tid), key=lambda e: e["ts"])
          for tid in order}
    when = {}
    for s, tid in enumerate(order):
        if [ops[e["cat"]] for e in by[tid]] != [op for op, _ in progs[s]]:
            return None
        when.update({(s,) + call: (e["ts"], e["ts"] + e["dur"])
                     for call, e in zip(progs[s], by[tid])})
    t0, t1 = min(e["ts"] for e in ev), max(e["ts"] + e["dur"] for e in ev)
    return [_stage_gaps(s, k, progs[s], when, t0, t1) for s in range(k)]


def _producer(s: int, k: int, op: str, mb: int) -> tuple | None:
    """The call on a neighbour whose output (s, op, mb) takes; None when it takes none."""
    if op == "fwd" and s > 0:
        return (s - 1, "fwd", mb)
    if op == "bwd" and s < k - 1:
        return (s + 1, "bwd", mb)
    return None  # own earlier calls (the last stage's bwd, wgt) or the driver's (fwd, flush)


def _stage_gaps(s, k, prog, when, t0, t1) -> Counter:
    acc, prev = Counter(), t0
    for n, (op, mb) in enumerate(prog):
        start, end = when[(s, op, mb)]
        dep = _producer(s, k, op, mb)
        ready = when[dep][1] if dep else prev
        if ready > prev:
            acc["wait"] += ready - prev
            acc["hop"] += start - ready
            acc["hops"] += 1
        else:  # a stage's first call either has a producer or opens the step (stage 0)
            acc["overhead"] += start - prev
            acc["ready"] += n > 0
        acc["busy"] += end - start
        prev = end
    acc["tail"] += t1 - prev
    return acc


def per_stage(steps: list, gaps: list | None = None) -> list[dict]:
    """[{"busy": share of the step's span, "ms": {method: mean ms per call}}] per stage, the
    stages in pipeline order, over all steps; with `gaps` (step_gaps of each step) also
    wait_ms, tail_ms, hops, ready_calls (per step), hop_ms (per hop) and overhead_ms (per
    ready call)."""
    busy: dict = {}
    ms: dict = {}
    for ev in steps:
        whole, first = span(ev), {tid: s for s, tid in enumerate(stage_order(ev))}
        for e in ev:
            s = first[e["tid"]]
            busy[s] = busy.get(s, 0.0) + e["dur"] / whole / len(steps)
            ms.setdefault(s, {}).setdefault(e["cat"].rsplit(".", 1)[-1], []).append(
                e["dur"] / 1e3)
    out = [{"busy": busy[s], "ms": {op: statistics.mean(v) for op, v in sorted(ms[s].items())}}
           for s in sorted(busy)]
    for s, st in enumerate(out if gaps else []):
        tot = sum((g[s] for g in gaps), Counter())
        st.update(wait_ms=tot["wait"] / 1e3 / len(gaps), tail_ms=tot["tail"] / 1e3 / len(gaps),
                  hop_ms=tot["hop"] / 1e3 / max(1, tot["hops"]),
                  overhead_ms=tot["overhead"] / 1e3 / max(1, tot["ready"]),
                  hops=tot["hops"] / len(gaps), ready_calls=tot["ready"] / len(gaps))
    return out
