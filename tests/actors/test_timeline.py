"""actors/timeline.py on synthetic task events: which events make a step, the bubble, the
per-stage breakdown in pipeline order, and where each stage's idle time went."""

from __future__ import annotations

import pytest

from loomdist.actors.timeline import (
    FLUSH,
    bubble,
    per_stage,
    programs,
    span,
    step_events,
    step_gaps,
    summary,
)
from loomdist.schedule import gpipe, zero_bubble_h1


def ev(tid, op, ts, dur):
    return {"tid": tid, "cat": f"task::CellActor.{op}", "ts": ts, "dur": dur}


# two stages, one step in [0, 100): stage "b" (first call at 0) is stage 0
STEP = [ev("b", "forward", 0, 20), ev("a", "forward_loss", 20, 20),
        ev("a", "backward", 40, 20), ev("b", "backward", 60, 20),
        ev("b", "weight_grads", 80, 10), ev("a", "grad_sq_norm", 60, 30),
        ev("b", "grad_sq_norm", 90, 10)]


def test_step_events_need_every_call_inside_the_window():
    outside = ev("a", "forward", 150, 10)
    assert step_events(STEP + [outside], (0, 100), 2, 7) == STEP
    assert step_events(STEP, (0, 100), 2, 8) is None  # a call is missing (dropped events)
    assert step_events(STEP, (0, 95), 2, 7) is None  # the last one ends after the window
    assert step_events(STEP[:1] * 7, (0, 100), 2, 7) is None  # 7 calls, but on 1 actor


def test_bubble_is_the_idle_share_of_k_actors():
    assert span(STEP) == 100
    assert bubble(STEP, 2) == pytest.approx(1 - 130 / 200)


def test_per_stage_in_pipeline_order_with_mean_ms_per_method():
    shifted = [dict(e, ts=e["ts"] + 1000, dur=e["dur"] * 2 if e["tid"] == "a" else e["dur"])
               for e in STEP]  # a second step; stage "a" twice as slow: its span is longer
    out = per_stage([STEP, shifted])
    assert [sorted(s["ms"]) for s in out] == [
        ["backward", "forward", "grad_sq_norm", "weight_grads"],
        ["backward", "forward_loss", "grad_sq_norm"]]
    assert out[0]["ms"]["weight_grads"] == pytest.approx(0.010)  # 10 us per call
    assert out[1]["ms"]["forward_loss"] == pytest.approx((0.020 + 0.040) / 2)
    second_span = span(shifted)
    assert out[0]["busy"] == pytest.approx((60 / 100 + 60 / second_span) / 2)
    assert out[1]["busy"] == pytest.approx((70 / 100 + 140 / second_span) / 2)


OPS = {f"task::CellActor.{m}": op for m, op in (
    ("forward", "fwd"), ("forward_loss", "fwd"), ("backward", "bwd"),
    ("weight_grads", "wgt"), ("grad_sq_norm", "flush"))}
# GPipe, K=2, M=1 in [0, 100): stage 0 ("b") waits 40 us for stage 1's backward, which
# reaches it 2 us after it ends; stage 1 ("a") waits 20 us for stage 0's forward (hop 3)
GAPS_STEP = [ev("b", "forward", 0, 20), ev("a", "forward_loss", 23, 20),
             ev("a", "backward", 44, 16), ev("b", "backward", 62, 18),
             ev("a", "grad_sq_norm", 61, 29), ev("b", "grad_sq_norm", 81, 19)]


def test_programs_are_each_stages_calls_in_submission_order_then_the_flush():
    assert programs(gpipe(2, 1), 2) == [[("fwd", 0), ("bwd", 0), FLUSH],
                                        [("fwd", 0), ("bwd", 0), FLUSH]]
    progs = programs(zero_bubble_h1(4, 8), 4)
    assert [sum(op == "wgt" for op, _ in p) for p in progs] == [3, 2, 1, 0]  # idle ticks
    assert all(p[-1] == FLUSH and len(p) == 2 * 8 + w + 1
               for p, w in zip(progs, [3, 2, 1, 0]))


def test_step_gaps_split_each_stages_idle_time():
    s0, s1 = step_gaps(GAPS_STEP, programs(gpipe(2, 1), 2), OPS)
    assert dict(s0) == {"busy": 57, "ready": 1, "overhead": 1, "wait": 40, "hop": 2,
                        "hops": 1, "tail": 0}
    assert dict(s1) == {"busy": 65, "wait": 20, "hop": 3, "hops": 1, "ready": 2,
                        "overhead": 2, "tail": 10}
    for g in (s0, s1):  # every microsecond of the span is accounted for, on every stage
        assert g["busy"] + g["wait"] + g["hop"] + g["overhead"] + g["tail"] == span(GAPS_STEP)


def test_step_gaps_refuse_events_that_are_not_the_program():
    progs = programs(gpipe(2, 1), 2)
    swapped = [dict(e, cat="task::CellActor.weight_grads") if i == 3 else e
               for i, e in enumerate(GAPS_STEP)]
    assert step_gaps(swapped, progs, OPS) is None
    assert step_gaps(GAPS_STEP, programs(gpipe(2, 2), 2), OPS) is None  # too few calls


def test_summary_reports_pace_spread_and_per_stage_gaps():
    # a second step, later: stage 0's forward 30 us longer, everything after it later too
    later = [dict(e, ts=e["ts"] + 1000 + (30 if i else 0), dur=e["dur"] + (30 if i == 0 else 0))
             for i, e in enumerate(GAPS_STEP)]
    out = summary([GAPS_STEP, later, later], programs(gpipe(2, 1), 2), OPS)
    assert out["bubble"] == pytest.approx(1 - 152 / 260)  # the median step: `later`
    assert out["pace"] == pytest.approx(87 / 130)  # stage 0 now the busier: 87 of 130 us
    assert out["spread"] == pytest.approx(87 / 65)
    assert out["busy_ms_per_step"] == [[0.057, 0.065], [0.087, 0.065], [0.087, 0.065]]
    s0, s1 = out["per_stage"]
    assert s0["wait_ms"] == pytest.approx(0.040) and s0["hop_ms"] == pytest.approx(0.002)
    assert s0["overhead_ms"] == pytest.approx(0.001)  # 1 us before its flush
    assert s0["hops"] == 1 and s0["ready_calls"] == 1  # its first forward is no call after one
    assert s1["wait_ms"] == pytest.approx((20 + 50 + 50) / 3 / 1e3)
    assert s1["tail_ms"] == pytest.approx(0.010) and s1["overhead_ms"] == pytest.approx(0.001)
    assert s1["ms"]["forward_loss"] == pytest.approx(0.020)


def _simulate(progs, dur, hop, overhead):
    """Task events of `progs` on one host where a call starts `overhead` us after its
    stage's previous call or `hop` us after its neighbour's output, whichever is later."""
    k, end, events, pos, prev = len(progs), {}, [], [0] * len(progs), [0.0] * len(progs)
    while any(p < len(prog) for p, prog in zip(pos, progs)):
        for s in range(k):
            if pos[s] == len(progs[s]):
                continue
            op, mb = progs[s][pos[s]]
            dep = ((s - 1, "fwd", mb) if op == "fwd" and s > 0 else
                   (s + 1, "bwd", mb) if op == "bwd" and s < k - 1 else None)
            if dep is not None and dep not in end:
                continue
            first = pos[s] == 0 and dep is None
            start = max(prev[s] + (0 if first else overhead), end[dep] + hop if dep else 0)
            d = dur(s, op)
            end[(s, op, mb)] = prev[s] = start + d
            method = {"fwd": "forward_loss" if s == k - 1 else "forward", "bwd": "backward",
                      "wgt": "weight_grads", "flush": "grad_sq_norm"}[op]
            events.append(ev(f"stage{s}", method, start, d))
            pos[s] += 1
    return events


def test_step_gaps_recover_the_hops_and_overheads_of_a_simulated_zbh1_step():
    """K=3 ZB-H1 (a middle stage, weight-gradient ticks), stage 1 twice as slow: every hop
    comes out as 7 us, every ready call's overhead as 2 us, and the spans add up."""
    progs = programs(zero_bubble_h1(3, 6), 3)
    events = _simulate(progs, lambda s, op: (20 if s == 1 else 10) * (3 if op == "flush"
                                                                      else 1), 7, 2)
    gaps = step_gaps(events, progs, OPS)
    for g in gaps:
        assert g["hops"] > 0 and g["hop"] == 7 * g["hops"]
        assert g["overhead"] == 2 * g["ready"]
        assert g["busy"] + g["wait"] + g["hop"] + g["overhead"] + g["tail"] == span(events)
    assert max(range(3), key=lambda s: gaps[s]["busy"]) == 1
    assert gaps[1]["wait"] < min(gaps[0]["wait"], gaps[2]["wait"])  # the others wait for it
    out = summary([events], progs, OPS)
    assert out["pace"] == pytest.approx(gaps[1]["busy"] / span(events))


def test_summary_without_matching_programs_keeps_busy_shares_only():
    out = summary([GAPS_STEP], programs(gpipe(2, 2), 2), OPS)
    assert out["pace"] is None and out["spread"] is None
    assert "wait_ms" not in out["per_stage"][0] and out["per_stage"][0]["busy"] > 0
