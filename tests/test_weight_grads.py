"""Deferred weight gradients (backward_input + weight_grads) equal the plain backward, for
every case whose module has the pair; engine.WeightGradStash turns them into the same
gradients as per-micro-batch accumulation, in micro-batch order whatever the backward order,
also when some micro-batches are computed early (flush_micro, ZB-H1's idle ticks)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import loomdist
from loomdist.engine import WeightGradStash, backward_layer, walk_backward, walk_forward
from loomdist.layers import LAYERS, module_of
from loomdist.network import Layer
from tests.cases import CASES

SPLIT = [c for c in CASES if hasattr(module_of(c.spec), "backward_input")]
TOL = dict(rtol=1e-5, atol=1e-6)


def test_capability_is_a_pair_and_dense_has_it():
    for kind, m in LAYERS.items():
        assert hasattr(m, "backward_input") == hasattr(m, "weight_grads"), kind
    assert {c.kind for c in SPLIT} >= {"dense"}


def _setup(case, seed=7):
    module = module_of(case.spec)
    rng = np.random.default_rng(seed)
    params = {k: v + rng.normal(0, 0.1, v.shape).astype(v.dtype)
              for k, v in module.init(case.spec, rng).items()}
    x = case.input()
    y, _ = module.forward(case.spec, params, x)
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(np.float32)
    return module, params, x, dy


@pytest.mark.parametrize("case", SPLIT, ids=lambda c: c.name)
def test_one_micro_batch_is_bit_identical(case):
    module, params, x, dy = _setup(case)
    _, cache = module.forward(case.spec, params, x)
    dx, grads = module.backward(case.spec, params, cache, dy)
    _, cache = module.forward(case.spec, params, x)
    dx2, wcache = module.backward_input(case.spec, params, cache, dy)
    grads2 = module.weight_grads(case.spec, params, [wcache])
    np.testing.assert_array_equal(dx2, dx)
    _, cache = module.forward(case.spec, params, x)
    none, wcache3 = module.backward_input(case.spec, params, cache, dy, need_dx=False)
    assert none is None  # dL/dx skipped, the weight cache kept
    grads3 = module.weight_grads(case.spec, params, [wcache3])
    assert set(grads2) == set(grads) == set(grads3)
    for k in grads:
        np.testing.assert_array_equal(grads2[k], grads[k], err_msg=k)
        np.testing.assert_array_equal(grads3[k], grads[k], err_msg=k)


@pytest.mark.parametrize("case", SPLIT, ids=lambda c: c.name)
def test_deferred_over_micro_batches_equals_immediate(case):
    """Each row its own micro-batch: dx per row and the summed weight gradients match the
    plain backward per micro-batch (accumulated) and on the whole batch."""
    module, params, x, dy = _setup(case)
    _, whole = module.backward(case.spec, params, module.forward(case.spec, params, x)[1], dy)
    acc, wcaches = {}, []
    for r in range(case.batch):
        xr, dyr = x[r:r + 1], dy[r:r + 1]
        dx, g = module.backward(case.spec, params, module.forward(case.spec, params, xr)[1],
                                dyr)
        dx2, wc = module.backward_input(case.spec, params,
                                        module.forward(case.spec, params, xr)[1], dyr)
        np.testing.assert_array_equal(dx2, dx)
        wcaches.append(wc)
        acc = {k: g[k] + acc[k] if k in acc else g[k] for k in g}
    deferred = module.weight_grads(case.spec, params, wcaches)
    assert set(deferred) == set(acc) == set(whole)
    mixes = getattr(module, "mixes_batch", lambda s: False)(case.spec)
    for k in whole:
        np.testing.assert_allclose(deferred[k], acc[k], **TOL, err_msg=k)
        if not mixes:  # e.g. concat: one row alone is not its row of the whole batch
            np.testing.assert_allclose(deferred[k], whole[k], **TOL, err_msg=k)


def _net():
    """dense, lstm (no split backward), dense: deferred and immediate layers in one walk."""
    L = LAYERS
    net = loomdist.Network(0, 1, 1, 3)
    for i, s in enumerate([L["dense"].Spec(6, 9, "tanh"), L["lstm"].Spec(3, 3, 3),
                           L["dense"].Spec(9, 4, "sigmoid")]):
        net.set_layer(0, 0, i, s, rng=i)
    return net


def _micro_steps(net, x, dy, order, stash):
    for mb in order:
        rows = slice(2 * mb, 2 * mb + 2)
        walk = walk_forward(net.layers, x[rows])
        walk_backward(walk, dy[rows], defer=stash.defer_for(mb) if stash else None)
    if stash:
        stash.flush()
    return {k: g.copy() for k, g in net.gradients()}


def test_stash_equals_immediate_accumulation_in_any_backward_order():
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((6, 6)).astype(np.float32), rng.standard_normal(
        (6, 4)).astype(np.float32)
    net = _net()
    immediate = _micro_steps(copy.deepcopy(net), x, dy, [0, 1, 2], None)
    forward = _micro_steps(copy.deepcopy(net), x, dy, [0, 1, 2], WeightGradStash())
    backward = _micro_steps(copy.deepcopy(net), x, dy, [2, 0, 1], WeightGradStash())
    assert set(forward) == set(immediate) == set(backward)
    for k, g in immediate.items():
        np.testing.assert_allclose(forward[k], g, **TOL, err_msg=str(k))
        if k[2] != 1:  # the dense layers (lstm's grads accumulate in backward order)
            np.testing.assert_array_equal(backward[k], forward[k], err_msg=str(k))


def test_flush_adds_to_existing_grads_and_clear_drops_the_stash():
    case = SPLIT[0]
    module, params, x, dy = _setup(case)
    slot = Layer(case.spec, params)
    stash = WeightGradStash()
    dx = backward_layer(slot, module.forward(case.spec, params, x)[1], dy, stash.defer_for(0))
    assert slot.grads == {}
    stash.flush()
    once = {k: g.copy() for k, g in slot.grads.items()}
    backward_layer(slot, module.forward(case.spec, params, x)[1], dy, stash.defer_for(0))
    stash.clear()
    stash.flush()
    for k, g in once.items():
        np.testing.assert_array_equal(slot.grads[k], g)
    backward_layer(slot, module.forward(case.spec, params, x)[1], dy)  # no defer: at once
    for k, g in once.items():
        np.testing.assert_allclose(slot.grads[k], 2 * g, **TOL)
    np.testing.assert_array_equal(dx, module.backward(case.spec, params, module.forward(
        case.spec, params, x)[1], dy)[0])


def test_flush_micro_then_flush_equals_one_flush():
    """ZB-H1's "wgt" ticks: some micro-batches' weight gradients early (flush_micro), the rest
    together (flush); the same gradients as one flush, and nothing computed twice."""
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((6, 6)).astype(np.float32), rng.standard_normal(
        (6, 4)).astype(np.float32)
    net = _net()
    whole = _micro_steps(copy.deepcopy(net), x, dy, [0, 1, 2], WeightGradStash())
    first = _micro_steps(copy.deepcopy(net), x, dy, [0], WeightGradStash())
    split_net, stash = copy.deepcopy(net), WeightGradStash()
    for mb in (0, 1, 2):
        rows = slice(2 * mb, 2 * mb + 2)
        walk_backward(walk_forward(split_net.layers, x[rows]), dy[rows],
                      defer=stash.defer_for(mb))
        if mb == 1:
            stash.flush_micro(0)  # after micro-batch 1's backward, in an idle tick
            stash.flush_micro(0)  # done already: adds nothing
            for lay in (0, 2):  # the dense layers now hold micro-batch 0's alone
                np.testing.assert_array_equal(split_net.layers[lay].grads["kernel"],
                                              first[(0, 0, lay, "kernel")])
    stash.flush_micro(5)  # a micro-batch with nothing stashed
    stash.flush()
    stash.flush()  # emptied: adds nothing
    got = {k: g.copy() for k, g in split_net.gradients()}
    assert set(got) == set(whole)
    for k, g in whole.items():
        np.testing.assert_allclose(got[k], g, **TOL, err_msg=str(k))


def test_flush_after_every_micro_batch_was_flushed_early_adds_nothing():
    case = SPLIT[0]
    module, params, x, dy = _setup(case)
    slot, stash = Layer(case.spec, params), WeightGradStash()
    backward_layer(slot, module.forward(case.spec, params, x)[1], dy, stash.defer_for(0))
    stash.flush_micro(0)
    once = {k: g.copy() for k, g in slot.grads.items()}
    assert once
    stash.flush()  # no layer is left with an empty list of micro-batches to compute
    for k, g in once.items():
        np.testing.assert_array_equal(slot.grads[k], g)


# ------------------------------------------------ input gradients nobody reads (need_dx)
class _Spy:
    """A grid slot whose module records every backward_input's need_dx and every backward."""

    def __init__(self, slot, calls):
        self._slot, self._calls = slot, calls
        self.spec, self.params = slot.spec, slot.params

    grads = property(lambda self: self._slot.grads,
                     lambda self, v: setattr(self._slot, "grads", v))
    module = property(lambda self: self)

    def __getattr__(self, name):  # backward_input only where the module has it
        real = getattr(self._slot.module, name)
        if name != "backward_input":
            return real

        def backward_input(spec, params, cache, dy, need_dx=True):
            self._calls.append((spec.kind, need_dx))
            return real(spec, params, cache, dy, need_dx=need_dx)
        return backward_input

    def backward(self, spec, params, cache, dy):
        self._calls.append((spec.kind, "backward"))
        return self._slot.module.backward(spec, params, cache, dy)


def _spied(net, x, calls):
    walk = walk_forward(net.layers, x)
    from dataclasses import replace
    walk.tape = [replace(e, slot=_Spy(e.slot, calls)) for e in walk.tape]
    return walk


@pytest.mark.parametrize("deferred", [False, True], ids=["immediate", "deferred"])
def test_a_walk_whose_input_gradient_nobody_reads_skips_only_the_first_layers_dx(deferred):
    """need_input=False: the first layer (dense) is asked for no dx, every other layer is;
    the gradients are bit-identical to the walk that computes dL/dx, deferred or not."""
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal(
        (4, 4)).astype(np.float32)
    got = {}
    for need_input in (True, False):
        net, calls = _net(), []
        stash = WeightGradStash() if deferred else None
        dx, dres = walk_backward(_spied(net, x, calls), dy, need_input=need_input,
                                 defer=stash.defer_for(0) if stash else None)
        if stash:
            stash.flush()
        got[need_input] = {k: g.copy() for k, g in net.gradients()}
        if need_input:
            assert dx.shape == x.shape
        else:
            assert (dx, dres) == (None, None)
            last = ("dense", True) if deferred else ("dense", "backward")
            assert calls == [last, ("lstm", "backward"), ("dense", False)]
    assert set(got[True]) == set(got[False])
    for k, g in got[True].items():
        np.testing.assert_array_equal(got[False][k], g, err_msg=str(k))


def test_a_first_layer_without_the_split_computes_its_dx_and_drops_it():
    L, calls = LAYERS, []
    net = loomdist.Network(0, 1, 1, 2)
    net.set_layer(0, 0, 0, L["lstm"].Spec(3, 2, 3), rng=0)
    net.set_layer(0, 0, 1, L["dense"].Spec(6, 4, "tanh"), rng=1)
    x = np.random.default_rng(0).standard_normal((2, 9)).astype(np.float32)
    dy = np.ones((2, 4), np.float32)
    assert walk_backward(_spied(net, x, calls), dy, need_input=False) == (None, None)
    assert calls == [("dense", "backward"), ("lstm", "backward")]
    assert set(net.layers[0].grads) == set(net.layers[0].params)


def test_network_backward_without_input_grad_returns_none_and_the_same_gradients():
    rng = np.random.default_rng(5)
    x, dy = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal(
        (4, 4)).astype(np.float32)
    grads = {}
    for input_grad in (True, False):
        net = _net()
        net.forward(x)
        out = net.backward(dy, input_grad=input_grad)
        assert (out is None) == (not input_grad)
        grads[input_grad] = {k: g.copy() for k, g in net.gradients()}
    for k, g in grads[True].items():
        np.testing.assert_array_equal(grads[False][k], g, err_msg=str(k))


def test_the_first_stage_asks_its_first_layer_for_no_input_gradient(dense_need_dx):
    """Cell.backward(keep_dx=False) (the pipeline's first stage): None comes back, the
    first dense layer is asked for no dx, and the gradients equal keep_dx=True's."""
    from loomdist.actors.cell import Cell
    from loomdist.layers import dense
    from loomdist.optim import OptimConfig
    rng = np.random.default_rng(2)
    specs = [dense.Spec(6, 5, "tanh"), dense.Spec(5, 3, "relu")]
    entries = [(i, (0, 0, i), Layer(s, dense.init(s, rng))) for i, s in enumerate(specs)]
    x, dy = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal(
        (4, 3)).astype(np.float32)
    grads = {}
    for keep in (True, False):
        dense_need_dx.clear()
        cell = Cell(entries, OptimConfig())
        cell.begin_step(1)
        cell.forward(0, x)
        out = cell.backward(0, dy, None, keep_dx=keep)
        assert (out is None) == (not keep)
        assert dense_need_dx == [(5, True), (6, keep)]
        grads[keep] = cell.grads()
    for k, g in grads[True].items():
        np.testing.assert_array_equal(grads[False][k], g, err_msg=str(k))


def _residual_net(order):
    """Walks through LOOM's residual modes: mha (post_add), rms_norm (store_input),
    swiglu (post_add), layer_norm (pre_add), each on 8 features per sample."""
    L = LAYERS
    make = {"mha": lambda: L["multi_head_attention"].Spec(4, 2),
            "rms": lambda: L["rms_norm"].Spec(8), "ln": lambda: L["layer_norm"].Spec(8),
            "swiglu": lambda: L["swiglu"].Spec(8, 6), "dense": lambda: L["dense"].Spec(8, 8)}
    net = loomdist.Network(0, 1, 1, len(order))
    for i, name in enumerate(order):
        net.set_layer(0, 0, i, make[name](), rng=i)
    return net


@pytest.mark.parametrize("order", [("mha", "rms", "swiglu"), ("rms", "mha", "dense"),
                                   ("ln", "dense", "mha"), ("swiglu", "ln", "dense")],
                         ids="-".join)
@pytest.mark.parametrize("deferred", [False, True], ids=["immediate", "deferred"])
@pytest.mark.parametrize("residual_in", [False, True], ids=["first", "later-stage"])
def test_dropping_the_input_gradient_changes_no_gradient_through_residuals(order, deferred,
                                                                           residual_in):
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((3, 8)).astype(np.float32), rng.standard_normal(
        (3, 8)).astype(np.float32)
    res = rng.standard_normal((3, 8)).astype(np.float32) if residual_in else None
    got = {}
    for need_input in (True, False):
        net, stash = _residual_net(order), WeightGradStash() if deferred else None
        walk = walk_forward(net.layers, x, res)
        d_res = np.ones_like(walk.residual_out) if walk.residual_out is not None else None
        out = walk_backward(walk, dy, d_res, defer=stash.defer_for(0) if stash else None,
                            need_input=need_input)
        if need_input:
            assert out[0].shape == x.shape
        else:
            assert out == (None, None)
        if stash:
            stash.flush()
        got[need_input] = {k: g.copy() for k, g in net.gradients()}
    assert got[True].keys() == got[False].keys()
    for k, g in got[True].items():
        np.testing.assert_array_equal(got[False][k], g, err_msg=str(k))


@pytest.mark.parametrize("fanned", [True, False], ids=["branch-actors", "in-process"])
@pytest.mark.parametrize("defer", [True, False], ids=["deferred", "immediate"])
def test_branches_of_an_opening_parallel_layer_compute_no_input_gradient(dense_need_dx,
                                                                         defer, fanned):
    """The first stage opens with a Parallel layer, fanned out to two Branch objects or
    run by the cell itself (parallel.backward_input): keep_dx=False asks every branch for no
    dx (with branch actors, None comes back over the transport) and the gradients, the
    branches' included, equal keep_dx=True's."""
    from loomdist.actors.branch import Branch
    from loomdist.actors.cell import Cell
    from loomdist.layers import dense, parallel
    from loomdist.optim import OptimConfig
    rng = np.random.default_rng(6)
    par = parallel.Spec((dense.Spec(6, 4, "tanh"), dense.Spec(6, 4, "sigmoid")), "concat")
    specs = [par, dense.Spec(8, 3, "relu")]
    layers = [Layer(s, module_of(s).init(s, rng)) for s in specs]
    x, dy = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal(
        (4, 3)).astype(np.float32)
    grads = {}
    for keep in (True, False):
        dense_need_dx.clear()
        branches = ({0: [(Branch((0, 0, 0), layers[0], [i], OptimConfig(), defer), [i])
                         for i in (0, 1)]} if fanned else None)
        cell = Cell([(i, (0, 0, i), s) for i, s in enumerate(layers)], OptimConfig(),
                    branches=branches, defer=defer)
        cell.begin_step(1)
        cell.forward(0, x)
        assert (cell.backward(0, dy, None, keep_dx=keep) is None) == (not keep)
        assert [a for a in dense_need_dx if a[0] == 6] == [(6, keep)] * 2
        grads[keep] = cell.grads()
    assert len(grads[True]) == 6  # the dense layer's 2, each branch's 2
    for k, g in grads[True].items():
        np.testing.assert_array_equal(grads[False][k], g, err_msg=str(k))


def test_a_parallel_layer_without_split_branches_takes_the_plain_backward():
    """Nothing to defer (lstm and layer_norm branches): backward_layer computes the
    gradients at once instead of stashing a gradient dict per micro-batch; with one dense
    branch beside them the layer defers."""
    from loomdist.layers import parallel
    L = LAYERS
    plain = parallel.Spec((L["lstm"].Spec(3, 3, 2), L["layer_norm"].Spec(6)), "add")
    mixed = parallel.Spec(plain.branches + (L["dense"].Spec(6, 6, "tanh"),), "add")
    nested = parallel.Spec((plain, L["rnn"].Spec(3, 3, 2)), "add")
    assert (parallel.splits(plain), parallel.splits(mixed), parallel.splits(nested)) == (
        False, True, False)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6)).astype(np.float32)
    for spec, defers in ((plain, False), (mixed, True)):
        slot = Layer(spec, parallel.init(spec, rng))
        y, cache = parallel.forward(spec, slot.params, x)
        stashed = []
        dx = backward_layer(slot, cache, np.ones_like(y), lambda s, w, out=stashed: out.append(w))
        assert (len(stashed) == 1) == defers and bool(slot.grads) != defers
        ref_dx, ref = parallel.backward(spec, slot.params, cache, np.ones_like(y))
        np.testing.assert_array_equal(dx, ref_dx)
        got = parallel.weight_grads(spec, slot.params, stashed) if defers else slot.grads
        assert set(got) == set(ref)
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    with pytest.raises(ValueError, match="at least one"):
        parallel.weight_grads(mixed, {}, [])
