"""Walks over layer runs: a network cut into stages anywhere equals the whole (residuals too)."""

from __future__ import annotations

import numpy as np
import pytest

import loomdist
from loomdist.engine import walk_backward, walk_forward
from loomdist.gradcheck import numeric_grad
from loomdist.layers import LAYERS


def residual_net():
    """MHA, LayerNorm, RMSNorm and SwiGLU: every residual mode, crossing any cut."""
    L = LAYERS
    specs = [L["dense"].Spec(8, 8, "tanh"), L["rms_norm"].Spec(4),
             L["multi_head_attention"].Spec(4, 2), L["layer_norm"].Spec(8),
             L["swiglu"].Spec(4, 3), L["dense"].Spec(8, 8, "sigmoid"),
             L["multi_head_attention"].Spec(4, 1), L["layer_norm"].Spec(8)]
    net = loomdist.Network(0, 2, 2, 2, batch_size=2)
    for i, s in enumerate(specs):
        net.set_layer(*net.coords(i), s, rng=i)
    for key, arr in net.parameters():  # non-trivial gains and biases
        arr += np.random.default_rng(len(key[3])).normal(0, 0.1, arr.shape).astype(arr.dtype)
    return net


def pre_ln_net():
    """Opens with LayerNorm -> MHA -> SwiGLU: a LayerNorm starts no residual (LOOM), so the
    MHA adds nothing and the SwiGLU adds the MHA's output."""
    L = LAYERS
    specs = [L["layer_norm"].Spec(8), L["multi_head_attention"].Spec(4, 2),
             L["swiglu"].Spec(4, 3), L["dense"].Spec(8, 8, "tanh")]
    net = loomdist.Network(0, 1, 2, 2, batch_size=2)
    for i, s in enumerate(specs):
        net.set_layer(*net.coords(i), s, rng=i)
    for key, arr in net.parameters():
        arr += np.random.default_rng(len(key[3])).normal(0, 0.1, arr.shape).astype(arr.dtype)
    return net


def test_a_layer_norm_opening_the_network_starts_no_residual():
    net = pre_ln_net()
    x = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    h = x
    for i, slot in enumerate(net.layers[:3]):
        y, _ = slot.module.forward(slot.spec, slot.params, h)
        h = y + h if i == 2 else y  # only the SwiGLU adds (the MHA's output)
    net.forward(x)
    got = net.activations()[3]  # [input, layer 0, layer 1, layer 2, ...]
    np.testing.assert_allclose(got, h.reshape(-1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make", [residual_net, pre_ln_net], ids=["mixed", "pre_ln"])
def test_residual_paths_get_true_gradients(make):
    net = make().astype(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 8))
    dy = np.random.default_rng(2).standard_normal((2, 8))
    net.forward(x)
    dx = net.backward(dy)

    def loss():
        return float(np.sum(net.forward(x) * dy))
    np.testing.assert_allclose(dx, numeric_grad(loss, x), atol=1e-6)
    for key, arr in list(net.parameters()):
        np.testing.assert_allclose(net.grad(key), numeric_grad(loss, arr), atol=1e-6,
                                   err_msg=str(key))


@pytest.mark.parametrize("cut", range(1, 8))
def test_two_stages_equal_one_walk(cut):
    net = residual_net().astype(np.float64)
    x = np.random.default_rng(3).standard_normal((2, 8))
    dy = np.random.default_rng(4).standard_normal((2, 8))
    y_full = net.forward(x)
    dx_full = net.backward(dy)
    g_full = {k: v.copy() for k, v in net.gradients()}
    net.zero_grad()
    first = walk_forward(net.layers[:cut], x)
    second = walk_forward(net.layers[cut:], first.output, first.residual_out)
    np.testing.assert_array_equal(second.output, y_full)
    d_mid, d_res = walk_backward(second, dy)
    dx, none = walk_backward(first, d_mid, d_residual_out=d_res)
    assert none is None
    np.testing.assert_allclose(dx, dx_full, rtol=1e-12, atol=1e-14)
    for k, g in net.gradients():
        np.testing.assert_allclose(g, g_full[k], rtol=1e-12, atol=1e-14, err_msg=str(k))
