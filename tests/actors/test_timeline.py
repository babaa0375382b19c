"""actors/timeline.py on synthetic task events: which events make a step, the bubble, and
the per-stage breakdown in pipeline order."""

from __future__ import annotations

import pytest

from loomdist.actors.timeline import bubble, per_stage, span, step_events


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
