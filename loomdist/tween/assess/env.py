"""The chase/avoid environment of Tests 17-19 and the Test 16 data generator (spec 5.1).

float32 state like LOOM's; a numpy Generator replaces Go's global math/rand (seeded, so a
run repeats bit for bit).
"""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32
CHASE, AVOID = 0, 1
TASK_NAMES = {CHASE: "chase", AVOID: "AVOID!"}
SPEED = F32(0.02)
MOVES = np.array([(0, SPEED), (0, -SPEED), (-SPEED, 0), (SPEED, 0)], F32)  # up down left right
_MOVES = [tuple(m) for m in MOVES]  # float32 scalars: the hot loop avoids tiny-array numpy calls
_ZERO, _ONE, _LO, _HI = F32(0), F32(1), F32(0.1), F32(0.9)


def _clamp(v, lo, hi):
    """np.clip of one float32 scalar (no NaN can occur here)."""
    return lo if v < lo else hi if v > hi else v


class ChaseEnv:
    """Agent at (0.5, 0.5), target uniform in [0, 1)^2; task 0 = CHASE, 1 = AVOID."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.agent = np.array([0.5, 0.5], F32)
        self.target = rng.random(2, dtype=F32)
        self.task = CHASE

    def observation(self, size: int = 8) -> np.ndarray:
        """[ax, ay, tx, ty, dx, dy, dist, task], repeated cyclically to `size` values."""
        (ax, ay), (tx, ty) = self.agent, self.target  # float32 scalars: float32 arithmetic
        dx, dy = tx - ax, ty - ay
        dist = F32(math.sqrt(float(dx * dx + dy * dy)))
        base = np.array((ax, ay, tx, ty, dx, dy, dist, self.task), F32)
        return base if size == base.size else np.resize(base, size)

    def optimal_action(self) -> int:
        """CHASE: step toward the target along the larger offset; AVOID: the opposite."""
        dx, dy = self.target - self.agent
        if abs(dx) > abs(dy):
            toward = 3 if dx > 0 else 2
        else:
            toward = 0 if dy > 0 else 1
        return toward if self.task == CHASE else (toward ^ 1)

    def execute(self, action: int) -> None:
        if 0 <= action < 4:
            (mx, my), (ax, ay) = _MOVES[action], self.agent
            self.agent = np.array((_clamp(ax + mx, _ZERO, _ONE), _clamp(ay + my, _ZERO, _ONE)),
                                  F32)

    def drift(self) -> None:
        """Target random walk: t += (U(0,1) - 0.5) * 0.01 per axis, clamped to [0.1, 0.9]."""
        sx, sy = (self.rng.random(2, dtype=F32) - F32(0.5)) * F32(0.01)
        tx, ty = self.target
        self.target = np.array((_clamp(tx + sx, _LO, _HI), _clamp(ty + sy, _LO, _HI)), F32)


def t16_data(input_size: int, rng: np.random.Generator, n: int = 500, classes: int = 3):
    """generateTrainingData(inputSize, 3): x ~ U(-1,1)^n, parity-quadrant class, 10 % noise.

    Returns (x (n, input_size) float32, class indices (n,) int)."""
    x = (rng.random((n, input_size), dtype=F32) * 2 - 1).astype(F32)
    y = np.empty(n, np.int64)
    for i in range(n):
        q = int(x[i, 0] * x[i, 1] > 0) + 2 * int(x[i, 2] * x[i, 3] > 0)
        if x[i, 4:].sum() > 0:
            q = (q + 1) % 4
        c = q % classes
        if rng.random() < 0.1:
            c = int(rng.integers(classes))
        y[i] = c
    return x, y
