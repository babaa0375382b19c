"""Pipeline schedules as pure generators of Tick(tick, stage, op, micro_batch).

Both schedules come from one unit-time simulation: each stage owns an ordered program of
("fwd" | "bwd", micro-batch) ops and runs its next op at the first tick where its inputs
exist (fwd of stage s-1 or bwd of stage s+1 finished at an earlier tick).

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

Within one tick, ticks are yielded by stage; the driver submits them in this order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import ConfigError

OPS = ("fwd", "bwd")


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


SCHEDULES = {"gpipe": gpipe, "1f1b": one_f_one_b}


def schedule_by_name(name: str):
    """The schedule generator called `name` ("gpipe" or "1f1b")."""
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


def _simulate(programs: list) -> Iterator[Tick]:
    """Unit-time list scheduling: each stage runs its next op once its inputs are done."""
    k = len(programs)
    done: dict = {}  # (op, stage, mb) -> tick it ran
    pos, tick = [0] * k, 0
    while any(p < len(prog) for p, prog in zip(pos, programs)):
        for s in range(k):
            if pos[s] < len(programs[s]) and _ready(programs[s][pos[s]], s, k, done, tick):
                op, mb = programs[s][pos[s]]
                done[(op, s, mb)] = tick
                pos[s] += 1
                yield Tick(tick, s, op, mb)
        tick += 1


def _ready(item, s: int, k: int, done: dict, tick: int) -> bool:
    op, mb = item
    if op == "fwd":
        need = ("fwd", s - 1, mb) if s > 0 else None
    else:
        need = ("bwd", s + 1, mb) if s < k - 1 else ("fwd", s, mb)
    return need is None or done.get(need, tick) < tick
