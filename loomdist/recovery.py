"""Recovery without Ray: deterministic fault injection, and the trainer state that resumes.

    fit ── step k ── actor dies ──> ActorLost ──> kill all actors, start new ones,
     ^                                             load the last complete checkpoint
     └──────────── replay from its step <──────────(or the start), bounded by max_restarts

`Fault` makes the CellActor owning a chosen cell exit (os._exit) when it begins a chosen
step, the first `times` times only: a counter file in `state_dir` survives the restart, so
the replay passes that step. Tests use it instead of sleeps and signals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import CellFailedError, ConfigError


@dataclass(frozen=True)
class Fault:
    """Kill the actor of cell (row, col) as it begins `step` (1-based), `times` times.

    state_dir: where the counter file lives (None: the trainer's run_dir / "faults").
    hang: instead of exiting, block (tests of the timeout path).
    """

    row: int
    col: int
    step: int
    times: int = 1
    state_dir: str | None = None
    hang: bool = False

    def __post_init__(self):
        for name, low in (("row", 0), ("col", 0), ("step", 1), ("times", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"Fault: {name} must be an integer >= {low} (got {v!r})")

    def counter(self) -> Path:
        return Path(self.state_dir) / f"fault_{self.row}_{self.col}_{self.step}"

    def trigger(self, cells, step: int) -> None:
        """Called by a cell as it begins `step`; exits the process when this fault fires."""
        if step != self.step or (self.row, self.col) not in cells:
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
