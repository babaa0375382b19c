"""Pipeline schedules: literal tick tables and hypothesis invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loomdist.errors import ConfigError
from loomdist.schedule import (
    SCHEDULES,
    Tick,
    gpipe,
    ideal_bubble,
    one_f_one_b,
    schedule_by_name,
    zero_bubble_h1,
)

LETTER = {"fwd": "F", "bwd": "B", "wgt": "W"}


def table(ticks) -> list[str]:
    """One line per stage: 'F0 F1 .  B0 ...' (the docstring's format)."""
    ticks = list(ticks)
    width = max(t.tick for t in ticks) + 1
    rows = [["."] * width for _ in range(max(t.stage for t in ticks) + 1)]
    for t in ticks:
        rows[t.stage][t.tick] = LETTER[t.op] + str(t.micro_batch)
    return [" ".join(f"{c:>2}" for c in r) for r in rows]


def test_gpipe_table_3x4():
    assert table(gpipe(3, 4)) == [
        "F0 F1 F2 F3  .  .  .  . B0 B1 B2 B3",
        " . F0 F1 F2 F3  .  . B0 B1 B2 B3  .",
        " .  . F0 F1 F2 F3 B0 B1 B2 B3  .  .",
    ]


def test_one_f_one_b_table_3x4():
    assert table(one_f_one_b(3, 4)) == [
        "F0 F1 F2  .  . B0 F3 B1  . B2  . B3",
        " . F0 F1  . B0 F2 B1 F3 B2  . B3  .",
        " .  . F0 B0 F1 B1 F2 B2 F3 B3  .  .",
    ]


def test_zero_bubble_h1_table_3x4():
    """1F1B's F and B ticks; idle cooldown ticks take the oldest pending W."""
    assert table(zero_bubble_h1(3, 4)) == [
        "F0 F1 F2  .  . B0 F3 B1 W0 B2 W1 B3",
        " . F0 F1  . B0 F2 B1 F3 B2 W0 B3  .",
        " .  . F0 B0 F1 B1 F2 B2 F3 B3  .  .",
    ]


def test_tables_for_tiny_pipelines():
    assert table(gpipe(1, 2)) == ["F0 F1 B0 B1"]
    assert table(one_f_one_b(1, 2)) == ["F0 B0 F1 B1"]
    assert table(gpipe(2, 1)) == ["F0  .  . B0", " . F0 B0  ."]
    assert table(one_f_one_b(2, 1)) == table(gpipe(2, 1))
    assert table(zero_bubble_h1(2, 1)) == table(gpipe(2, 1))  # no idle tick with a W
    assert table(zero_bubble_h1(1, 3)) == table(one_f_one_b(1, 3))
    assert list(gpipe(1, 1)) == [Tick(0, 0, "fwd", 0), Tick(1, 0, "bwd", 0)]


def test_ticks_come_in_tick_then_stage_order():
    ticks = list(one_f_one_b(4, 6))
    assert ticks == sorted(ticks, key=lambda t: (t.tick, t.stage))


@pytest.mark.parametrize("args", [(0, 2), (2, 0), (2.0, 2), (True, 1)])
def test_bad_sizes_raise(args):
    for fn in (gpipe, one_f_one_b, zero_bubble_h1):
        with pytest.raises(ConfigError, match="must be an integer >= 1"):
            list(fn(*args))


def test_schedule_by_name():
    assert schedule_by_name("1f1b") is one_f_one_b
    assert schedule_by_name("zbh1") is zero_bubble_h1
    with pytest.raises(ConfigError, match="unknown schedule 'zb'"):
        schedule_by_name("zb")


sizes = st.tuples(st.integers(1, 6), st.integers(1, 9))


@settings(max_examples=60, deadline=None)
@given(sizes, st.sampled_from(sorted(SCHEDULES)))
def test_dependencies_hold(km, name):
    k, m = km
    ticks = list(SCHEDULES[name](k, m))
    at = {(t.op, t.stage, t.micro_batch): t.tick for t in ticks}
    assert len(at) == len(ticks)  # each (op, stage, mb) at most once
    assert sum(t.op != "wgt" for t in ticks) == 2 * k * m  # every fwd and bwd
    assert len({(t.tick, t.stage) for t in ticks}) == len(ticks)  # one op per stage per tick
    for s in range(k):
        for b in range(m):
            assert at[("bwd", s, b)] > at[("fwd", s, b)]
            assert at.get(("wgt", s, b), at[("bwd", s, b)] + 1) > at[("bwd", s, b)]
            if s > 0:
                assert at[("fwd", s, b)] > at[("fwd", s - 1, b)]
            if s < k - 1:
                assert at[("bwd", s, b)] > at[("bwd", s + 1, b)]


@settings(max_examples=60, deadline=None)
@given(sizes)
def test_one_f_one_b_bounds_in_flight(km):
    k, m = km
    flight = [0] * k
    for t in one_f_one_b(k, m):
        flight[t.stage] += 1 if t.op == "fwd" else -1
        assert 0 <= flight[t.stage] <= k - t.stage


@settings(max_examples=30, deadline=None)
@given(sizes)
def test_gpipe_keeps_all_in_flight_and_1f1b_is_no_longer(km):
    k, m = km
    g, f = list(gpipe(k, m)), list(one_f_one_b(k, m))
    assert g[-1].tick == f[-1].tick == 2 * (k + m - 1) - 1  # same makespan: bubble (K-1)
    assert [t for t in g if t.stage == 0][m - 1].op == "fwd"


@settings(max_examples=40, deadline=None)
@given(sizes)
def test_zero_bubble_h1_only_adds_weight_ticks_to_1f1b(km):
    k, m = km
    z = list(zero_bubble_h1(k, m))
    assert [t for t in z if t.op != "wgt"] == list(one_f_one_b(k, m))
    for s in range(k):  # a stage's W come in micro-batch order, before its last op
        w = [t for t in z if t.stage == s and t.op == "wgt"]
        assert [t.micro_batch for t in w] == list(range(len(w)))
        assert all(t.tick < max(u.tick for u in z if u.stage == s) for t in w)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 24))
def test_ideal_bubbles_match_the_closed_forms(k, m):
    for name in ("gpipe", "1f1b"):
        assert ideal_bubble(name, k, m) == pytest.approx(2 * (k - 1) / (3 * m + 2 * (k - 1)))
        assert ideal_bubble(name, k, m, deferred=False) == pytest.approx((k - 1) / (m + k - 1))
    assert ideal_bubble("zbh1", k, m, deferred=False) == ideal_bubble("1f1b", k, m, False)
    zb = ideal_bubble("zbh1", k, m)
    assert zb <= ideal_bubble("1f1b", k, m) + 1e-12
    if m >= k:  # enough cooldown ticks: the last stage's (K-1)-tick start is all that is left
        assert zb == pytest.approx((k - 1) / (3 * m + k - 1))
