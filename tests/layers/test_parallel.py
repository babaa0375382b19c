"""Parallel layer: combine modes as LOOM, nesting, branch weights, errors, updates."""

from __future__ import annotations

import numpy as np
import pytest

import loomdist
from loomdist import ConfigError, ShapeError
from loomdist.layers import LAYERS, dense, softmax
from loomdist.layers import parallel as P

D = dense.Spec


def _run(spec, x):
    params = P.init(spec, np.random.default_rng(0))
    return P.forward(spec, params, x)[0], params


def _branch_outs(spec, params, x):
    return [LAYERS[b.kind].forward(b, P._sub(params, i), x)[0]
            for i, b in enumerate(spec.branches)]


def test_concat_is_branch_major_over_the_flat_buffer():
    spec = P.Spec((D(3, 2, "tanh"), D(3, 1, "sigmoid")), "concat")
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    y, params = _run(spec, x)
    a, b = _branch_outs(spec, params, x)
    assert np.array_equal(y.ravel(), np.concatenate([a.ravel(), b.ravel()]))  # not per sample


def test_add_avg_and_grid_scatter():
    br = (D(3, 2, "tanh"), D(3, 2, "sigmoid"))
    x = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    y_add, params = _run(P.Spec(br, "add"), x)
    a, b = _branch_outs(P.Spec(br, "add"), params, x)
    np.testing.assert_allclose(y_add, a + b, rtol=1e-6)
    np.testing.assert_allclose(_run(P.Spec(br, "avg"), x)[0], (a + b) / 2, rtol=1e-6)
    scatter = P.Spec(br, "grid_scatter", 1, 2, 1, ((0, 0, 1, 0), (1, 0, 0, 0)))
    np.testing.assert_allclose(_run(scatter, x)[0], np.concatenate([b, a], axis=1), rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(branches=()), "non-empty list of layer specs"),
    (dict(branches=(D(2, 2),), combine_mode="max"), "unknown combine_mode"),
    (dict(branches=(D(2, 2), D(2, 2)), combine_mode="grid_scatter", grid_rows=1,
          grid_cols=2, grid_layers=1, grid_positions=((0, 0, 0, 0), (1, 0, 0, 0))),
     r"branches 0 and 1 collide at grid cell \(0,0,0\)"),
    (dict(branches=(D(2, 2),), combine_mode="grid_scatter", grid_rows=1, grid_cols=1,
          grid_layers=1, grid_positions=((0, 0, 1, 0),)), r"falls outside the 1x1x1 grid"),
    (dict(branches=(D(2, 2), D(2, 2)), combine_mode="grid_scatter", grid_rows=2,
          grid_cols=1, grid_layers=1, grid_positions=((0, 0, 0, 0),)), "one position per branch"),
    (dict(branches=(D(2, 2),), combine_mode="grid_scatter"), "grid rows/cols/layers >= 1"),
])
def test_bad_configs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        P.Spec(**kwargs)


def test_add_branches_of_different_sizes():
    net = loomdist.Network(0, 1, 1, 1)
    net.set_layer(0, 0, 0, P.Spec((D(3, 2), D(3, 4)), "add"))
    with pytest.raises(ShapeError, match=r"add needs equal branch output sizes, got \[2, 4\]"):
        net.forward(np.zeros(3, np.float32))


def test_nested_parallel_round_trips_and_names_parameters():
    inner = P.Spec((D(4, 2, "tanh"), softmax.Spec()), "concat")
    outer = P.Spec((inner, D(4, 3, "relu"),
                    P.Spec((D(4, 2), D(4, 2, "sigmoid")), "avg")), "concat")
    net = loomdist.Network(0, 1, 1, 1, batch_size=2)
    net.set_layer(0, 0, 0, outer, rng=3)
    names = [k[3] for k, _ in net.parameters()]
    assert "branch0.branch0.kernel" in names and "branch2.branch1.biases" in names
    text = net.save_model_to_string("nested")
    again = loomdist.load_model_from_string(text, "nested")
    x = np.random.default_rng(4).standard_normal(8).astype(np.float32)
    assert np.array_equal(net.forward(x), again.forward(x))
    assert again.save_model_to_string("nested") == text


def test_sgd_step_updates_every_branch_parameter():
    norm = [k for k in ("layer_norm", "rms_norm", "swiglu") if k in LAYERS]
    if len(norm) < 3:
        pytest.fail("layer_norm, rms_norm and swiglu must be registered")
    branches = (LAYERS["layer_norm"].Spec(4), D(4, 4, "tanh"), LAYERS["rms_norm"].Spec(4),
                LAYERS["swiglu"].Spec(4, 3), D(4, 4))
    net = loomdist.Network(0, 1, 1, 1, batch_size=2)
    net.set_layer(0, 0, 0, P.Spec(branches, "add"), rng=5)
    before = {k: v.copy() for k, v in net.parameters()}
    x = np.random.default_rng(6).standard_normal(8).astype(np.float32)
    y = net.forward(x)
    net.backward(y - 0.5)
    for key, arr in net.parameters():
        arr -= 0.1 * net.grad(key)
    for key, arr in net.parameters():
        np.testing.assert_allclose(arr, before[key] - 0.1 * net.grad(key), rtol=1e-6)
        assert np.any(net.grad(key) != 0), f"{key} got no gradient"
