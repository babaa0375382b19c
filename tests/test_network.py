"""The grid: indexing, placement, flat and batched passes, parameters and errors."""

from __future__ import annotations

import numpy as np
import pytest

import loomdist
from loomdist import ConfigError, ShapeError
from loomdist.gradcheck import numeric_grad
from loomdist.layers import dense


def _stack(batch=2, sizes=(6, 5, 4, 3), acts=("tanh", "sigmoid", "softplus"), grid=(1, 3, 1)):
    net = loomdist.Network(0, *grid, batch_size=batch)
    for i, a in enumerate(acts):
        net.set_layer(*net.coords(i), dense.Spec(sizes[i], sizes[i + 1], a), rng=i)
    return net


def test_grid_order_is_row_col_layer():
    net = loomdist.Network(0, 2, 3, 4)
    assert net.index(1, 2, 3) == 1 * 12 + 2 * 4 + 3
    assert [net.coords(net.index(r, c, l)) for r, c, l in [(0, 1, 2), (1, 0, 3)]] == \
        [(0, 1, 2), (1, 0, 3)]


@pytest.mark.parametrize("args, match", [
    ((0, 1, 1, 1, 0), "batch_size must be >= 1"),
    ((0, 0, 1, 1), "grid_rows must be >= 1"),
    ((0, 1, 1.5, 1), "grid_cols must be an integer"),
])
def test_bad_network_args(args, match):
    with pytest.raises(ConfigError, match=match):
        loomdist.Network(*args)


def test_set_layer_outside_grid():
    with pytest.raises(ConfigError, match=r"col 3 is outside the grid \(1x3x1\)"):
        _stack().set_layer(0, 3, 0, dense.Spec(2, 2))


def test_set_layer_wrong_params():
    net = loomdist.Network(0, 1, 1, 1)
    with pytest.raises(ConfigError, match=r"kernel has 3 values, expected 4"):
        net.set_layer(0, 0, 0, dense.Spec(2, 2), {"kernel": np.zeros(3), "biases": np.zeros(2)})
    with pytest.raises(ConfigError, match="do not match"):
        net.set_layer(0, 0, 0, dense.Spec(2, 2), {"kernel": np.zeros(4)})


def test_flat_and_batched_forms_agree():
    net = _stack(batch=2)
    x = np.random.default_rng(0).standard_normal((2, 6)).astype(np.float32)
    flat = net.forward(x.ravel())
    assert flat.shape == (6,)
    assert np.array_equal(flat, net.forward(x).ravel())
    assert net.forward(np.tile(x, (3, 1))).shape == (6, 3)  # any batch in batched form
    net.forward(x.ravel())
    dflat = net.backward(np.ones(6, np.float32))
    assert dflat.shape == (12,)


def test_wrong_input_length_names_the_layer():
    net = _stack(batch=2)
    with pytest.raises(ShapeError, match="not a positive multiple of batch_size 2"):
        net.forward(np.zeros(7, np.float32))
    with pytest.raises(ShapeError, match=r"\(0, 0, 0\) \(dense\).*is 5, the layer expects 6"):
        net.forward(np.zeros(10, np.float32))
    net.input_size = 12
    with pytest.raises(ShapeError, match="input length 14 != input_size 12"):
        net.forward(np.zeros(14, np.float32))


def test_mismatched_layer_sizes_are_reported():
    net = loomdist.Network(0, 1, 1, 2)
    net.set_layer(0, 0, 0, dense.Spec(3, 4))
    net.set_layer(0, 0, 1, dense.Spec(5, 2))
    with pytest.raises(ShapeError, match=r"layer \(0, 0, 1\) \(dense\): input features per "
                                         r"sample is 4, the layer expects 5"):
        net.forward(np.zeros(3, np.float32))


def test_empty_slot_and_backward_without_forward():
    net = loomdist.Network(0, 1, 1, 2)
    net.set_layer(0, 0, 0, dense.Spec(3, 3))
    with pytest.raises(ConfigError, match="call backward|call forward first"):
        net.backward(np.zeros(3))
    with pytest.raises(ConfigError, match=r"layer \(0, 0, 1\) \(empty\): no layer is set"):
        net.forward(np.zeros(3, np.float32))


def test_non_numeric_input():
    with pytest.raises(ShapeError, match="not numeric"):
        _stack().forward(np.array(["a"] * 12))


def test_backward_gradient_size_checked():
    net = _stack()
    net.forward(np.zeros(12, np.float32))
    with pytest.raises(ShapeError, match="gradient has 5 values, the last output has 6"):
        net.backward(np.zeros(5))


def test_parameters_addressable_and_gradients_accumulate():
    net = _stack()
    keys = [k for k, _ in net.parameters()]
    assert keys[:2] == [(0, 0, 0, "biases"), (0, 0, 0, "kernel")] or \
        keys[:2] == [(0, 0, 0, "kernel"), (0, 0, 0, "biases")]
    x = np.random.default_rng(1).standard_normal(12).astype(np.float32)
    y = net.forward(x)
    net.backward(np.ones_like(y))
    g1 = net.grad((0, 1, 0, "kernel")).copy()
    net.forward(x)
    net.backward(np.ones_like(y))
    np.testing.assert_allclose(net.grad((0, 1, 0, "kernel")), 2 * g1, rtol=1e-6)
    net.zero_grad()
    assert not net.grad((0, 1, 0, "kernel")).any()
    with pytest.raises(KeyError, match="no parameter"):
        net.param((0, 0, 0, "gamma"))


def test_network_gradients_match_finite_differences():
    net = _stack(grid=(3, 1, 1)).astype(np.float64)
    x = np.random.default_rng(2).standard_normal((2, 6))
    dy = np.random.default_rng(3).standard_normal((2, 3))
    net.forward(x)
    dx = net.backward(dy)

    def loss():
        return float(np.sum(net.forward(x) * dy))
    np.testing.assert_allclose(dx, numeric_grad(loss, x), atol=1e-7)
    for key, arr in list(net.parameters()):
        np.testing.assert_allclose(net.grad(key), numeric_grad(loss, arr), atol=1e-7,
                                   err_msg=str(key))


def test_declared_input_and_output_sizes():
    from loomdist.layers import conv2d, parallel, rms_norm
    net = loomdist.Network(0, 1, 1, 2)
    net.set_layer(0, 0, 0, conv2d.Spec(4, 4, 2, 3, 3, 1, 1), rng=0)
    net.set_layer(0, 0, 1, dense.Spec(48, 5), rng=0)
    assert net.in_features() == 32 and net.out_features(32) == 5
    with pytest.raises(ShapeError, match="expects 32"):
        net.out_features(31)
    free = loomdist.Network(0, 1, 1, 1)
    free.set_layer(0, 0, 0, parallel.Spec((rms_norm.Spec(4), dense.Spec(8, 8)), "concat"))
    assert free.in_features() == 8  # the dense branch decides
