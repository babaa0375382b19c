"""Plans: one actor per cell, balanced stages from per-cell cost, validation (no Ray)."""

from __future__ import annotations

import numpy as np
import pytest

import loomdist
from loomdist.errors import ConfigError
from loomdist.layers import LAYERS
from loomdist.plan import Plan, _partition, measure_cell_costs, parallel_layers


def grid(rows=2, cols=3):
    d = LAYERS["dense"].Spec
    net = loomdist.Network(0, rows, cols, 1)
    for i in range(net.total_layers):
        spec = LAYERS["parallel"].Spec((d(4, 4), d(4, 4)), "add") if i == 2 else d(4, 4)
        net.set_layer(*net.coords(i), spec, rng=i)
    return net


def test_cells_plan_is_one_stage_per_cell_in_grid_order():
    net = grid()
    plan = Plan.cells(net)
    assert plan.stages == (((0, 0),), ((0, 1),), ((0, 2),), ((1, 0),), ((1, 1),), ((1, 2),))
    plan.check(net)
    assert plan.stage_layers(net, 3) == [3] and plan.actor_count(net) == 6


def test_balanced_minimises_the_slowest_stage():
    net = grid()
    plan = Plan.balanced(net, 3, cost=[5, 1, 1, 1, 1, 5])
    assert plan.stages == (((0, 0),), ((0, 1), (0, 2), (1, 0), (1, 1)), ((1, 2),))
    assert Plan.balanced(net, 2, cost=[1] * 6).stages == (((0, 0), (0, 1), (0, 2)),
                                                          ((1, 0), (1, 1), (1, 2)))
    assert Plan.balanced(net, 6, cost=[1] * 6).stages == Plan.cells(net).stages


@pytest.mark.parametrize("cost,k", [([3, 1, 4, 1, 5, 9, 2, 6], 3), ([1, 1, 1], 3),
                                    ([7, 0.5, 0.5, 7], 2)])
def test_partition_is_optimal_by_brute_force(cost, k):
    from itertools import combinations
    cuts = _partition(cost, k)

    def worst(c):
        b = [0, *c, len(cost)]
        return max(sum(cost[x:y]) for x, y in zip(b, b[1:]))
    best = min(worst(list(c)) for c in combinations(range(1, len(cost)), k - 1))
    assert len(cuts) == k - 1 and worst(cuts) == pytest.approx(best)


def test_measured_costs_are_positive_and_leave_the_net_alone():
    net = grid()
    costs = measure_cell_costs(net, repeats=1)
    assert len(costs) == 6 and all(c > 0 for c in costs)
    assert not list(net.gradients())
    assert len(Plan.balanced(net, 2).stages) == 2


def test_branch_actor_layers_and_counts():
    net = grid()
    assert parallel_layers(net) == [2]
    plan = Plan.cells(net, replicas=2, branch_actors=(2,))
    plan.check(net)
    assert plan.actor_count(net) == 2 * (6 + 2)


@pytest.mark.parametrize("make,match", [
    (lambda n: Plan.balanced(n, 7, cost=[1] * 6), "7 stages for 6 cells"),
    (lambda n: Plan.balanced(n, 2, cost=[1] * 5), "5 costs for 6 cells"),
    (lambda n: Plan.balanced(n, 0), "stages must be an integer >= 1"),
    (lambda n: Plan((((0, 0),), ())), "every stage needs at least one cell"),
    (lambda n: Plan.cells(n, replicas=0), "replicas must be an integer >= 1"),
    (lambda n: Plan.cells(n, num_cpus=0), "num_cpus must be > 0 or None"),
])
def test_bad_plans_at_construction(make, match):
    with pytest.raises(ConfigError, match=match):
        make(grid())


@pytest.mark.parametrize("plan,match", [
    (Plan((((0, 0), (0, 1), (0, 2)), ((1, 0), (1, 1), (1, 3)))), r"cells \[\(1, 3\)\]"),
    (Plan(tuple(((0, 0),) for _ in range(7))), "7 stages for 6 cells"),
    (Plan((((0, 0), (0, 2), (0, 1)), ((1, 0), (1, 1), (1, 2)))), "in grid order"),
    (Plan((((0, 0), (0, 1), (0, 2)),)), "cover every cell once"),
    (Plan((((0, 0), (0, 1), (0, 2)), ((1, 0), (1, 1), (1, 2))), branch_actors=(1,)),
     r"index 1 is not a Parallel layer \(dense\); .* \[2\]"),
    (Plan((((0, 0), (0, 1), (0, 2)), ((1, 0), (1, 1), (1, 2))), branch_actors=(9,)),
     r"index 9 is not a Parallel layer \(no layer\)"),
])
def test_bad_plans_against_the_network(plan, match):
    with pytest.raises(ConfigError, match=match):
        plan.check(grid())


def test_costs_need_a_declared_input_size():
    net = loomdist.Network(0, 1, 2, 1)
    for i in range(2):
        net.set_layer(0, i, 0, LAYERS["rms_norm"].Spec(4), rng=i)
    with pytest.raises(ConfigError, match="pass cost= per cell"):
        measure_cell_costs(net)
    assert np.isfinite(Plan.balanced(net, 2, cost=[1, 2]).replicas)
