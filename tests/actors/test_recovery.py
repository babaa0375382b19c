"""Faults and resume on Ray: a killed (or silent) cell actor is restarted from the last
checkpoint and the run ends with the uninterrupted run's bits; a checkpoint resumes on another
plan and across the local and Ray trainers; exhausted restarts name the cell and the step."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from loomdist.driver import DistributedTrainer
from loomdist.errors import CellFailedError, ConfigError
from loomdist.io.checkpoint import latest_checkpoint
from loomdist.plan import Plan
from loomdist.recovery import Fault
from loomdist.schedule import zero_bubble_h1
from loomdist.train import Trainer
from loomdist.train_config import TrainingConfig

from .test_transparency import PARALLEL, WTOL, data, mixed_net

pytestmark = pytest.mark.ray
# 10 rows, batch 4: 3 steps per epoch, 6 in all; checkpoints after steps 2, 4 and 6.
# Adam: its bias correction reads the optimizer's step count, so a resume must restore it.
ADAM = TrainingConfig(epochs=2, learning_rate=0.02, optimizer="adam", batch_size=4,
                      loss_type="cross_entropy", gradient_clip=0.5, checkpoint_every=2)
# Momentum where results are compared within a tolerance (see WTOL in test_transparency).
MOMENTUM = TrainingConfig(epochs=2, learning_rate=0.05, optimizer="momentum", batch_size=4,
                          loss_type="cross_entropy", gradient_clip=0.5, checkpoint_every=2,
                          lr_schedule="cosine")
BALANCED = [1.0, 3.0, 2.0, 1.0]  # two stages: ((0,0), (0,1)) and ((1,0), (1,1))


class Stop(Exception):
    """Raised from on_step: the run stops as a killed process would (after the step)."""


def stop_at(step):
    def on_step(s, _loss):
        if s == step:
            raise Stop
    return on_step


def ray_fit(run_dir, plan=lambda net: Plan.cells(net), cfg=ADAM, resume=False, **kw):
    """(network, result) of a DistributedTrainer fit of mixed_net on data(10)."""
    net, (x, t) = mixed_net(), data(10)
    kw = dict(dict(microbatches=2), **kw)
    with DistributedTrainer(net, cfg, plan(net), run_dir=run_dir, **kw) as dt:
        return net, dt.fit(x, t, resume=resume)


def local_fit(run_dir=None, cfg=MOMENTUM, resume=False, on_step=None):
    net, (x, t) = mixed_net(), data(10)
    return net, Trainer(net, cfg, run_dir, on_step=on_step).fit(x, t, resume=resume)


def assert_close(net, ref, result, ref_result, exact=False):
    """Same steps, losses and final weights: bit for bit (exact) or within WTOL."""
    assert result.steps == ref_result.steps
    if exact:
        assert result.loss_history == ref_result.loss_history
    np.testing.assert_allclose(result.loss_history, ref_result.loss_history, rtol=1e-5)
    same = np.testing.assert_array_equal if exact else \
        lambda a, b, err_msg: np.testing.assert_allclose(a, b, **WTOL, err_msg=err_msg)
    for k, w in ref.parameters():
        same(net.param(k), w, err_msg=str(k))


# -------------------------------------------------------------- (a) kill, restart, replay
BRANCHES = dict(schedule="1f1b", plan=lambda net: Plan.cells(net, branch_actors=(PARALLEL,)))
KILLS = {  # name: (options of the reference run, more options of the faulty one, fault)
    # step 5: restarts from checkpoint 4, which is in the middle of epoch 1
    "mid-epoch": ("plain", dict(), Fault(0, 1, 5)),
    # step 2: before the first checkpoint, so from the starting weights; the killed cell
    # owns the Parallel layer, whose branch actors are restarted with it
    "before-checkpoint": ("branches", BRANCHES, Fault(1, 0, 2)),
    # a silent actor: the wait times out, and the restart kills it
    "timeout": ("plain", dict(timeout_s=8.0), Fault(1, 1, 3, hang=True)),
}
_REFS: dict = {}  # uninterrupted runs, one per reference


@pytest.mark.parametrize("name", list(KILLS))
def test_killed_cell_replays_to_identical_weights(ray_session, tmp_path, name):
    ref_name, kw, fault = KILLS[name]
    if ref_name not in _REFS:
        _REFS[ref_name] = ray_fit(tmp_path / "ref", **kw)
    ref, expected = _REFS[ref_name]
    net, got = ray_fit(tmp_path / "run", fault=fault, **kw)
    assert_close(net, ref, got, expected, exact=True)
    assert (tmp_path / "run" / "faults" / f"fault_{fault.row}_{fault.col}_{fault.step}"
            ).read_text() == "1"


# ----------------------------------------------- (b, c) resume on other plans and trainers
def test_ray_checkpoint_resumes_on_other_plan_and_on_local_trainer(ray_session, tmp_path):
    ref, expected = local_fit()
    with pytest.raises(Stop):
        ray_fit(tmp_path / "a", cfg=MOMENTUM, on_step=stop_at(5))
    assert latest_checkpoint(tmp_path / "a").name == "00000004"
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    net, got = ray_fit(tmp_path / "a", cfg=MOMENTUM, resume=True, schedule="1f1b",
                       plan=lambda net: Plan.balanced(net, 2, cost=BALANCED, replicas=2))
    assert_close(net, ref, got, expected)
    net, got = local_fit(tmp_path / "b", resume=True)
    assert_close(net, ref, got, expected)


def test_local_checkpoint_resumes_on_ray(ray_session, tmp_path):
    ref, expected = local_fit()
    with pytest.raises(Stop):
        local_fit(tmp_path, on_step=stop_at(3))
    assert latest_checkpoint(tmp_path).name == "00000002"
    net, got = ray_fit(tmp_path, cfg=MOMENTUM, resume=True,
                       plan=lambda net: Plan.balanced(net, 3, cost=[1, 1, 1, 1]))
    assert_close(net, ref, got, expected)


def test_cli_resume_with_ray_backend(ray_session, tmp_path):
    from pathlib import Path

    from click.testing import CliRunner

    from loomdist.cli import main
    example = Path(__file__).resolve().parents[2] / "examples" / "digits.toml"
    args = ["train", str(example), "--run-dir", str(tmp_path), "--run-id", "r", "--backend",
            "ray", "--batch-size", "256", "--checkpoint-every", "3"]
    assert CliRunner().invoke(main, [*args, "--epochs", "1"]).exit_code == 0
    res = CliRunner().invoke(main, [*args, "--epochs", "2", "--resume", "--plan", "balanced"])
    assert res.exit_code == 0, res.output
    assert latest_checkpoint(tmp_path / "r").name == "00000012"  # 6 steps per epoch


# ---------------------------------------------------------------------- (d) giving up
def test_exhausted_restarts_name_cell_and_step(ray_session, tmp_path):
    plan = lambda net: Plan.balanced(net, 2, cost=BALANCED)  # noqa: E731
    with pytest.raises(CellFailedError, match=r"cell \(1, 0\) failed at step 2: .*"
                                              r"gave up after 1 restarts") as err:
        ray_fit(tmp_path, plan=plan, fault=Fault(1, 0, 2, times=5), max_restarts=1)
    assert (err.value.row, err.value.col, err.value.step) == (1, 0, 2)
    assert (tmp_path / "faults" / "fault_1_0_2").read_text() == "2"


def test_errors_a_restart_cannot_fix_are_not_retried(ray_session, tmp_path):
    net, (x, t) = mixed_net(), data(10)
    with DistributedTrainer(net, ADAM, Plan.cells(net), run_dir=tmp_path) as dt:
        with pytest.raises(CellFailedError, match=r"cell \(0, 0\) failed at step 1") as err:
            dt.fit(x[:, :30], t)  # the conv2d of cell (0, 0) needs 32 features
    assert "gave up" not in str(err.value)


@pytest.mark.parametrize("method", ["weight_grads", "backward"])
def test_an_error_in_a_call_whose_result_nothing_reads_fails_the_step(ray_session, tmp_path,
                                                                      method):
    """ZB-H1's weight-gradient ticks and stage 0's backwards feed no later call; their
    errors must fail the step (not leave it with missing gradients)."""
    net, (x, t) = mixed_net(), data(10)
    fault = Fault(0, 0, 1, state_dir=str(tmp_path), raise_in=method)  # (0, 0): stage 0
    assert any(tk.stage == 0 and tk.op == "wgt" for tk in zero_bubble_h1(4, 3))
    with DistributedTrainer(net, ADAM, Plan.cells(net), "zbh1", 3, fault=fault) as dt:
        with pytest.raises(CellFailedError, match=rf"cell \(0, 0\) failed at step 1: .*"
                                                  rf"fault injected in {method}"):
            dt.step(x[:6], t[:6], 0.01)


@pytest.mark.parametrize("kw,match", [
    (dict(max_restarts=-1), "max_restarts must be an integer >= 0"),
    (dict(fault=Fault(0, 0, 1)), "a Fault needs a state_dir or a run_dir"),
])
def test_bad_recovery_settings(ray_session, kw, match):
    net = mixed_net()
    with pytest.raises(ConfigError, match=match):
        DistributedTrainer(net, ADAM, Plan.cells(net), **kw)


@pytest.mark.parametrize("args,match", [
    ((0, 0, 0), "step must be an integer >= 1"),
    ((-1, 0, 1), "row must be an integer >= 0"),
    ((0, 0, 1, True), "times must be an integer >= 1"),
    ((0, 0, 1, 1, None, False, "forward"), "raise_in must be one of"),
])
def test_bad_faults(args, match):
    with pytest.raises(ConfigError, match=match):
        Fault(*args)


def test_local_cells_load_a_checkpoint_without_ray(tmp_path):
    """Cell.load is the same code on a plain object: it restores weights, slots and t."""
    from loomdist.actors.cell import Cell
    ref, _ = local_fit(tmp_path, cfg=ADAM)
    net = mixed_net(seed=7)
    cell = Cell([(i, net.coords(i), net.layers[i]) for i in range(8)], ADAM.optim_config())
    cell.load(str(latest_checkpoint(tmp_path)), 6)
    assert cell.opt.state["t"] == 6 and cell.opt.state["slots"]
    for k, (w, slots) in cell.state().items():
        np.testing.assert_array_equal(w, ref.param(k), err_msg=str(k))
        assert len(slots) == 2
