"""Transparency: the pipeline on Ray actors equals the single-process train_step (loss,
every gradient, updated weights) for every schedule, plan, branch placement and replica count;
bad plans fail before any actor starts."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import loomdist
from loomdist.actors.branch import Branch
from loomdist.actors.cell import Cell
from loomdist.errors import CellFailedError, ConfigError, ShapeError
from loomdist.layers import LAYERS
from loomdist.optim import Optimizer
from loomdist.plan import Plan
from loomdist.train import Trainer, train_step
from loomdist.train_config import TrainingConfig

pytestmark = pytest.mark.ray
TOL = dict(rtol=1e-5, atol=1e-6)
# Not Adam here: it divides by sqrt(v), so gradients that are rounding noise (MHA's k_bias
# has a true gradient of 0) become +-lr steps; momentum keeps updates proportional.
WTOL = dict(rtol=1e-5, atol=2e-6)
PARALLEL = 4  # flat index of the Parallel layer


def mixed_net(seed=0):
    """2x2 grid, 2 layers per cell: conv2d, dense, lstm, mha, parallel, dense, dense, softmax."""
    L = LAYERS
    d = L["dense"].Spec
    specs = [L["conv2d"].Spec(4, 4, 2, 2, 3, 1, 1, "tanh"), d(32, 24, "tanh"),
             L["lstm"].Spec(8, 8, 3), L["multi_head_attention"].Spec(8, 2, 3),
             L["parallel"].Spec((d(24, 12, "tanh"), d(24, 12, "sigmoid"),
                                 L["lstm"].Spec(8, 4, 3)), "add"),
             d(12, 8, "tanh"), d(8, 4, "linear"), L["softmax"].Spec()]
    net = loomdist.Network(0, 2, 2, 2)
    for i, s in enumerate(specs):
        net.set_layer(*net.coords(i), s, rng=seed + i)
    return net


def data(n=14, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 32)).astype(np.float32)
    return x, np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]


CFG = TrainingConfig(epochs=2, learning_rate=0.05, optimizer="momentum", loss_type="cross_entropy",
                     batch_size=6, gradient_clip=0.5)


def plan_for(name, branch, replicas, net):
    kw = dict(replicas=replicas, branch_actors=(PARALLEL,) if branch else ())
    if name == "cells":
        return Plan.cells(net, **kw)
    return Plan.balanced(net, 2, cost=[1.0, 3.0, 2.0, 1.0], **kw)


def local_steps(net, cfg, batches):
    opt, out = Optimizer(cfg.optim_config()), []
    for x, t in batches:
        loss, norm = train_step(net, opt, cfg, x, t, cfg.learning_rate)
        out.append((loss, norm, {k: g.copy() for k, g in net.gradients()},
                    {k: w.copy() for k, w in net.parameters()}))
    return out


def assert_same(dist, ref):
    loss, norm, grads, weights = ref
    assert dist[0] == pytest.approx(loss, rel=1e-5) and dist[1] == pytest.approx(norm, rel=1e-5)
    assert set(dist[2]) == set(grads)
    for k, g in grads.items():
        np.testing.assert_allclose(dist[2][k], g, **TOL, err_msg=str(k))
    for k, w in weights.items():
        np.testing.assert_allclose(dist[3][k], w, **WTOL, err_msg=str(k))


MATRIX = [(s, p, b, r) for s in ("gpipe", "1f1b") for p in ("cells", "balanced")
          for b in (False, True) for r in (1, 2)]
# ZB-H1: weight gradients of some micro-batches in idle ticks (on branch actors too)
MATRIX += [("zbh1", p, b, 1) for p in ("cells", "balanced") for b in (False, True)]
MATRIX += [("zbh1", "cells", True, 2)]


@pytest.mark.parametrize("schedule,plan,branch,replicas", MATRIX)
def test_pipeline_equals_single_process(ray_session, schedule, plan, branch, replicas):
    net, (x, t) = mixed_net(), data()
    batches = [(x[:6], t[:6]), (x[6:13], t[6:13]), (x[13:], t[13:])]  # 7 rows, 1 row
    ref = local_steps(copy.deepcopy(net), CFG, batches)
    with loomdist_trainer(net, plan_for(plan, branch, replicas, net), schedule) as dt:
        for (bx, bt), r in zip(batches, ref):
            loss, norm = dt.step(bx, bt, CFG.learning_rate)
            weights = {k: w.copy() for k, w in dt.network().parameters()}
            assert_same((loss, norm, dt.gradients(), weights), r)


def loomdist_trainer(net, plan, schedule="gpipe", micro=3, cfg=CFG, **kw):
    from loomdist.driver import DistributedTrainer
    return DistributedTrainer(net, cfg, plan, schedule=schedule, microbatches=micro, **kw)


def test_fit_equals_trainer_fit_with_mse(ray_session, tmp_path):
    cfg = TrainingConfig(epochs=2, learning_rate=0.02, optimizer="momentum", batch_size=5,
                         lr_schedule="cosine", loss_type="mse")
    net, (x, t) = mixed_net(seed=3), data(11, seed=1)
    local = copy.deepcopy(net)
    expected = Trainer(local, cfg).fit(x, t)
    with loomdist_trainer(net, Plan.balanced(net, 3, cost=[1, 1, 1, 1]), "1f1b", 2, cfg,
                          run_dir=tmp_path) as dt:
        got = dt.fit(x, t)
    np.testing.assert_allclose(got.loss_history, expected.loss_history, rtol=1e-5)
    for k, w in local.parameters():
        np.testing.assert_allclose(net.param(k), w, **TOL, err_msg=str(k))
    ckpt = loomdist.io.checkpoint.latest_checkpoint(tmp_path)
    restored = mixed_net(seed=9)
    loomdist.io.checkpoint.load_checkpoint(ckpt, restored, None)
    for k, w in local.parameters():
        np.testing.assert_allclose(restored.param(k), w, **TOL, err_msg=str(k))


@pytest.mark.parametrize("defer", [True, False])
def test_cell_and_branch_run_without_ray(defer):
    """The actor classes are plain objects too: two local stages, two micro-batches (weight
    gradients deferred or not, one micro-batch's computed early), equal the whole network."""
    net, (x, t) = mixed_net(), data(4)
    ref = copy.deepcopy(net)
    optim = CFG.optim_config()
    rcl, slot = net.coords(PARALLEL), net.layers[PARALLEL]
    branches = {PARALLEL: [(Branch(rcl, slot, [0, 2], optim, defer), [0, 2]),
                           (Branch(rcl, slot, [1], optim, defer), [1])]}
    first = Cell([(i, net.coords(i), net.layers[i]) for i in range(3)], optim, defer=defer)
    second = Cell([(i, net.coords(i), net.layers[i]) for i in range(3, 8)], optim,
                  ("cross_entropy", (1.0, None)), branches, defer=defer)
    for mb, rows in enumerate((slice(0, 3), slice(3, 4))):
        y, res = first.forward(mb, x[rows])
        second.forward_loss(mb, y, res, t[rows], (rows.stop - rows.start) / 4)
    for mb in (1, 0):
        dy, dres = second.backward(mb)
        assert first.backward(mb, dy, dres, False) is None  # stage 0: dL/dx not returned
        if mb == 1:  # ZB-H1's idle tick: micro-batch 1's weight gradients now (and the
            second.weight_grads(1)  # branch actors'); the rest at the norm
    assert (first.wstash is None) != defer
    train_step(ref, Optimizer(optim), CFG, x, t, 0.0)
    grads = {**first.grads(), **second.grads()}
    for h, _ in branches[PARALLEL]:
        grads.update(h.grads())
    clip = min(1.0, CFG.gradient_clip / np.sqrt(sum(float(np.sum(g * g))
                                                    for g in grads.values())))
    for k, g in ref.gradients():
        np.testing.assert_allclose(grads[k] * clip, g, **TOL, err_msg=str(k))


# ------------------------------------------------------------------ bad plans, failures
@pytest.mark.parametrize("plan,match", [
    (Plan(stages=(((0, 0), (0, 1)), ((1, 0), (2, 2)))), r"cells \[\(2, 2\)\] that are not"),
    (Plan(stages=(((0, 0),), ((1, 0),), ((0, 1),), ((1, 1),))), "in grid order"),
    (Plan(stages=(((0, 0), (0, 1), (1, 0)),)), "cover every cell once"),
    (Plan(stages=tuple(((0, 0),) for _ in range(5))), "5 stages for 4 cells"),
    (Plan.cells(mixed_net(), branch_actors=(3,)), "index 3 is not a Parallel layer"),
    (Plan.cells(mixed_net(), replicas=2, num_cpus=1.0), r"8 actors x 1 CPUs need 8 CPUs"),
])
def test_bad_plans_fail_before_actors(ray_session, plan, match):
    with pytest.raises(ConfigError, match=match):
        loomdist_trainer(mixed_net(), plan)
    assert not _actors(ray_session)


def test_unreachable_address_and_bad_options(ray_session):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    net = mixed_net()
    with pytest.raises(ConfigError, match=f"cannot reach a Ray cluster at '127.0.0.1:{port}'"):
        loomdist_trainer(net, Plan.cells(net), address=f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="unknown schedule 'zb'"):
        loomdist_trainer(net, Plan.cells(net), schedule="zb")
    with pytest.raises(ConfigError, match="microbatches must be an integer >= 1"):
        loomdist_trainer(net, Plan.cells(net), micro=0)
    assert not _actors(ray_session)


def test_batch_mixing_layer_refuses_micro_batches(ray_session):
    d = LAYERS["dense"].Spec
    net = loomdist.Network(0, 1, 1, 2)
    net.set_layer(0, 0, 0, LAYERS["parallel"].Spec((d(4, 2), d(4, 3)), "concat"), rng=0)
    net.set_layer(0, 0, 1, d(5, 2), rng=1)
    with pytest.raises(ConfigError, match=r"layers \[0\] mix samples"):
        loomdist_trainer(net, Plan.cells(net), micro=2)


def test_actor_failure_names_the_cell(ray_session):
    net, (x, t) = mixed_net(), data()
    with loomdist_trainer(net, Plan.cells(net), micro=2) as dt:
        with pytest.raises(CellFailedError, match=r"cell \(0, 0\) failed at step 1.*30") as err:
            dt.step(x[:, :30], t, 0.1)  # 30 features: the conv2d of cell (0, 0) needs 32
    assert err.value.step == 1


def _actors(ray) -> bool:
    """True while some actor still holds CPUs (killed actors free theirs within seconds)."""
    import time
    for _ in range(50):
        if ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"]:
            return False
        time.sleep(0.2)
    return True


def test_a_target_of_the_wrong_size_fails_before_any_call(ray_session):
    net, (x, t) = mixed_net(), data()
    with loomdist_trainer(net, Plan.cells(net), micro=2) as dt:
        with pytest.raises(ShapeError, match=r"DistributedTrainer.step: the target has "
                                             rf"{t.size - len(t)} values, the network's output "
                                             rf"has {t.size} \({len(t)} x {t.shape[1]}\)"):
            dt.step(x, t[:, 1:], 0.1)
        with pytest.raises(ShapeError, match=r"DistributedTrainer.step: x has shape \(448,\)"):
            dt.step(x.reshape(-1), t, 0.1)
        assert dt.step_no == 0
        dt.step(x, t, 0.1)  # the trainer is still usable
