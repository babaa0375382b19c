"""The fused Dense TweenStep (fastplan.py, jit_dense.fused_*) equals the generic path."""

import numpy as np
import pytest

from loomdist.layers import dense, layer_norm
from loomdist.network import Network
from loomdist.tween.fastplan import build_plan
from loomdist.tween.state import TweenState

ACTS = ("relu", "sigmoid", "tanh", "softplus", "leaky_relu", "linear")


def _net(specs, seed):
    rng = np.random.default_rng(seed)
    net = Network(specs[0].input_height if hasattr(specs[0], "input_height") else 8, 1, 1,
                  len(specs))
    for i, s in enumerate(specs):
        net.set_layer(0, 0, i, s, rng=rng)
    return net


def _dense_specs(sizes, acts):
    return [dense.Spec(sizes[i], sizes[i + 1], acts[i]) for i in range(len(sizes) - 1)]


def _run(specs, fused: bool, seed: int, steps: int = 50, out_size: int = 4):
    net = _net(specs, seed)
    ts = TweenState(net)
    ts.use_fused = fused
    rng = np.random.default_rng(seed + 1)
    n_in = net.layers[0].params["kernel"].shape[0] if "kernel" in net.layers[0].params else 8
    losses = [ts.tween_step(net, rng.uniform(-1, 1, n_in).astype(np.float32),
                            int(rng.integers(0, out_size)), out_size, 0.05)
              for _ in range(steps)]
    return net, ts, losses


def _assert_same(a, b):
    (na, ta, la), (nb, tb, lb) = a, b
    assert la == lb
    for sa, sb in zip(na.layers, nb.layers):
        for k in sa.params:
            np.testing.assert_array_equal(sa.params[k], sb.params[k])
    for va, vb in zip(ta.weight_vel, tb.weight_vel):
        if va is not None:
            np.testing.assert_array_equal(va, vb)
    for name in ("link_budgets", "gaps", "depth_barrier"):
        np.testing.assert_array_equal(getattr(ta, name), getattr(tb, name))
    for name in ("forward_acts", "chain_gradients", "backward_targets"):
        for u, v in zip(getattr(ta, name), getattr(tb, name)):
            np.testing.assert_array_equal(u, v)
    assert ta.explosion == tb.explosion and ta.tween_steps == tb.tween_steps


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("sizes", [(8, 4), (8, 16, 4), (8, 32, 64, 32, 4),
                                   (8, 32, 64, 64, 64, 32, 4)])
def test_fused_equals_generic_bit_for_bit(act, sizes):
    L = len(sizes) - 1
    acts = [act] * (L - 1) + ["sigmoid" if act != "sigmoid" else "tanh"]
    specs = _dense_specs(sizes, acts)
    fast, slow = _run(specs, True, 3), _run(specs, False, 3)
    assert fast[1]._fplan is not None and slow[1].__dict__.get("_fplan") is None
    _assert_same(fast, slow)


def test_mixed_activations_and_out_size_beyond_output():
    specs = _dense_specs((8, 12, 10, 6, 3), ["tanh", "relu", "softplus", "leaky_relu"])
    _assert_same(_run(specs, True, 7, out_size=5), _run(specs, False, 7, out_size=5))


def test_network_with_another_kind_takes_the_generic_path():
    specs = [dense.Spec(8, 8, "relu"), layer_norm.Spec(8), dense.Spec(8, 4, "sigmoid")]
    fast, slow = _run(specs, True, 5), _run(specs, False, 5)
    assert fast[1]._fplan is None
    _assert_same(fast, slow)


def test_plan_is_rebuilt_when_a_parameter_array_is_replaced():
    specs = _dense_specs((8, 16, 4), ["tanh", "sigmoid"])
    net, ts, _ = _run(specs, True, 1, steps=3)
    first = ts._fplan
    net.layers[0].params["kernel"] = net.layers[0].params["kernel"].copy()
    ts.tween_step(net, np.ones(8, np.float32), 1, 4, 0.05)
    assert ts._fplan is not first and ts._fplan.Ws[0] is not first.Ws[0]


def test_unfusable_velocity_or_layout_gives_no_plan():
    specs = _dense_specs((8, 16, 4), ["tanh", "sigmoid"])
    net = _net(specs, 0)
    ts = TweenState(net)
    assert build_plan(net, ts.weight_vel, 4, ts.config) is not None
    assert build_plan(net, [None, ts.weight_vel[1]], 4, ts.config) is None
    net.layers[1].params["kernel"] = np.asfortranarray(net.layers[1].params["kernel"])
    assert build_plan(net, ts.weight_vel, 4, ts.config) is None


def test_plan_follows_config_and_out_size_and_remembers_misses():
    specs = _dense_specs((8, 16, 4), ["tanh", "sigmoid"])
    net, ts, _ = _run(specs, True, 2, steps=2)
    first = ts._fplan
    ts.tween_step(net, np.ones(8, np.float32), 1, 3, 0.05)
    assert ts._fplan is not first and ts._fplan.out_size == 3
    ts.weight_vel[0] = None  # unfusable: the generic path, and the miss is remembered
    ts.tween_step(net, np.ones(8, np.float32), 1, 3, 0.05)
    assert ts._fplan is None and ts._plan_miss is not None
    ts.tween_step(net, np.ones(8, np.float32), 1, 3, 0.05)
    assert ts._fplan is None and ts.tween_steps == 5
