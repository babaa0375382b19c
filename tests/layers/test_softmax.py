"""Softmax layer: LOOM semantics per variant, JVP properties, config errors, file round trips."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import loomdist
from loomdist import ConfigError, ShapeError
from loomdist.layers import softmax as S
from loomdist.layers._common import whole_buffer
from loomdist.layers._softmax_spec import runs_as
from loomdist.registry import call_layer_init

X = np.array([[0.5, -1.0, 2.0, 0.0, 1.5, -0.5]], np.float32)


def fwd(spec, x=X):
    return S.forward(spec, {}, x)[0]


def test_standard_and_temperature_match_formula():
    for t in (1.0, 0.5, 3.0):
        e = np.exp(X / t - (X / t).max())
        np.testing.assert_allclose(fwd(S.Spec("temperature", t)), e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(fwd(S.Spec("standard", 0.0)), fwd(S.Spec("standard", 1.0)))


def test_grid_rows_are_independent_distributions():
    y = fwd(S.init_grid_softmax_layer(2, 3)).reshape(2, 3)
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(y[0], fwd(S.Spec(), X[:, :3])[0], rtol=1e-6)


def test_hierarchical_is_grid_over_last_level():
    np.testing.assert_allclose(fwd(S.init_hierarchical_softmax_layer([2, 1, 3])),
                               fwd(S.init_grid_softmax_layer(2, 3)))


def test_masked_entries_are_zero_with_zero_gradient():
    spec = S.Spec("masked", mask=(True, False, True, True, False, True))
    y, cache = S.forward(spec, {}, X)
    assert y[0, 1] == 0 and y[0, 4] == 0
    dx, _ = S.backward(spec, {}, cache, np.ones_like(y) + np.arange(6))
    assert dx[0, 1] == 0 and dx[0, 4] == 0


def test_sparsemax_gives_exact_zeros_and_sums_to_one():
    y = fwd(S.init_sparsemax_layer())
    assert (y == 0).sum() >= 3 and abs(y.sum() - 1) < 1e-6


def test_entmax_endpoints_and_blend():
    np.testing.assert_allclose(fwd(S.init_entmax_layer(1.0)), fwd(S.Spec()), rtol=1e-6)
    np.testing.assert_allclose(fwd(S.init_entmax_layer(2.0)), fwd(S.Spec("sparse")))
    blend = 0.5 * fwd(S.Spec()) + 0.5 * fwd(S.Spec("sparse"))
    np.testing.assert_allclose(fwd(S.init_entmax_layer(1.5)), blend / blend.sum(), rtol=1e-6)


def test_gumbel_noise_fixed_by_seed_and_fresh_otherwise():
    fixed = S.init_gumbel_softmax_layer(1.0, noise_seed=4)
    assert np.array_equal(fwd(fixed), fwd(fixed))
    loose = S.init_gumbel_softmax_layer(1.0)
    assert not np.array_equal(fwd(loose), fwd(loose))


def test_adaptive_and_mixture_reduce_to_loom_without_fields():
    plain = fwd(S.Spec())
    assert np.array_equal(fwd(S.Spec("adaptive", 3.0)), plain)  # LOOM ignores T here
    assert np.array_equal(fwd(S.Spec("mixture", 3.0)), plain)


def test_adaptive_factorises_cluster_and_member():
    spec = S.init_adaptive_softmax_layer([[0, 1, 2], [3, 4, 5]], temperature=2.0)
    y = fwd(spec)[0]
    e = np.exp(X[0].astype(np.float64))
    lse = np.log([e[:3].sum(), e[3:].sum()])
    pc = np.exp(lse / 2) / np.exp(lse / 2).sum()
    np.testing.assert_allclose(y[:3], pc[0] * e[:3] / e[:3].sum(), rtol=1e-5)
    assert abs(y.sum() - 1) < 1e-6
    np.testing.assert_allclose(fwd(S.init_adaptive_softmax_layer([[0, 1, 2], [3, 4, 5]])),
                               fwd(S.Spec()), rtol=1e-5)  # T = 1: plain softmax


def test_mixture_blends_component_distributions():
    spec = S.init_mixture_softmax_layer([1, 3])
    y = fwd(spec)
    assert y.shape == (1, 3)
    expect = 0.25 * fwd(S.Spec(), X[:, :3]) + 0.75 * fwd(S.Spec(), X[:, 3:])
    np.testing.assert_allclose(y, expect, rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="fancy"), "unknown variant"),
    (dict(variant="grid", rows=0, cols=3), "rows >= 1 and cols >= 1"),
    (dict(variant="hierarchical", levels=()), "non-empty list of positive integers"),
    (dict(variant="masked", mask=()), "non-empty mask"),
    (dict(variant="entmax", entmax_alpha=float("inf")), "entmax_alpha must be a finite"),
    (dict(variant="adaptive", adaptive_clusters=((0, 1), (1, 2))), r"overlap at \[1\]"),
    (dict(variant="mixture", mixture_weights=(-1, 2)), "must be >= 0"),
    (dict(temperature=-1.0), "temperature must be >= 0"),
    (dict(temperature=float("nan")), "finite number"),
    (dict(variant="gumbel", noise_seed="x"), "noise_seed"),
])
def test_bad_configs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        S.Spec(**kwargs)


@pytest.mark.parametrize("spec, match", [
    (S.init_grid_softmax_layer(3, 3), r"grid rows x cols = 3x3 = 9 does not match the input"),
    (S.init_mixture_softmax_layer([1, 1, 1, 1]), "4 mixture components"),
    (S.init_adaptive_softmax_layer([[0, 9]]), "cluster index 9"),
])
def test_shape_mismatch_against_input(spec, match):
    net = loomdist.Network(0, 1, 1, 1)
    net.set_layer(0, 0, 0, spec)
    with pytest.raises(ShapeError, match=match):
        net.forward(np.zeros(6, np.float32))


def _plain(x, t=1.0):
    e = np.exp((x - x.max()) / t)
    return e / e.sum()


@pytest.mark.parametrize("spec, expect, match", [
    (S.Spec("masked", 0.5, mask=(True, False) * 2), lambda x: _plain(x, 0.5), "mask has 4"),
    (S.init_hierarchical_softmax_layer([2, 2]), _plain, r"multiply to 4, not 6"),
    (S.init_grid_softmax_layer(2, 2),
     lambda x: np.concatenate([_plain(x[:2]), _plain(x[2:4]), [0, 0]]), "covers 4 of 6"),
])
def test_configs_that_do_not_fit_fall_back_as_loom_does(spec, expect, match):
    with pytest.warns(loomdist.LoomFallbackWarning, match=match):
        y, cache = S.forward(spec, {}, X)
    np.testing.assert_allclose(y[0], expect(X[0].astype(np.float64)), rtol=1e-6, atol=1e-7)
    g = np.linspace(-1, 1, 6, dtype=np.float32)[None]
    dx, _ = S.backward(spec, {}, cache, g)
    run, m = runs_as(spec, 6)
    _, ref = S.forward(run, {}, X[:, :m])  # the true gradient of what ran (0 past a grid)
    np.testing.assert_allclose(dx[0, :m], S.backward(run, {}, ref, g[:, :m])[0][0], rtol=1e-6)
    assert not dx[0, m:].any()


def test_loom_adaptive_and_mixture_are_plain_softmax():
    """LOOM has no adaptive or mixture code: its files compute softmax(x), T ignored."""
    plain = fwd(S.Spec())
    for spec in (S.Spec("adaptive", 0.4, adaptive_clusters=((0, 1), (2, 3, 4))),
                 S.Spec("mixture", 2.0, mixture_weights=(0.3, 0.7))):
        assert np.array_equal(fwd(spec), plain), spec.variant
        assert not np.array_equal(fwd(dataclasses.replace(spec, extended=True)), plain)


def test_whole_buffer_is_one_distribution():
    """On LOOM's flat layout a softmax normalises the whole buffer (all samples)."""
    x = np.vstack([X, X[:, ::-1] * 2])
    with whole_buffer():
        y, cache = S.forward(S.Spec("temperature", 0.7), {}, x)
        dx, _ = S.backward(S.Spec("temperature", 0.7), {}, cache, np.ones_like(y) + x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y.ravel(), _plain(x.ravel().astype(np.float64), 0.7), rtol=1e-6)
    ref, c1 = S.forward(S.Spec("temperature", 0.7), {}, x.reshape(1, -1))
    np.testing.assert_allclose(dx.ravel(), S.backward(S.Spec("temperature", 0.7), {}, c1,
                                                      (np.ones_like(y) + x).reshape(1, -1))[0]
                               .ravel(), rtol=1e-6)
    assert abs(fwd(S.Spec(), x).sum() - 2) < 1e-5  # outside: one distribution per row


def test_every_variant_round_trips_through_a_loom_file():
    specs = [S.init_softmax_layer(), S.init_grid_softmax_layer(2, 3),
             S.init_hierarchical_softmax_layer([2, 3]), S.init_temperature_softmax_layer(0.3),
             S.init_gumbel_softmax_layer(0.7), S.init_masked_softmax_layer(6),
             S.init_sparsemax_layer(), S.init_entmax_layer(1.3),
             S.init_adaptive_softmax_layer([[0, 5], [1, 2]], 0.9),
             S.init_mixture_softmax_layer([0.25, 0.75])]
    for spec in specs:
        net = loomdist.Network(0, 1, 1, 1)
        net.set_layer(0, 0, 0, spec)
        text = net.save_model_to_string("m")
        again = loomdist.load_model_from_string(text, "m")
        got = again.get_layer(0, 0, 0)
        assert got == S.Spec(**{**spec.__dict__, "noise_seed": None}), spec.variant
        assert again.save_model_to_string("m") == text


def test_registry_has_all_softmax_inits():
    assert call_layer_init("InitGridSoftmaxLayer", [3, 4]).rows == 3
    assert call_layer_init("init_masked_softmax_layer", [2]).mask == (True, True)
    assert call_layer_init("InitEntmaxLayer", [1.5]).entmax_alpha == 1.5


@pytest.mark.parametrize("spec, cols", [(S.Spec(), 6), (S.Spec("temperature", 0.4), 6),
                                        (S.init_grid_softmax_layer(2, 3), 3)])
def test_matches_torch_float64(spec, cols):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 6))
    g = np.random.default_rng(1).standard_normal((2, 6))
    y, cache = S.forward(spec, {}, x)
    dx, _ = S.backward(spec, {}, cache, g)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.softmax(tx.view(-1, cols) / spec.effective_temperature, -1).view(2, 6)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
