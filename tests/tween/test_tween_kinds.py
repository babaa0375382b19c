"""Per-kind tween rules through the registry; the range API slices like the whole sweep."""

import numpy as np
import pytest

from loomdist.errors import ConfigError
from loomdist.layers import LAYERS
from loomdist.tween.config import TweenConfig
from loomdist.tween.kinds import RULES, PassRule, rule_for
from loomdist.tween.passes import chain_backward, chain_update, output_error
from loomdist.tween.state import TweenState

from .nets_tween import SPECS, build, snapshot


def test_every_registered_layer_kind_has_a_rule():
    assert set(LAYERS) <= set(RULES), "add a tween rule (or PassRule) for each layer kind"
    assert rule_for("no_such_kind") is PassRule


@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize("chain", [True, False])
def test_tween_step_updates_parameters(kind, chain):
    net, x = build(kind)
    before = snapshot(net)
    ts = TweenState(net, TweenConfig(use_chain_rule=chain))
    losses = [ts.tween_step(net, x, 1, 3, 0.5) for _ in range(3)]
    assert all(np.isfinite(losses))
    changed = {i for i, s in enumerate(net.layers)
               for k, v in s.params.items() if not np.array_equal(v, before[i][k])}
    learnable = {i for i, s in enumerate(net.layers)
                 if rule_for(s.spec.kind).RATE is not None}
    if chain:
        assert changed == learnable
    else:  # legacy skips layers whose budget is below IgnoreThreshold
        assert changed <= learnable and max(learnable) in changed


def test_chain_leaves_recurrent_weights_alone():
    for kind, names in (("rnn", ("weight_hh",)), ("lstm", ("weight_hi", "weight_hf"))):
        net, x = build(kind)
        before = snapshot(net)
        TweenState(net).tween_step(net, x, 0, 3, 0.5)
        for name in names:
            np.testing.assert_array_equal(net.layers[1].params[name], before[1][name])


def test_chain_backward_two_dense_layers_matches_formula():
    net, x = build("dense")
    ts = TweenState(net)
    ts.forward_pass(net, x)
    ts.backward_pass_chain_rule(net, 2, 3)
    a0, a1, a2 = ts.forward_acts
    W1 = net.layers[1].params["kernel"].astype(np.float64)
    W0 = net.layers[0].params["kernel"].astype(np.float64)
    g2 = -a2.astype(np.float64)
    g2[2] += 1
    d1 = np.clip(g2 * (a2 * (1 - a2) + 0.01) * 1.0, -10, 10)     # last layer: depth 0
    g1 = np.clip(W1 @ d1 / np.sqrt(3), -10, 10)
    d0 = np.clip(g1 * (1 - a1.astype(np.float64) ** 2 + 0.01) * 1.2, -10, 10)  # depth 1
    g0 = np.clip(W0 @ d0 / np.sqrt(5), -10, 10)
    np.testing.assert_allclose(ts.chain_gradients[1], g1, rtol=1e-5)
    np.testing.assert_allclose(ts.chain_gradients[0], g0, rtol=1e-5)
    # clamped by the *consuming* layer's activation (layer 1 is sigmoid; LOOM's quirk)
    np.testing.assert_allclose(ts.backward_targets[1], np.clip(a1 + 0.1 * g1, 0.05, 0.95),
                               rtol=1e-5)


@pytest.mark.parametrize("kind", ["rnn", "swiglu", "layer_norm"])
def test_range_api_slices_equal_whole_sweep(kind):
    """Split [0, L) at every k: backward of [k, L) then [0, k) gives the whole sweep's
    errors, and updating the slices separately gives the whole update."""
    cfg = TweenConfig()
    for k in range(1, 3):
        whole, x = build(kind)
        ts = TweenState(whole)
        ts.forward_pass(whole, x)
        acts = [a.copy() for a in ts.forward_acts]
        L = whole.total_layers
        g = output_error(acts[-1], 1, 3)
        _, grads, _ = chain_backward(whole.layers, acts, g, 0, L, L, cfg)
        g_k, upper, _ = chain_backward(whole.layers[k:], acts[k:], g, k, L, L, cfg)
        _, lower, _ = chain_backward(whole.layers[:k], acts[:k + 1], g_k, 0, k, L, cfg)
        for a, b in zip(lower[:-1] + upper, grads):
            np.testing.assert_array_equal(a, b)
        parts, _ = build(kind)
        vel_w = [None] * L
        chain_update(whole.layers, acts, grads, 0, L, cfg, 0.3, vel_w)
        chain_update(parts.layers[:k], acts[:k + 1], grads[:k + 1], 0, L, cfg, 0.3,
                     [None] * k)
        chain_update(parts.layers[k:], acts[k:], grads[k:], k, L, cfg, 0.3, [None] * (L - k))
        for sw, sp in zip(whole.layers, parts.layers):
            for name in sw.params:
                np.testing.assert_array_equal(sw.params[name], sp.params[name])


def test_range_api_rejects_mismatched_slices():
    net, x = build("dense")
    with pytest.raises(ConfigError, match=r"range \[0, 2\) of L=2 needs 2 layers"):
        chain_backward(net.layers[:1], [x, x, x], np.zeros(3, np.float32), 0, 2, 2,
                       TweenConfig())
