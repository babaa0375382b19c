"""StepState.step_backward's fast path (direct layer backward, cached gradient-scaling plans,
in-place softmax scaling) is bit-identical to the straightforward reference: the engine's
walk_backward per layer with step_grad.scale_layer_grads, as step_backward was first written."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest

from loomdist.engine import add_grads, walk_backward
from loomdist.layers import LAYERS
from loomdist.tween import StepState
from loomdist.tween.assess.nets import t17_net
from loomdist.tween.step import _softmax_scale, _whole_array_plan
from loomdist.tween.step_grad import scale_layer_grads, softmax_scale
from tests.cases import CASES
from tests.tween.step_nets import grid_net, inputs, net_around, residual_net


def reference_backward(state: StepState, dy, grad_scaling: bool, d_res=None):
    """The reference: walk_backward on every layer's walk of the last tick, last to first;
    with grad_scaling each layer's fresh gradients go through scale_layer_grads."""
    return reference_span(state, dy, grad_scaling, d_res)[0]


def reference_span(state: StepState, dy, grad_scaling: bool, d_res=None):
    """reference_backward's (dL/d buffer 0, dL/d incoming residual), as span_backward."""
    out = state._walks[-1].output
    g = np.asarray(dy, out.dtype).reshape(out.shape)
    d_res = None if state.loom_residuals else d_res
    for walk in reversed(state._walks):
        slot = walk.tape[0].slot
        kept, slot.grads = slot.grads, {}
        g, d_res = walk_backward(walk, g, d_res)
        fresh, slot.grads = slot.grads, kept
        add_grads(slot, scale_layer_grads(slot.module, slot.spec, fresh) if grad_scaling
                  else fresh)
        d_res = None if state.loom_residuals else d_res
    return g, d_res


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def _assert_same(net_a, net_b, what: str) -> None:
    for sa, sb in zip(net_a.layers, net_b.layers):
        for store in ("params", "grads"):
            da, db = getattr(sa, store), getattr(sb, store)
            assert list(da) == list(db), f"{what}: {store} names differ"
            for name in da:
                assert _bits(da[name]) == _bits(db[name]), f"{what}: {store}[{name}] differs"


def _train_both(net, ticks: int, loom: bool, grad_scaling: bool, lr: float = 0.02) -> None:
    """Step+BP on `net` (fast path) and on a copy (reference), compared after every tick;
    two backwards per tick check that gradients accumulate identically too."""
    ref_net = copy.deepcopy(net)
    fast, ref = StepState(net, loom), StepState(ref_net, loom)
    rng = np.random.default_rng(3)
    for t, x in enumerate(inputs(net, ticks, seed=7)):
        for state in (fast, ref):
            state.set_input(x)
            state.step_forward()
        assert _bits(fast.output()) == _bits(ref.output()), f"tick {t}: outputs differ"
        for _ in range(2):
            dy = rng.standard_normal(fast.output().shape).astype(fast.output().dtype)
            dx_fast = fast.step_backward(dy, grad_scaling)
            dx_ref = reference_backward(ref, dy, grad_scaling).reshape(dx_fast.shape)
            assert _bits(dx_fast) == _bits(dx_ref), f"tick {t}: input gradients differ"
        _assert_same(net, ref_net, f"tick {t} before apply")
        fast.apply_gradients(lr)
        ref.apply_gradients(lr)
        _assert_same(net, ref_net, f"tick {t} after apply")


@pytest.mark.parametrize("grad_scaling", [True, False])
def test_test17_network_100_ticks_bit_identical(grad_scaling):
    _train_both(t17_net(np.random.default_rng(17)), 100, True, grad_scaling)


@pytest.mark.parametrize("loom", [True, False])
def test_residual_network_bit_identical(loom):
    # LayerNorm / RMSNorm / MHA / SwiGLU residuals take walk_backward's general path
    _train_both(residual_net(batch=2), 30, loom, grad_scaling=True)


def _pass_through_net():
    """MHA's residual passes through two dense layers to a LayerNorm that adds it."""
    L, d = LAYERS, LAYERS["dense"].Spec
    specs = [d(3, 8, "tanh"), L["multi_head_attention"].Spec(4, 2), d(8, 8, "tanh"),
             d(8, 8, "tanh"), L["layer_norm"].Spec(8), d(8, 2, "sigmoid")]
    return grid_net(specs, (1, 6, 1), 2, 0)


def _chain_backward(states, dy, backward):
    """Backward through the spans, last to first: (dL/dx, residual gradient each received)."""
    g, d_res, received = dy, None, []
    for state in reversed(states):
        received.append(d_res)
        g, d_res = backward(state, g, d_res)
    return g, received[::-1]


def test_spans_with_a_travelling_residual_bit_identical():
    # loom_residuals=False in three spans: the last hands a residual gradient back through
    # the pure-dense middle span, where it passes layers that add no residual
    net = _pass_through_net()
    ref_net = copy.deepcopy(net)
    spans = [[StepState(n, False, span=(k, k + 2)) for k in (0, 2, 4)] for n in (net, ref_net)]
    rng, passed = np.random.default_rng(4), 0
    for t, x in enumerate(inputs(net, 15, seed=8)):
        for chain in spans:
            prevs = [(c.layer_data()[-1], c.residual_out()) for c in chain[:-1]]
            chain[0].set_input(x)
            for c, prev in zip(chain[1:], prevs):
                c.set_input(*prev)
            for c in chain:
                c.step_forward()
        dy = rng.standard_normal(spans[0][-1].layer_data()[-1].shape).astype(np.float32)
        got = _chain_backward(spans[0], dy, lambda s, g, r: s.span_backward(g, r, True))
        want = _chain_backward(spans[1], dy, lambda s, g, r: reference_span(s, g, True, r))
        assert _bits(got[0]) == _bits(want[0]), f"tick {t}: input gradients differ"
        passed += got[1][1] is not None  # the middle span got a residual gradient
        assert all(a is None and b is None or _bits(a) == _bits(b)
                   for a, b in zip(got[1], want[1]))
        _assert_same(net, ref_net, f"tick {t}")
        for state in spans[0] + spans[1]:
            state.apply_gradients(0.01)
    assert passed >= 10


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_layer_kind_bit_identical(case):
    _train_both(net_around(case), 12, False, grad_scaling=True, lr=1e-3)


def test_softmax_scale_in_place_is_bit_identical():
    rng = np.random.default_rng(0)
    for n in (0, 1, 4, 129, 4096):
        for scale in (1e-3, 1.0, 30.0):
            g = (rng.standard_normal(n) * scale).astype(np.float32)
            assert _bits(_softmax_scale(g)) == _bits(softmax_scale(g))
    g = rng.standard_normal(50)  # float64 gradients keep their dtype
    assert _softmax_scale(g).dtype == np.float64
    assert _bits(_softmax_scale(g)) == _bits(softmax_scale(g))


def test_scaling_plan_whole_arrays_or_concatenation():
    dense = t17_net(np.random.default_rng(0)).layers[0]
    grads = {k: np.ones_like(v) for k, v in dense.params.items()}
    assert _whole_array_plan(dense, grads) == frozenset(grads)
    mha = next(s for s in residual_net().layers if s.module.TYPE == "multi_head_attention")
    grads = {k: np.ones_like(v) for k, v in mha.params.items()}
    assert _whole_array_plan(mha, grads) is False  # LOOM concatenates Q, K, V, O


def test_mixed_dtype_gradients_take_the_concatenating_path():
    net = t17_net(np.random.default_rng(0))
    state, slot = StepState(net), net.layers[0]
    rng = np.random.default_rng(1)
    grads = {"kernel": rng.standard_normal(slot.params["kernel"].shape),
             "biases": rng.standard_normal(slot.params["biases"].shape).astype(np.float32)}
    want = scale_layer_grads(slot.module, slot.spec, grads)
    got = state._scale(slot, grads)
    assert {k: v.dtype for k, v in got.items()} == {k: v.dtype for k, v in want.items()}
    for k in want:
        assert _bits(got[k]) == _bits(want[k])
    assert state._scale(slot, {}) == {}


def test_unhashable_spec_is_planned_every_call():
    net = t17_net(np.random.default_rng(0))
    state, dense = StepState(net), net.layers[1]
    slot = SimpleNamespace(module=dense.module, spec=[dense.spec])  # a list cannot be hashed
    grads = {k: np.random.default_rng(2).standard_normal(v.shape).astype(v.dtype)
             for k, v in dense.params.items()}
    want = scale_layer_grads(dense.module, dense.spec, grads)
    for _ in range(2):
        got = state._scale(slot, grads)
        assert all(_bits(got[k]) == _bits(want[k]) for k in want)
    assert state._plans == {}
