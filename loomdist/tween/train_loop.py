"""TweenState.train: LOOM's epoch loop with evaluation, SaveBest/RestoreBest, early stop and
dead-layer pruning (spec 4.12)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..eval import evaluate_model
from ..eval.metrics import predictions
from ..layers._common import as_rng

GLYPHS = ((0.8, "█"), (0.6, "▓"), (0.4, "▒"), (0.2, "░"))


@dataclass
class TweenEpochMetrics:
    """LOOM's TweenEpochMetrics."""

    epoch: int
    avg_loss: float
    score: float
    avg_link_budget: float
    min_link_budget: float
    max_link_budget: float
    avg_gap: float
    max_gap: float
    depth_barrier: float
    bottleneck_layer: int


def evaluate(ts, net, inputs, expected):
    """EvaluateNetwork through the tween forward (disabled layers pass through)."""
    outs = np.stack([ts.forward_pass(net, x).copy() for x in inputs])
    return evaluate_model(expected, predictions(outs))


def train(ts, net, inputs, expected, epochs: int, rate: float, callback=None, rng=None,
          log=print):
    """TweenState.Train: shuffled TweenSteps per epoch; returns the last DeviationMetrics.

    inputs: (n, features); expected: n class indices. rng seeds the per-epoch permutation.
    """
    inputs = np.asarray(inputs, np.float32)
    expected = np.asarray(expected, np.float64)
    if inputs.ndim != 2 or len(inputs) != len(expected) or len(inputs) == 0:
        raise DataError(f"TweenState.train: inputs {inputs.shape} and expected "
                        f"{expected.shape} must be (n, features) and (n,) with n > 0; pass "
                        f"matching arrays")
    cfg, gen, m = ts.config, as_rng(rng), None
    out_size = getattr(net.layers[-1].spec, "output_height", 2) or 2
    for epoch in range(epochs):
        loss = sum(ts.tween_step(net, inputs[i], int(expected[i]), out_size, rate)
                   for i in gen.permutation(len(inputs)))
        avg = loss / len(inputs)
        ts.loss_history.append(avg)
        check_and_prune(ts, net, log)
        record_epoch_history(ts)
        if epoch % cfg.eval_frequency and epoch != epochs - 1:
            continue
        m = evaluate(ts, net, inputs, expected)
        if m.score > ts.best_score:
            ts.best_score = m.score
            ts.save_best(net)
        ts.epoch_metrics.append(epoch_metrics(ts, epoch + 1, avg, m.score))
        if ts.verbose:
            log(progress_line(ts, epoch + 1, epochs, avg, m.score))
        if callback is not None:
            callback(epoch + 1, avg, m)
        if m.score >= cfg.early_stop_threshold:
            if ts.verbose:
                log(f"\n🎯 Early stop! Score {m.score:.2f}% >= threshold "
                    f"{cfg.early_stop_threshold:.2f}%")
            ts.restore_best(net)
            return m
    if ts.best_score > 0:
        ts.restore_best(net)
    return m


def record_epoch_history(ts) -> None:
    ts.link_budget_history.append(ts.link_budgets.copy())
    ts.gap_history.append(ts.gaps.copy())
    ts.depth_barrier_history.append(float(np.prod(ts.link_budgets.astype(np.float64))))


def epoch_metrics(ts, epoch: int, avg_loss: float, score: float) -> TweenEpochMetrics:
    avg_b, min_b, max_b = ts.budget_summary()
    avg_g, max_g = ts.gap_summary()
    b = ts.link_budgets
    low = [i for i in range(b.size) if b[i] < 1.0]
    bottleneck = min(low, key=lambda i: (b[i], i)) if low else 0
    barrier = float(np.prod(b.astype(np.float64))) if b.size else 0.0
    return TweenEpochMetrics(epoch, avg_loss, score, avg_b, min_b, max_b, avg_g, max_g,
                             barrier, bottleneck)


def progress_line(ts, epoch: int, epochs: int, loss: float, score: float) -> str:
    """LOOM's verbose epoch line with one glyph per layer."""
    e = ts.epoch_metrics[-1]
    glyphs = "".join(_glyph(b, ts.config.ignore_threshold) for b in ts.link_budgets)
    return (f"Epoch {epoch:4d}/{epochs} | Loss: {loss:.4f} | Score: {score:5.1f}% | "
            f"LinkBudget: {e.avg_link_budget:.3f} (min {e.min_link_budget:.3f} "
            f"@L{e.bottleneck_layer}) | Gap: {e.avg_gap:.4f} | DepthBarrier: "
            f"{e.depth_barrier:.4f} [{glyphs}]")


def _glyph(b: float, ignore: float) -> str:
    if b < ignore:
        return "X"
    return next((g for t, g in GLYPHS if b > t), "·")


def check_and_prune(ts, net, log=print) -> None:
    """checkAndPruneLayers: only with PruneEnabled on a 1x1 grid; first/last layer kept."""
    cfg, L = ts.config, ts.total_layers
    if not cfg.prune_enabled or net.grid_rows != 1 or net.grid_cols != 1:
        return
    for i in range(1, L - 1):
        if i in ts.disabled:
            ts.dead_epochs[i] += 1
            if ts.dead_epochs[i] >= cfg.prune_patience:
                if ts.verbose:
                    log(f"\n🗑️  DELETE ALERT: Physically Removing Layer {i} (Disabled for "
                        f"{ts.dead_epochs[i]} epochs) 🗑️")
                remove_layer(ts, net, i)
                return
        elif ts.link_budgets[i] < cfg.prune_threshold:
            ts.dead_epochs[i] += 1
        else:
            ts.dead_epochs[i] = 0
    _disable_batch(ts, log)


def _disable_batch(ts, log) -> None:
    """The first active layer dead for PrunePatience epochs disables up to 3 active layers."""
    L, cfg = ts.total_layers, ts.config
    start = next((i for i in range(1, L - 1) if i not in ts.disabled
                  and ts.dead_epochs[i] >= cfg.prune_patience), None)
    if start is None:
        return
    batch = [i for i in range(start, L - 1) if i not in ts.disabled][:3]
    for i in batch:
        ts.disabled.add(i)
        ts.dead_epochs[i] = 0
    if ts.verbose:
        log(f"\n✂️  PRUNING ALERT: Batch Disabling Layers {batch[0]}-{batch[-1]} (Budget "
            f"{ts.link_budgets[start]:.3f}) ✂️")


def remove_layer(ts, net, i: int) -> None:
    """Delete layer i from the 1x1 grid and shrink LOOM's per-layer state lists."""
    del net.layers[i]
    net.layers_per_cell -= 1
    ts.total_layers -= 1
    ts.disabled = {j - (j > i) for j in ts.disabled if j != i}
    ts.link_budgets = np.delete(ts.link_budgets, i)
    for name in ("forward_acts", "backward_targets", "weight_vel", "dead_epochs",
                 "chain_gradients", "batch_gaps", "bias_vel"):
        lst = list(getattr(ts, name))
        if i < len(lst):
            del lst[i]
        setattr(ts, name, lst)
    ts.gaps = np.delete(ts.gaps, i)
    ts.depth_barrier = np.delete(ts.depth_barrier, i)
    if ts.best_params:
        ts.best_params = {j - (j > i): v for j, v in ts.best_params.items() if j != i}
