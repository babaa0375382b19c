"""Cells on the wgpu backend (llvmpipe here): the distributed step with the cells' math on the
device equals the single-process CPU run (loss, gradients, updated weights); GPUs requested
from a GPU-less cluster, or wgpu without an adapter, fail before any actor starts."""

from __future__ import annotations

import copy

import click
import numpy as np
import pytest

import loomdist
from loomdist import driver
from loomdist.actors.branch import Branch
from loomdist.actors.cell import Cell
from loomdist.cli_train import make_ray_options
from loomdist.errors import ConfigError
from loomdist.kernels.gpu import device
from loomdist.layers import LAYERS
from loomdist.optim import Optimizer
from loomdist.plan import Plan
from loomdist.train import fused_softmax, train_step
from loomdist.train_config import TrainingConfig

pytest.importorskip("wgpu")
TOL = dict(rtol=1e-4, atol=1e-5)  # float32 on another device: other summation orders
CFG = TrainingConfig(learning_rate=0.05, optimizer="momentum", loss_type="mse", batch_size=4,
                     gradient_clip=0.5)


def residual_net(seed=0):
    """1x2 grid, 2 layers per cell; rms_norm's stored residual crosses into cell (0, 1)."""
    d, L = LAYERS["dense"].Spec, LAYERS
    net = loomdist.Network(0, 1, 2, 2)
    for i, s in enumerate([d(6, 8, "tanh"), L["rms_norm"].Spec(8), L["layer_norm"].Spec(8),
                           d(8, 3, "linear")]):
        net.set_layer(*net.coords(i), s, rng=seed + i)
    return net


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 6)).astype(np.float32),
            rng.standard_normal((n, 3)).astype(np.float32))


@pytest.mark.ray
@pytest.mark.parametrize("replicas", [1, 2])
def test_distributed_step_with_cells_on_wgpu_equals_cpu(ray_session, replicas):
    net, (x, t) = residual_net(), data(7)
    batches = [(x[:4], t[:4]), (x[4:], t[4:])]
    ref, opt = copy.deepcopy(net), Optimizer(CFG.optim_config())
    net.to("gpu")  # the driver's copy may live on the device too: actors get host layers
    plan = Plan.cells(net, replicas=replicas, backend="wgpu")  # no Ray GPUs: there are none
    with driver.DistributedTrainer(net, CFG, plan, microbatches=2) as dt:
        kinds = ray_session.get([c.__ray_call__.remote(lambda self: [p[0] for p in self.pieces])
                                 for c in dt.cells[0]])
        assert kinds == [["gpu"], ["gpu"]]  # every stage's walk is on the device
        for bx, bt in batches:
            loss, norm = dt.step(bx, bt, CFG.learning_rate)
            want_loss, want_norm = train_step(ref, opt, CFG, bx, bt, CFG.learning_rate)
            assert loss == pytest.approx(want_loss, rel=1e-5)
            assert norm == pytest.approx(want_norm, rel=1e-5)
            grads = dt.gradients()
            for k, g in ref.gradients():
                np.testing.assert_allclose(grads[k], g, **TOL, err_msg=str(k))
            got = dict(dt.network().parameters())
            for k, w in ref.parameters():
                np.testing.assert_allclose(got[k], w, **TOL, err_msg=str(k))


def branch_net(seed=0):
    """1x2 grid, 4 layers per cell; cell (0, 1) = layer_norm, parallel, dense, softmax."""
    d, L = LAYERS["dense"].Spec, LAYERS
    specs = [d(6, 8, "tanh"), L["rms_norm"].Spec(8), d(8, 8, "tanh"), d(8, 8, "tanh"),
             L["layer_norm"].Spec(8),
             L["parallel"].Spec((d(8, 6, "tanh"), d(8, 6, "sigmoid")), "add"),
             d(6, 3, "linear"), L["softmax"].Spec()]
    net = loomdist.Network(0, 1, 2, 4)
    for i, s in enumerate(specs):
        net.set_layer(*net.coords(i), s, rng=seed + i)
    return net


def run_cells(net, cfg, backend, x, t):
    """Two stages (the second split around branch objects), two micro-batches, one update;
    returns (loss, gradients before clipping, every parameter after the update)."""
    optim, par = cfg.optim_config(), 5
    branch = Branch(net.coords(par), net.layers[par], [0, 1], optim, False)
    first = Cell([(i, net.coords(i), net.layers[i]) for i in range(4)], optim, backend=backend)
    second = Cell([(i, net.coords(i), net.layers[i]) for i in range(4, 8)], optim,
                  (cfg.loss_type, fused_softmax(net, cfg)), {par: [(branch, [0, 1])]},
                  backend=backend)
    for c in (first, second):
        c.begin_step(1)
    loss = 0.0
    for mb, rows in enumerate((slice(0, 3), slice(3, 5))):
        y, res = first.forward(mb, x[rows])
        loss += second.forward_loss(mb, y, res, t[rows], (rows.stop - rows.start) / len(x))
    for mb in (1, 0):  # the first stage, as the driver calls it: no dL/dx wanted back
        assert first.backward(mb, *second.backward(mb), keep_dx=False) is None
    grads = {k: g.copy() for c in (first, second) for k, g in c.grads().items()}
    scale = cfg.gradient_clip / np.sqrt(first.grad_sq_norm() + second.grad_sq_norm())
    for c in (first, second):
        c.apply(cfg.learning_rate, min(1.0, scale))
    return loss, grads, {k: w.copy() for c in (first, second)
                         for k, (w, _) in c.full_state().items()}


def test_cells_on_wgpu_with_branches_and_fused_softmax_equal_cpu():
    """Plain objects (no Ray): GPU walk pieces around a branch piece, fused softmax-CE on the
    device, residual across the stage boundary, equal the same cells on the CPU."""
    cfg = TrainingConfig(learning_rate=0.05, optimizer="adam", loss_type="cross_entropy",
                         gradient_clip=0.5)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    t = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 5)]
    cpu, gpu = (run_cells(branch_net(), cfg, b, x, t) for b in ("cpu", "wgpu"))
    assert gpu[0] == pytest.approx(cpu[0], rel=1e-5)
    for a, b in ((cpu[1], gpu[1]), (cpu[2], gpu[2])):
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_allclose(b[k], a[k], **TOL, err_msg=str(k))


def test_gpu_cell_checkpoint_loads_into_cpu_and_gpu_cells(tmp_path):
    """A wgpu cell's checkpoint (weights + momentum slots read from the device) restores a
    CPU cell and a fresh wgpu cell to the same state."""
    net, (x, t) = residual_net(), data(3)
    entries = [(i, net.coords(i), net.layers[i]) for i in range(4)]
    cell = Cell(entries, CFG.optim_config(), ("mse", None), backend="wgpu")
    cell.begin_step(1)
    cell.forward_loss(0, x, None, t, 1.0)
    cell.backward(0)
    cell.apply(0.1)
    _, steps = cell.checkpoint(str(tmp_path))
    want = cell.full_state()
    assert steps == 1 and all(len(s) == 1 and np.any(s[0]) for _, s in want.values())
    after = []
    for backend in ("cpu", "wgpu"):
        other = Cell(entries, CFG.optim_config(), ("mse", None), backend=backend)
        other.load(str(tmp_path), steps)
        got = other.full_state()
        for k, (w, slots) in want.items():
            np.testing.assert_array_equal(got[k][0], w, err_msg=f"{backend} {k}")
            np.testing.assert_array_equal(got[k][1][0], slots[0], err_msg=f"{backend} {k}")
        other.begin_step(2)  # a step after the load: it reached the device
        other.forward_loss(0, x, None, t, 1.0)
        other.backward(0)
        other.apply(0.1)
        after.append(other.full_state())
    for k, (w, slots) in after[0].items():
        np.testing.assert_allclose(after[1][k][0], w, **TOL, err_msg=str(k))
        np.testing.assert_allclose(after[1][k][1][0], slots[0], **TOL, err_msg=str(k))


# ---------------------------------------------------------------- errors before actors
class _NoActors:
    @staticmethod
    def options(**kw):
        raise AssertionError(f"an actor was started ({kw})")


@pytest.mark.ray
def test_gpus_on_a_gpu_less_cluster_fail_before_actors(ray_session, monkeypatch):
    monkeypatch.setattr(driver, "CellActor", _NoActors)
    monkeypatch.setattr(driver, "BranchActor", _NoActors)
    net = residual_net()
    with pytest.raises(ConfigError, match=r"2 cell actors x 0.5 GPUs need 1 GPUs, the Ray "
                                          r"cluster has 0; start Ray where the GPUs are"):
        driver.RayOptions(gpus_per_actor=0.5).trainer(net, CFG)
    with pytest.raises(ConfigError, match=r"4 cell actors x 1 GPUs need 4 GPUs.*"
                                          r"--gpus-per-actor 0 --cell-backend wgpu"):
        driver.DistributedTrainer(net, CFG, Plan.cells(net, num_gpus=1, replicas=2))
    monkeypatch.setattr(driver.ray, "cluster_resources", lambda: {"CPU": 2.0, "GPU": 1.0})
    with pytest.raises(ConfigError, match=r"2 cell actors x 1 GPUs need 2 GPUs, the Ray "
                                          r"cluster has 1; use --gpus-per-actor \(Plan.num_gpus"
                                          r"\) of at most 0.5"):
        driver.DistributedTrainer(net, CFG, Plan.cells(net, num_gpus=1))


@pytest.mark.ray
def test_wgpu_without_an_adapter_fails_before_actors(ray_session, monkeypatch):
    monkeypatch.setattr(driver, "CellActor", _NoActors)
    monkeypatch.setattr(device, "_request_adapter", lambda: None)
    monkeypatch.setattr(device, "get_device", device.get_device.__wrapped__)  # uncached
    net = residual_net()
    with pytest.raises(ConfigError, match=r"the cells' backend is wgpu, but kernels.gpu."
                                          r"get_device: no wgpu adapter found"):
        driver.DistributedTrainer(net, CFG, Plan.cells(net, backend="gpu"))


def test_plan_gpu_fields():
    net = residual_net()
    assert Plan.cells(net).cell_backend == "cpu"
    assert Plan.cells(net, num_gpus=0.25).cell_backend == "wgpu"
    assert Plan.cells(net, num_gpus=2, backend="gpu").cell_backend == "wgpu"
    with pytest.raises(ConfigError, match=r"num_gpus must be 0, a fraction below 1 or a whole "
                                          r"number \(got 1.5\)"):
        Plan.cells(net, num_gpus=1.5)
    with pytest.raises(ConfigError, match="unknown backend 'tpu'"):
        Plan.cells(net, backend="tpu")
    with pytest.raises(ConfigError, match="num_gpus=1 with backend 'cpu' reserves GPUs"):
        Plan.cells(net, num_gpus=1, backend="cpu")
    with pytest.raises(ConfigError, match="Cell: unknown backend 'tpu'"):
        Cell([(0, net.coords(0), net.layers[0])], CFG.optim_config(), backend="tpu")


def test_cli_gpu_options_map_to_ray_options():
    opts = make_ray_options("ray", gpus_per_actor=0.5, cell_backend="wgpu")
    plan = opts.make_plan(residual_net())
    assert (plan.num_gpus, plan.cell_backend) == (0.5, "wgpu")
    with pytest.raises(click.UsageError, match="use them with --backend ray"):
        make_ray_options("local", gpus_per_actor=1.0, cell_backend=None)
