"""CPU pinning of actors: the CPU runs handed out, the process/thread modes, and the driver
pinning its stage actors on a real local Ray."""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import threading
import time

import numpy as np
import pytest

from loomdist.actors.pinning import (
    Pinnable,
    _cpu_list,
    assign_cpus,
    pin_process,
    pinned_elsewhere,
    whole_cpus,
)
from loomdist.errors import ConfigError
from loomdist.memory import retention_wanted
from loomdist.plan import Plan
from loomdist.train_config import TrainingConfig

# actors keep freed memory on glibc (loomdist.memory) unless LOOMDIST_RETAIN_MEMORY=0
RETAINS = platform.libc_ver()[0] == "glibc" and retention_wanted()


def test_assign_hands_out_disjoint_runs_from_the_top():
    eight = list(range(8))
    got = assign_cpus([("a", eight)] * 3, 2)
    assert got == [[6, 7], [4, 5], [2, 3]]


def test_assign_per_node_and_skips_a_node_that_does_not_fit(caplog):
    reports = [("a", [0, 1]), ("b", [0, 1, 2, 3]), ("a", [0, 1]), ("b", [0, 1, 2, 3]),
               ("a", [0, 1])]
    got = assign_cpus(reports, 1)
    assert got[1] == [3] and got[3] == [2]
    assert got[0] is got[2] is got[4] is None  # 3 actors on node a's 2 CPUs: left alone
    assert "not pinning 3 actors" in caplog.text


def test_assign_skips_cpus_pinned_elsewhere_and_keeps_to_every_actors_cpus():
    four = [0, 1, 2, 3]
    assert assign_cpus([("a", four, [3]), ("a", four, [3])], 1) == [[2], [1]]
    assert assign_cpus([("a", four, []), ("a", [0, 1], [])], 1) == [[1], [0]]
    assert assign_cpus([("a", four, [0, 1, 2])] * 2, 1, warn=False) == [None, None]


def test_usage_counts_pages_first_touched_and_cpu_time():
    before = Pinnable().usage()
    fresh = np.ones(4 * 2**20, np.float32)  # 16 MiB of new pages (at least 8 huge ones)
    t0 = time.process_time()
    while time.process_time() - t0 < 0.05:  # 50 ms of this process's CPU
        pass
    after = Pinnable().usage()
    assert after["minor_faults"] - before["minor_faults"] >= 8 and fresh[-1] == 1
    assert after["cpu_s"] - before["cpu_s"] >= 0.04
    assert isinstance(after["preempted"], int)  # involuntary context switches so far


def test_cpu_list_parses_the_kernels_format():
    assert _cpu_list("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert _cpu_list("5") == {5}


def test_assign_uses_the_allowed_cpus_not_their_indices():
    assert assign_cpus([("n", [3, 5, 9, 12])] * 2, 2) == [[9, 12], [3, 5]]


@pytest.mark.parametrize("per, n", [(1, 1), (2.0, 2), (0.5, 0), (1.5, 0), (0, 0)])
def test_whole_cpus(per, n):
    assert whole_cpus(per) == n


def _affinities(mode, q):
    ready, stop = threading.Event(), threading.Event()
    other = {}

    def side():
        ready.set()
        stop.wait(10)
        other["cpus"] = sorted(os.sched_getaffinity(0))
    t = threading.Thread(target=side)
    t.start()
    ready.wait()
    mine = pin_process([0], mode)
    stop.set()
    t.join()
    later = {}
    t2 = threading.Thread(target=lambda: later.update(cpus=sorted(os.sched_getaffinity(0))))
    t2.start()
    t2.join()
    q.put((mine, other["cpus"], later["cpus"]))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to tell modes apart")
@pytest.mark.parametrize("mode", ["process", "thread"])
def test_pin_process_modes(mode):
    allowed = sorted(os.sched_getaffinity(0))
    if 0 not in allowed:
        pytest.skip("CPU 0 is not ours")
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_affinities, args=(mode, q))
    p.start()
    mine, other, later = q.get(timeout=60)
    p.join(60)
    assert mine == [0] and later == [0]  # new threads inherit the caller's CPUs
    assert other == ([0] if mode == "process" else allowed)


def test_pin_process_rejects_bad_input():
    with pytest.raises(ValueError, match="no CPUs"):
        pin_process([])
    with pytest.raises(ValueError, match="unknown mode"):
        pin_process([0], "core")


def test_plan_rejects_unknown_pin_mode():
    with pytest.raises(ConfigError, match="pin_cpus must be"):
        Plan(stages=(((0, 0),),), pin_cpus="cores")


def _retaining(ray_session, actors) -> list:
    """loomdist.memory.is_retaining() in each actor's process: actors keep freed memory."""
    def ask(self):
        from loomdist.memory import is_retaining
        return is_retaining()
    return ray_session.get([a.__ray_call__.remote(ask) for a in actors])


def _two_cell_net():
    from loomdist.run import build_network
    layer = {"type": "dense", "activation": "tanh", "input_height": 4, "output_height": 4}
    return build_network({"grid_rows": 2, "grid_cols": 1, "seed": 0, "layers_per_cell": 1,
                          "layers": [layer, layer]})


@pytest.mark.ray
@pytest.mark.parametrize("mode", ["process", "thread", None])
def test_driver_pins_whole_cpu_actors(ray_session, mode):
    from loomdist.driver import DistributedTrainer
    if ray_session.cluster_resources().get("CPU", 0) != 2:
        pytest.skip("the session Ray has 2 CPUs in this suite")
    net = _two_cell_net()
    allowed = sorted(os.sched_getaffinity(0))
    cfg = TrainingConfig(loss_type="mse", optimizer="sgd", learning_rate=0.1, batch_size=4)
    plan = Plan.cells(net, num_cpus=1, pin_cpus=mode)
    x = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    with DistributedTrainer(net, cfg, plan, microbatches=2) as tr:
        reports = ray_session.get([c.cpu_report.remote() for c in tr.cells[0]])
        loss, _ = tr.step(x, x, 0.1)
        retains = _retaining(ray_session, tr.cells[0])
        taken, pids = pinned_elsewhere(), {pid for _, pid in tr._processes}
        if mode == "process":  # what a restart's new actors would see, and not count
            assert taken >= set(allowed[-2:]) and len(pids) == 2
            assert not pinned_elsewhere(pids) & set(allowed[-2:])
    assert np.isfinite(loss)
    assert retains == [RETAINS, RETAINS]
    if mode is None:
        assert tr.pinned == [None, None]
        assert all(cpus == allowed for _, cpus, _ in reports)
    else:
        assert tr.pinned == [[allowed[-1]], [allowed[-2]]]
        assert [cpus for _, cpus, _ in reports] == tr.pinned


def _two_actor_setup(ray_session):
    if ray_session.cluster_resources().get("CPU", 0) != 2:
        pytest.skip("the session Ray has 2 CPUs in this suite")
    return _two_cell_net(), sorted(os.sched_getaffinity(0))


@pytest.mark.ray
def test_restarted_actors_are_pinned_again(ray_session, tmp_path):
    from loomdist.driver import DistributedTrainer
    from loomdist.recovery import Fault
    net, allowed = _two_actor_setup(ray_session)
    cfg = TrainingConfig(loss_type="mse", optimizer="sgd", learning_rate=0.1, batch_size=4,
                         epochs=2)
    x = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
    with DistributedTrainer(net, cfg, Plan.cells(net, num_cpus=1), microbatches=2,
                            run_dir=tmp_path, fault=Fault(1, 0, 3)) as tr:
        first = tr.cells[0][0]
        tr.fit(x, x)
        assert tr.cells[0][0] is not first  # the fault restarted the actors
        assert len(tr._killed) == 2  # the old actors' CPUs counted free for the new ones
        reports = ray_session.get([c.cpu_report.remote() for c in tr.cells[0]])
    assert tr.pinned == [[allowed[-1]], [allowed[-2]]]
    assert [cpus for _, cpus, _ in reports] == tr.pinned


@pytest.mark.ray
def test_step_grid_pins_its_actors(ray_session):
    from loomdist.actors.step import StepGrid
    net, allowed = _two_actor_setup(ray_session)
    grid = StepGrid(net, num_cpus=1)
    try:
        reports = ray_session.get([a.cpu_report.remote() for a in grid.actors])
        retains = _retaining(ray_session, grid.actors)
    finally:
        grid.shutdown()
    assert grid.pinned == [[allowed[-1]], [allowed[-2]]]
    assert [cpus for _, cpus, _ in reports] == grid.pinned
    assert retains == [RETAINS, RETAINS]


def test_cli_and_ray_options_carry_the_pin_mode():
    from loomdist.cli_train import make_ray_options
    net = _two_cell_net()
    assert make_ray_options("ray").make_plan(net).pin_cpus == "process"  # the default
    for flag, mode in (("none", None), ("thread", "thread"), ("process", "process")):
        assert make_ray_options("ray", pin_cpus=flag).make_plan(net).pin_cpus == mode
