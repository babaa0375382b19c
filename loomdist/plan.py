"""Placement of a Network on actors: pipeline stages of consecutive cells, branch fan-out,
data-parallel replicas. Pure (no Ray): the driver checks the plan against the cluster.

    2x2 grid, Plan.cells:          stages ((0,0),) ((0,1),) ((1,0),) ((1,1),)
    2x2 grid, balanced(net, 2):    stages ((0,0), (0,1)) ((1,0), (1,1))   (by measured cost)

Cells are in grid order (r*cols + c), and a stage is a run of consecutive cells.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

PIN_MODES = ("process", "thread")  # Plan.pin_cpus values besides None (actors/pinning.py)
PIN_CHOICES = PIN_MODES + ("none",)  # the same on a command line ("none": None)


def pin_mode(name: str | None) -> str | None:
    """A pin mode from a command line: "none" (or None) -> None, else the name itself."""
    return None if name in (None, "none") else name


@dataclass(frozen=True)
class Plan:
    """Where a Network's pieces run.

    stages: per pipeline stage, its cells as (row, col), consecutive in grid order.
    replicas: data-parallel copies of the whole pipeline; stage gradients are combined.
    branch_actors: flat layer indices of Parallel layers whose branches run on BranchActors.
    branch_groups: BranchActors per fanned-out Parallel layer (branches split in runs).
    num_cpus: CPUs reserved per actor (also its Numba/BLAS threads, at least 1); None shares
        the cluster's CPUs evenly between all actors.
    num_gpus: Ray GPUs reserved per cell actor (a fraction below 1 shares a GPU); > 0 runs
        the cells' math on the wgpu backend.
    backend: the cells' math: "cpu", "wgpu" (alias "gpu"), or None: "wgpu" when num_gpus > 0,
        else "cpu" (see `cell_backend`). Branch actors always compute on the CPU.
    pin_cpus: "process" (default) pins all threads of every actor whose CPU share is a whole
        number to its own CPUs of its node, "thread" only its compute thread, None leaves
        placement to the OS (actors/pinning.py; a node whose actors do not fit is not pinned).
    """

    stages: tuple
    replicas: int = 1
    branch_actors: tuple = ()
    branch_groups: int = 2
    num_cpus: float | None = None
    num_gpus: float = 0.0
    backend: str | None = None
    pin_cpus: str | None = "process"

    def __post_init__(self):
        object.__setattr__(self, "stages", tuple(tuple(tuple(c) for c in s)
                                                 for s in self.stages))
        object.__setattr__(self, "branch_actors", tuple(self.branch_actors))
        for name in ("replicas", "branch_groups"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"Plan: {name} must be an integer >= 1 (got {v!r})")
        if self.num_cpus is not None and not self.num_cpus > 0:
            raise ConfigError(f"Plan: num_cpus must be > 0 or None (got {self.num_cpus!r}); "
                              f"None shares the cluster's CPUs between the actors")
        self._check_gpus()
        if self.pin_cpus is not None and self.pin_cpus not in PIN_MODES:
            raise ConfigError(f"Plan: pin_cpus must be 'thread', 'process' or None (got "
                              f"{self.pin_cpus!r}); None leaves actor placement to the OS")
        if not self.stages or any(not s for s in self.stages):
            raise ConfigError(f"Plan: every stage needs at least one cell (stages "
                              f"{self.stages}); drop empty stages or use fewer stages")

    def _check_gpus(self) -> None:
        g, b = self.num_gpus, self.backend
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not (
                g == 0 or 0 < g < 1 or float(g).is_integer() and g > 0):
            raise ConfigError(f"Plan: num_gpus must be 0, a fraction below 1 or a whole number "
                              f"(got {g!r}); Ray shares a GPU only in fractions below 1")
        if b not in (None, "cpu", "wgpu", "gpu"):
            raise ConfigError(f"Plan: unknown backend {b!r}; use 'cpu', 'wgpu' or None")
        if g > 0 and b == "cpu":
            raise ConfigError(f"Plan: num_gpus={g:g} with backend 'cpu' reserves GPUs the cells "
                              f"do not use; use backend 'wgpu' (or None) or num_gpus=0")

    @property
    def cell_backend(self) -> str:
        """"cpu" or "wgpu": where the cell actors compute."""
        if self.backend is None:
            return "wgpu" if self.num_gpus > 0 else "cpu"
        return {"gpu": "wgpu"}.get(self.backend, self.backend)

    # ------------------------------------------------------------ builders
    @classmethod
    def cells(cls, net, **kw) -> Plan:
        """One stage (actor) per cell, in grid order."""
        return cls(tuple((rc,) for rc in grid_cells(net)), **kw)

    @classmethod
    def balanced(cls, net, stages: int, cost=None, **kw) -> Plan:
        """`stages` runs of consecutive cells minimising the slowest stage's total cost.

        cost: per-cell cost (seconds of forward+backward) in grid order; None measures it
        with `measure_cell_costs` on random input.
        """
        cells = grid_cells(net)
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
            raise ConfigError(f"Plan.balanced: stages must be an integer >= 1 (got {stages!r})")
        if stages > len(cells):
            raise ConfigError(f"Plan.balanced: {stages} stages for {len(cells)} cells; use at "
                              f"most {len(cells)} stages (one cell per stage)")
        cost = measure_cell_costs(net) if cost is None else [float(c) for c in cost]
        if len(cost) != len(cells):
            raise ConfigError(f"Plan.balanced: {len(cost)} costs for {len(cells)} cells; give "
                              f"one cost per cell in grid order")
        cuts = _partition(cost, stages)
        return cls(tuple(tuple(cells[a:b]) for a, b in zip([0] + cuts, cuts + [len(cells)])),
                   **kw)

    # ---------------------------------------------------------- validation
    def check(self, net) -> None:
        """Raise ConfigError unless this plan places every cell of `net` exactly once, in
        order, and every branch-actor index names a Parallel layer."""
        cells = grid_cells(net)
        if len(self.stages) > len(cells):
            raise ConfigError(f"Plan: {len(self.stages)} stages for {len(cells)} cells; use at "
                              f"most {len(cells)} stages")
        flat = [c for s in self.stages for c in s]
        missing = [c for c in flat if c not in cells]
        if missing:
            raise ConfigError(f"Plan: stages reference cells {missing} that are not in the "
                              f"{net.grid_rows}x{net.grid_cols} grid; use (row, col) with "
                              f"row < {net.grid_rows}, col < {net.grid_cols}")
        if flat != cells:
            raise ConfigError(f"Plan: stages must cover every cell once, in grid order (got "
                              f"{flat}, need {cells}); list consecutive cells per stage")
        for i in self.branch_actors:
            self._check_branch_layer(net, i)

    def _check_branch_layer(self, net, i) -> None:
        ok = isinstance(i, int) and 0 <= i < net.total_layers and net.layers[i] is not None
        if not ok or not hasattr(net.layers[i].module, "combine"):
            kind = net.layers[i].spec.kind if ok else "no layer"
            raise ConfigError(f"Plan: branch_actors index {i!r} is not a Parallel layer "
                              f"({kind}); use flat indices of parallel layers, e.g. "
                              f"{parallel_layers(net)}")

    # ------------------------------------------------------------- queries
    def stage_layers(self, net, stage: int) -> list[int]:
        """Flat layer indices of `stage`, in grid order."""
        lpc = net.layers_per_cell
        return [(r * net.grid_cols + c) * lpc + k for r, c in self.stages[stage]
                for k in range(lpc)]

    def actor_count(self, net) -> int:
        """Actors this plan starts: cell actors plus branch actors, for every replica."""
        per = len(self.stages) + sum(min(self.branch_groups, len(net.layers[i].spec.branches))
                                     for i in self.branch_actors)
        return per * self.replicas


def grid_cells(net) -> list[tuple[int, int]]:
    """Every (row, col) of `net` in grid order."""
    return [(r, c) for r in range(net.grid_rows) for c in range(net.grid_cols)]


def parallel_layers(net) -> list[int]:
    """Flat indices of the Parallel layers of `net` (candidates for branch actors)."""
    return [i for i, s in enumerate(net.layers) if s is not None and hasattr(s.module, "combine")]


def measure_cell_costs(net, batch: int = 8, repeats: int = 3, seed: int = 0) -> list[float]:
    """Median seconds of forward+backward per cell on random input (batch, in_features)."""
    from .engine import walk_backward, walk_forward
    rng = np.random.default_rng(seed)
    n_in = net.in_features()
    if n_in is None:
        raise ConfigError("measure_cell_costs: the first layer does not declare its input size; "
                          "pass cost= per cell to Plan.balanced")
    x, res, lpc, costs = rng.standard_normal((batch, n_in)).astype(np.float32), None, \
        net.layers_per_cell, []
    for k in range(len(grid_cells(net))):
        slots = copy.deepcopy(net.layers[k * lpc:(k + 1) * lpc])  # keep net's grads
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            walk = walk_forward(slots, x, res)
            walk_backward(walk, np.ones_like(walk.output), None)
            times.append(time.perf_counter() - t0)
        costs.append(float(np.median(times)))
        x, res = walk.output, walk.residual_out
    return costs


def _partition(cost: list, k: int) -> list[int]:
    """Cut points splitting `cost` into k consecutive runs with the smallest maximum sum."""
    n = len(cost)
    pre = np.concatenate([[0.0], np.cumsum(cost)])
    best = np.full((k + 1, n + 1), np.inf)
    cut = np.zeros((k + 1, n + 1), dtype=int)
    best[0, 0] = 0.0
    for j in range(1, k + 1):
        for i in range(j, n + 1):
            for a in range(j - 1, i):
                v = max(best[j - 1, a], pre[i] - pre[a])
                if v < best[j, i]:
                    best[j, i], cut[j, i] = v, a
    cuts, i = [], n
    for j in range(k, 0, -1):
        i = cut[j, i]
        cuts.append(int(i))
    return sorted(cuts)[1:]
