"""Dense layer: LOOM's layout and activations, PyTorch float64 as a second oracle."""

from __future__ import annotations

import numpy as np
import pytest

from loomdist import ConfigError, ShapeError
from loomdist.layers import dense

ACTS = ("relu", "sigmoid", "tanh", "softplus", "leaky_relu", "linear")


def _torch_act(torch, name, z):
    F = torch.nn.functional
    return {"relu": lambda v: F.relu(1.1 * v), "sigmoid": torch.sigmoid, "tanh": torch.tanh,
            "softplus": F.softplus, "leaky_relu": lambda v: F.leaky_relu(v, 0.1),
            "linear": lambda v: v}[name](z)


@pytest.mark.parametrize("act", ACTS)
def test_matches_torch_float64(act):
    torch = pytest.importorskip("torch")
    spec = dense.Spec(5, 4, act)
    rng = np.random.default_rng(0)
    p = {"kernel": rng.standard_normal((5, 4)), "biases": rng.standard_normal(4)}
    x, dy = rng.standard_normal((3, 5)), rng.standard_normal((3, 4))
    y, cache = dense.forward(spec, p, x)
    dx, g = dense.backward(spec, p, cache, dy)
    tx = torch.tensor(x, requires_grad=True)
    tk = torch.tensor(p["kernel"], requires_grad=True)
    tb = torch.tensor(p["biases"], requires_grad=True)
    ty = _torch_act(torch, act, tx @ tk + tb)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    for ours, theirs in ((dx, tx), (g["kernel"], tk), (g["biases"], tb)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_kernel_is_input_major_like_loom():
    spec = dense.Spec(2, 3, "linear")
    flat = np.arange(6, dtype=np.float32)  # K[i*out + o]
    p = {"kernel": flat.reshape(2, 3), "biases": np.zeros(3, np.float32)}
    y, _ = dense.forward(spec, p, np.array([[1.0, 10.0]], np.float32))
    np.testing.assert_allclose(y[0], [0 + 30, 1 + 40, 2 + 50])


def test_scaled_relu_slope():
    spec = dense.Spec(1, 1, "relu")
    p = {"kernel": np.ones((1, 1), np.float32), "biases": np.zeros(1, np.float32)}
    y, _ = dense.forward(spec, p, np.array([[2.0], [-1.0]], np.float32))
    np.testing.assert_allclose(y.ravel(), [2.2, 0.0], rtol=1e-6)


def test_he_init_and_errors():
    p = dense.init(dense.Spec(400, 300), np.random.default_rng(0))
    assert abs(p["kernel"].std() - np.sqrt(2 / 400)) < 0.003 and not p["biases"].any()
    with pytest.raises(ConfigError, match="unknown activation 'gelu'"):
        dense.Spec(2, 2, "gelu")
    with pytest.raises(ConfigError, match="output_height must be >= 1"):
        dense.Spec(2, 0)
    with pytest.raises(ShapeError, match="is 3, the layer expects 2"):
        dense.Spec(2, 2).out_features(3)
