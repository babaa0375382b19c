"""The two clocks of the assessment harness.

    deterministic  output k happens at t = k / outputs_per_sec: a fixed number of outputs per
                   1 s window, training work takes no simulated time, so a seeded run repeats
                   bit for bit. The default rate, 5200 outputs/s, is LOOM Go's own Test 17
                   StepTweenChain throughput (~78k outputs in 15 s, spec 5.3/5.6 and issue 5),
                   so updates per window match LOOM's run.
    wall           t = wall-clock seconds since the start, as LOOM measures (results then
                   depend on this machine's speed, like LOOM's).

LOOM's ">50 ms since the last burst" training interval is measured on the same clock, so under
the deterministic clock a burst happens every 261 outputs at 5200 outputs/s.
"""

from __future__ import annotations

import time

from ...errors import ConfigError

LOOM_T17_OUTPUTS_PER_SEC = 5200  # ~78 000 outputs in LOOM's 15 s Test 17 StepTweenChain run
CLOCKS = ("deterministic", "wall")


class DeterministicClock:
    """t = outputs so far / outputs_per_sec."""

    name = "deterministic"

    def __init__(self, outputs_per_sec: int = LOOM_T17_OUTPUTS_PER_SEC):
        if isinstance(outputs_per_sec, bool) or not isinstance(outputs_per_sec, int) \
                or outputs_per_sec < 1:
            raise ConfigError(f"DeterministicClock: outputs_per_sec must be an int >= 1 (got "
                              f"{outputs_per_sec!r}); LOOM's Test 17 rate is "
                              f"{LOOM_T17_OUTPUTS_PER_SEC}")
        self.rate = outputs_per_sec
        self.count = 0

    def start(self) -> None:
        self.count = 0

    def now(self) -> float:
        return self.count / self.rate

    def tick(self) -> None:
        self.count += 1


class WallClock:
    """t = time.perf_counter() since start()."""

    name = "wall"

    def __init__(self, outputs_per_sec: int | None = None):
        self.t0 = time.perf_counter()

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def tick(self) -> None:
        return None


def make_clock(name: str, outputs_per_sec: int = LOOM_T17_OUTPUTS_PER_SEC):
    """A fresh clock by name ("deterministic" or "wall")."""
    if name == "deterministic":
        return DeterministicClock(outputs_per_sec)
    if name == "wall":
        return WallClock()
    raise ConfigError(f"make_clock: unknown clock {name!r}; use one of {CLOCKS}")
