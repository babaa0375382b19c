"""Recovery without Ray: deterministic fault injection, and the trainer state that resumes.

    fit ── step k ── actor dies ──> ActorLost ──> kill all actors, start new ones,
     ^                                             load the last complete checkpoint
     └──────────── replay from its step <──────────(or the start), bounded by max_restarts

`Fault` makes the CellActor owning a chosen cell exit (os._exit) when it begins a chosen
step, the first `times` times only: a counter file in `state_dir` survives the restart, so
the replay passes that step. With `raise_in` it raises from a chosen actor method instead
(an error, not a death: the step fails). Tests use it instead of sleeps and signals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import CellFailedError, ConfigError

RAISE_IN = ("backward", "weight_grads")  # CellActor methods a Fault can raise from


class FaultInjected(RuntimeError):
    """The error a Fault with raise_in raises inside an actor method."""


@dataclass(frozen=True)
class Fault:
    """Kill the actor of cell (row, col) as it begins `step` (1-based), `times` times.

    state_dir: where the counter file lives (None: the trainer's run_dir / "faults").
    hang: instead of exiting, block (tests of the timeout path).
    raise_in: instead of exiting as `step` begins, raise FaultInjected from this CellActor
        method ("backward" or "weight_grads") during `step`, every time (tests of errors in
        calls whose result nothing reads: the step must fail, not go on).
    """

    row: int
    col: int
    step: int
    times: int = 1
    state_dir: str | None = None
    hang: bool = False
    raise_in: str | None = None

    def __post_init__(self):
        for name, low in (("row", 0), ("col", 0), ("step", 1), ("times", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"Fault: {name} must be an integer >= {low} (got {v!r})")
        if self.raise_in not in (None,) + RAISE_IN:
            raise ConfigError(f"Fault: raise_in must be one of {RAISE_IN} or None (got "
                              f"{self.raise_in!r})")

    def check(self, cells, step: int, method: str) -> None:
        """Called by a cell's `method` during `step`; raises FaultInjected when this fault
        names that method, step and one of `cells`."""
        if self.raise_in == method and step == self.step and (self.row, self.col) in cells:
            raise FaultInjected(f"fault injected in {method} of cell ({self.row}, "
                                f"{self.col}) at step {step}")

    def counter(self) -> Path:
        return Path(self.state_dir) / f"fault_{self.row}_{self.col}_{self.step}"

    def trigger(self, cells, step: int) -> None:
        """Called by a cell as it begins `step`; exits the process when this fault fires."""
        if self.raise_in is not None or step != self.step or (self.row, self.col) not in cells:
            return
        path = self.counter()
        done = int(path.read_text()) if path.is_file() else 0
        if done >= self.times:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            f.write(str(done + 1))
            f.flush()
            os.fsync(f.fileno())
        if self.hang:
            import time
            time.sleep(3600)
        os._exit(1)


class ActorLost(CellFailedError):
    """An actor died or did not answer in time: recoverable by restart and replay."""


def fresh_state() -> dict:
    """train.Trainer's state at step 0 (the fields of trainer.json)."""
    return {"step": 0, "epoch": 0, "batch": 0, "loss_sum": 0.0, "history": []}


def gave_up(lost: ActorLost, restarts: int) -> CellFailedError:
    """The error fit raises when `restarts` restarts did not get past `lost`."""
    return CellFailedError(lost.row, lost.col, lost.step,
                           f"{lost.cause}; gave up after {restarts} restarts from the last "
                           f"checkpoint (DistributedTrainer(max_restarts=...) / "
                           f"--max-restarts)")
