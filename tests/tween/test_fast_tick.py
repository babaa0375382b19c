"""The fast Dense step tick (fasttick.py) and the fused TweenStep inside StepTweenChain equal
the generic tick and TweenStep."""

import numpy as np
import pytest

from loomdist.errors import ConfigError
from loomdist.layers import dense, layer_norm
from loomdist.network import Network
from loomdist.tween.fasttick import DenseTick
from loomdist.tween.modes import make_mode
from loomdist.tween.step import StepState


def _net(specs, n_in, seed=0):
    rng = np.random.default_rng(seed)
    net = Network(n_in, 1, 1, len(specs))
    for i, s in enumerate(specs):
        net.set_layer(0, 0, i, s, rng=rng)
    return net


def _stc_run(specs, n_in, fast: bool, steps=50):
    net = _net(specs, n_in)
    mode = make_mode("StepTweenChain", net, 4, "adapt")
    if not fast:
        mode.state.fast_tick, mode.ts.use_fused = None, False
    rng = np.random.default_rng(9)
    outs = []
    for _ in range(steps):
        x = rng.uniform(-1, 1, n_in).astype(np.float32)
        outs.append(mode.output(x))
        mode.learn(x, int(rng.integers(0, 4)))
    return net, mode, outs


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh", "softplus", "leaky_relu",
                                 "linear"])
def test_step_tween_chain_fast_equals_generic(act):
    specs = [dense.Spec(8, 16, act), dense.Spec(16, 12, act), dense.Spec(12, 4, "sigmoid")]
    (na, ma, oa), (nb, mb, ob) = _stc_run(specs, 8, True), _stc_run(specs, 8, False)
    assert ma.state.fast_tick is not None and ma.ts._fplan is not None
    for u, v in zip(oa, ob):
        np.testing.assert_array_equal(u, v)
    for sa, sb in zip(na.layers, nb.layers):
        for k in sa.params:
            np.testing.assert_array_equal(sa.params[k], sb.params[k])
    assert ma.last_loss == mb.last_loss and ma.state.step_count == mb.state.step_count
    for i in range(4):
        np.testing.assert_array_equal(ma.state.layer_output(i), mb.state.layer_output(i))


def test_non_dense_network_gets_no_fast_tick():
    specs = [dense.Spec(8, 8, "relu"), layer_norm.Spec(8), dense.Spec(8, 4, "sigmoid")]
    assert make_mode("StepTweenChain", _net(specs, 8), 4).state.fast_tick is None
    dense_net = _net([dense.Spec(8, 4, "tanh")], 8)
    assert DenseTick.for_state(StepState(dense_net, loom_residuals=False)) is None


def test_tick_falls_back_when_parameters_are_replaced():
    net = _net([dense.Spec(8, 6, "tanh"), dense.Spec(6, 4, "sigmoid")], 8)
    state = StepState(net)
    state.fast_tick = DenseTick.for_state(state)
    state.set_input(np.ones(8, np.float32))
    state.step_forward()
    with pytest.raises(ConfigError, match="call step_forward first"):
        state.step_backward(np.ones(4, np.float32))  # the fast tick keeps no walks
    net.layers[1].params["kernel"] = net.layers[1].params["kernel"] * 2
    state.step_forward()
    state.step_backward(np.ones(4, np.float32))  # the generic tick ran and kept its walks
    assert state.step_count == 2
