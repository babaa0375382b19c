"""Batch tweening, SaveBest/RestoreBest, Train (early stop, pruning) and TweenState errors."""

import numpy as np
import pytest

from loomdist.errors import ConfigError, DataError, ShapeError
from loomdist.layers import dense, layer_norm
from loomdist.network import Network
from loomdist.tween.config import TweenConfig
from loomdist.tween.state import TweenState

from .nets_tween import build, snapshot


def test_tween_batch_is_accumulate_then_apply():
    a, x = build("dense")
    b, _ = build("dense")
    xs = [x, -x, 0.5 * x]
    cs = [0, 1, 2]
    ta, tb = TweenState(a), TweenState(b)
    mean = ta.tween_batch(a, xs, cs, 3, 0.2)
    losses = [tb.tween_step_accumulate(b, xi, c, 3) for xi, c in zip(xs, cs)]
    assert tb.batch_count == 3 and tb.tween_steps == 3
    tb.tween_batch_apply(b, 0.2)
    assert mean == pytest.approx(np.mean(losses))
    for sa, sb in zip(a.layers, b.layers):
        for k in sa.params:
            np.testing.assert_array_equal(sa.params[k], sb.params[k])
    assert tb.batch_count == 0 and tb.batch_gaps == [None, None]
    assert TweenState(a).tween_batch(a, [], [], 3, 0.2) == 0.0


def test_batch_apply_uses_averaged_gap_of_last_sample_activations():
    net, x = build("dense")
    ts = TweenState(net)
    ts.tween_step_accumulate(net, x, 1, 3)
    gap = ts.backward_targets[2] - ts.forward_acts[2]
    np.testing.assert_allclose(ts.batch_gaps[1], gap)
    before = snapshot(net)
    ts.tween_batch_apply(net, 0.0)  # rate 0: nothing moves, batch still reset
    np.testing.assert_array_equal(net.layers[0].params["kernel"], before[0]["kernel"])
    assert ts.batch_count == 0


def test_link_budgets_from_sample_use_stale_targets():
    net, x = build("dense")
    ts = TweenState(net)
    ts.tween_step(net, x, 2, 3, 0.0)
    first = ts.link_budgets.copy()
    ts.calculate_link_budgets_from_sample(net, -x)
    assert ts.backward_targets[2][2] == 1.0 and not np.array_equal(first, ts.link_budgets)


def test_save_and_restore_best_copy_kernels():
    net, x = build("dense")
    ts = TweenState(net)
    ts.save_best(net)
    saved = snapshot(net)
    for _ in range(3):
        ts.tween_step(net, x, 0, 3, 1.0)
    ts.restore_best(net)
    np.testing.assert_array_equal(net.layers[1].params["kernel"], saved[1]["kernel"])


def _depth_net(blocks=3):
    net = Network(4, 1, 1, 2 * blocks + 1)
    rng = np.random.default_rng(1)
    net.set_layer(0, 0, 0, dense.Spec(4, 8, "tanh"), rng=rng)
    for i in range(1, 2 * blocks):
        spec = layer_norm.Spec(8) if i % 2 else dense.Spec(8, 8, "tanh")
        net.set_layer(0, 0, i, spec, rng=rng)
    net.set_layer(0, 0, 2 * blocks, dense.Spec(8, 2, "sigmoid"), rng=rng)
    return net


def _data(n=40, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    return x, (x.sum(axis=1) > 0).astype(np.float64)


def test_train_learns_records_history_and_early_stops():
    net = _depth_net(1)
    x, y = _data()
    ts = TweenState(net, TweenConfig(eval_frequency=1, early_stop_threshold=90.0))
    seen = []
    m = ts.train(net, x, y, 60, 0.5, callback=lambda e, loss, mm: seen.append(e), rng=0)
    assert m.score >= 90.0 and seen[-1] < 60       # stopped early
    assert len(ts.loss_history) == seen[-1] and ts.best_score == m.score
    assert len(ts.epoch_metrics) == len(seen) and len(ts.link_budget_history) == seen[-1]


def test_train_prunes_dead_layers_like_loom():
    net = _depth_net(3)
    x, y = _data()
    cfg = TweenConfig(prune_enabled=True, prune_threshold=1.1, prune_patience=1,
                      eval_frequency=1, early_stop_threshold=101.0)
    ts = TweenState(net, cfg)
    ts.verbose = True
    lines = []
    from loomdist.tween.train_loop import train
    train(ts, net, x, y, 4, 0.1, rng=0, log=lines.append)
    assert any("PRUNING ALERT" in s for s in lines)
    assert any("DELETE ALERT" in s for s in lines)
    assert net.total_layers < 7 and ts.total_layers == net.total_layers
    assert len(ts.link_budgets) == net.total_layers == len(ts.forward_acts) - 1
    assert net.forward(x[0]).shape == (2,)


def test_tween_state_errors():
    net, x = build("dense")
    ts = TweenState(net)
    with pytest.raises(ShapeError, match="out_size must be >= 1"):
        ts.tween_step(net, x, 0, 0, 0.1)
    other, _ = build("rnn")
    with pytest.raises(ConfigError, match="build a TweenState for this network"):
        ts.tween_step(other, x, 0, 3, 0.1)
    with pytest.raises(DataError, match="must be \\(n, features\\)"):
        ts.train(net, x, [0], 1, 0.1)
    empty = Network(6, 1, 1, 2)
    with pytest.raises(ConfigError, match="empty grid slots"):
        TweenState(empty)
