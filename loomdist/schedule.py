"""Pipeline schedules as pure generators of Tick(tick, stage, op, micro_batch).

All schedules come from one unit-time simulation: each stage owns an ordered program of
("fwd" | "bwd", micro-batch) ops and runs its next op at the first tick where its inputs
exist (fwd of stage s-1 or bwd of stage s+1 finished at an earlier tick); ZB-H1 adds "wgt"
ops in the ticks where a stage would wait.

GPipe (fill, drain), K=3 stages, M=4 micro-batches (F = fwd, B = bwd, digit = micro-batch):

    tick   0  1  2  3  4  5  6  7  8  9 10 11
    s0    F0 F1 F2 F3  .  .  .  . B0 B1 B2 B3
    s1     . F0 F1 F2 F3  .  . B0 B1 B2 B3  .
    s2     .  . F0 F1 F2 F3 B0 B1 B2 B3  .  .

1F1B (PipeDream-flush), same K, M: stage s warms up with K-1-s forwards, then alternates one
forward and one backward, then drains; at most K-s micro-batches are in flight on stage s:

    tick   0  1  2  3  4  5  6  7  8  9 10 11
    s0    F0 F1 F2  .  . B0 F3 B1  . B2  . B3
    s1     . F0 F1  . B0 F2 B1 F3 B2  . B3  .
    s2     .  . F0 B0 F1 B1 F2 B2 F3 B3  .  .

ZB-H1 (Qi et al., "Zero Bubble Pipeline Parallelism", 2023) is 1F1B whose stages spend
their idle cooldown ticks on deferred weight gradients (W = "wgt": the weight-gradient GEMMs
of one micro-batch whose backward, which computed only the input gradient, is done). The F
and B ticks are 1F1B's; the W that no idle tick took are computed together after a stage's
last op (one GEMM per layer over their rows), so a stage's step ends W ticks later:

    tick   0  1  2  3  4  5  6  7  8  9 10 11 | rest
    s0    F0 F1 F2  .  . B0 F3 B1 W0 B2 W1 B3 | W2 W3
    s1     . F0 F1  . B0 F2 B1 F3 B2 W0 B3  . | W1 W2 W3
    s2     .  . F0 B0 F1 B1 F2 B2 F3 B3  .  . | W0 W1 W2 W3

With unit-time F, B and W, GPipe and 1F1B end at 3M + 2(K-1) and, once M >= K, ZB-H1 at
3M + (K-1) (ideal_bubble). Without deferred weight gradients (B computes them) the W ops do
nothing and ZB-H1 is 1F1B.

Within one tick, ticks are yielded by stage; the driver submits them in this order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import ConfigError

OPS = ("fwd", "bwd", "wgt")


@dataclass(frozen=True)
class Tick:
    """One unit of pipeline work: `stage` runs `op` on `micro_batch` at time `tick`."""

    tick: int
    stage: int
    op: str
    micro_batch: int


def gpipe(stages: int, micro: int) -> Iterator[Tick]:
    """GPipe: every stage runs all M forwards, then all M backwards (see the module table)."""
    _check(stages, micro, "gpipe")
    programs = [[("fwd", m) for m in range(micro)] + [("bwd", m) for m in range(micro)]
                for _ in range(stages)]
    yield from _simulate(programs)


def one_f_one_b(stages: int, micro: int) -> Iterator[Tick]:
    """1F1B (PipeDream-flush): warm-up forwards, one-forward-one-backward, drain."""
    _check(stages, micro, "one_f_one_b")
    yield from _simulate([_one_f_one_b_program(s, stages, micro) for s in range(stages)])


def zero_bubble_h1(stages: int, micro: int) -> Iterator[Tick]:
    """ZB-H1: 1F1B plus weight-gradient ops ("wgt") in each stage's idle ticks."""
    _check(stages, micro, "zero_bubble_h1")
    programs = [_one_f_one_b_program(s, stages, micro) for s in range(stages)]
    yield from _simulate(programs, fill_weights=True)


SCHEDULES = {"gpipe": gpipe, "1f1b": one_f_one_b, "zbh1": zero_bubble_h1}


def ideal_bubble(name: str, stages: int, micro: int, deferred: bool = True) -> float:
    """The idle share of K stages over one step of schedule `name` with unit-time ops.

    deferred: weight gradients are separate unit-time W work (each stage: M forwards, M
    input-gradient backwards, M weight gradients, those not placed as "wgt" ticks after its
    last op); False: a backward computes them too, so W ticks do nothing and every op of the
    tick table is one equal unit (B = dL/dx + W only scales the table's time).
    GPipe, 1F1B: 2(K-1)/(3M+2(K-1)) deferred, (K-1)/(M+K-1) not. ZB-H1: (K-1)/(3M+K-1)
    deferred once M >= K (more below that), 1F1B's value without deferral.

    Raises:
        ConfigError: unknown schedule or sizes (as the schedule itself).
    """
    ticks = list(schedule_by_name(name)(stages, micro))
    end, wgt = [0] * stages, [0] * stages
    for t in ticks:
        end[t.stage] = max(end[t.stage], t.tick + 1)
        wgt[t.stage] += t.op == "wgt"
    if not deferred:
        return 1 - 2 * micro / max(end)
    span = max(e + micro - w for e, w in zip(end, wgt))
    return 1 - 3 * micro / span


def schedule_by_name(name: str):
    """The schedule generator called `name` ("gpipe", "1f1b" or "zbh1")."""
    if name not in SCHEDULES:
        raise ConfigError(f"schedule: unknown schedule {name!r}; use one of {sorted(SCHEDULES)}")
    return SCHEDULES[name]


def _one_f_one_b_program(s: int, stages: int, micro: int) -> list:
    warm = min(stages - 1 - s, micro)
    prog = [("fwd", m) for m in range(warm)]
    for i in range(micro - warm):
        prog += [("fwd", warm + i), ("bwd", i)]
    return prog + [("bwd", m) for m in range(micro - warm, micro)]


def _check(stages, micro, where):
    for name, v in (("stages", stages), ("micro", micro)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{where}: {name} must be an integer >= 1 (got {v!r})")


def _simulate(programs: list, fill_weights: bool = False) -> Iterator[Tick]:
    """Unit-time list scheduling: each stage runs its next op once its inputs are done.

    fill_weights: a stage whose next op is not ready runs "wgt" of its oldest micro-batch
    whose backward is done and whose weight gradients are not (only before its program ends;
    the rest are computed together afterwards)."""
    k = len(programs)
    done: dict = {}  # (op, stage, mb) -> tick it ran
    pending: list = [[] for _ in range(k)]  # per stage: backwards done, weights not
    pos, tick = [0] * k, 0
    while any(p < len(prog) for p, prog in zip(pos, programs)):
        for s in range(k):
            if pos[s] >= len(programs[s]):
                continue
            if _ready(programs[s][pos[s]], s, k, done, tick):
                op, mb = programs[s][pos[s]]
                done[(op, s, mb)] = tick
                pos[s] += 1
                if op == "bwd" and fill_weights:
                    pending[s].append(mb)
                yield Tick(tick, s, op, mb)
            elif pending[s]:
                yield Tick(tick, s, "wgt", pending[s].pop(0))
        tick += 1


def _ready(item, s: int, k: int, done: dict, tick: int) -> bool:
    op, mb = item
    if op == "fwd":
        need = ("fwd", s - 1, mb) if s > 0 else None
    else:
        need = ("bwd", s + 1, mb) if s < k - 1 else ("fwd", s, mb)
    return need is None or done.get(need, tick) < tick
