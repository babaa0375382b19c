"""Where a pipeline step's time goes, from Ray's task events (ray.timeline).

For steps timed between wall-clock windows, the stage actors' calls give the bubble (idle
share of K actors between a step's first call and its last) and, per stage in pipeline order,
its busy share and mean ms per call of each method (one slow CPU shows as one slow stage).

    bubble, stages = stage_timeline(windows, k, calls, cats)
"""

from __future__ import annotations

import logging
import statistics
import time

import ray


def stage_timeline(windows: list, k: int, calls: int, cats: set,
                   wait_s: float = 8.0) -> tuple[float | None, list[dict] | None]:
    """(median bubble over steps, per-stage breakdown) of the task events whose "cat" is in
    `cats` (e.g. "task::CellActor.forward"), for steps timed in `windows` ((start, end)
    microseconds of the epoch, as the events' ts), each with `calls` such calls on `k`
    actors. (None, None) when the events stay incomplete for `wait_s` (Ray may drop them
    under load)."""
    logging.getLogger("ray._private.state").setLevel(logging.ERROR)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(0.5)  # task events reach the GCS about once a second
        events = [e for e in ray.timeline() if e.get("cat") in cats]
        steps = [step_events(events, w, k, calls) for w in windows]
        if None not in steps:
            return statistics.median(bubble(ev, k) for ev in steps), per_stage(steps)
    return None, None


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


def per_stage(steps: list) -> list[dict]:
    """[{"busy": share of the step's span, "ms": {method: mean ms per call}}] per stage, the
    stages (actors, by "tid") in the order of their first call of a step, over all steps."""
    busy: dict = {}
    ms: dict = {}
    for ev in steps:
        whole, first = span(ev), {}
        for e in sorted(ev, key=lambda e: e["ts"]):
            first.setdefault(e["tid"], len(first))
        for e in ev:
            s = first[e["tid"]]
            busy[s] = busy.get(s, 0.0) + e["dur"] / whole / len(steps)
            ms.setdefault(s, {}).setdefault(e["cat"].rsplit(".", 1)[-1], []).append(
                e["dur"] / 1e3)
    return [{"busy": busy[s], "ms": {op: statistics.mean(v) for op, v in sorted(ms[s].items())}}
            for s in sorted(busy)]
