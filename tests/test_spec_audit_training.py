"""Spec audit of loom-training.md: places where loomdist did not do what LOOM's code does.

Each test names the spec section. Losses, batch lines and durations are checked against values
worked out from the spec text; the gradient statistics and validation lines check LOOM's format
around loomdist's own (separately tested) gradients and metrics.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import loomdist
from loomdist.layers import dense
from loomdist.train_config import TrainingConfig

NUM = r"(-?\d+\.\d{6})"
DUR = r"(\d+(?:\.\d+)?(?:ns|µs|ms|s)|\d+m\d+(?:\.\d+)?s)"


def _net_and_batches(n_batches=3, seed=0):
    net = loomdist.Network(0, 1, 1, 2)
    net.set_layer(0, 0, 0, dense.Spec(4, 8, "tanh"), rng=seed)
    net.set_layer(0, 0, 1, dense.Spec(8, 2, "sigmoid"), rng=seed + 1)
    rng = np.random.default_rng(seed)
    batches = [(rng.uniform(-1, 1, 4).astype(np.float32),
                rng.uniform(0, 1, 2).astype(np.float32)) for _ in range(n_batches)]
    return net, batches


def test_train_console_text_is_loom_s(capsys):
    """Spec 1.1 "Exact console output": clipping line, \\r batch lines (PrintEveryBatch 0 =
    every batch), \\r epoch lines with Go durations, gradient statistics every 5th epoch,
    the "Running validation evaluation..." line, and the final block."""
    net, batches = _net_and_batches()
    xs = [b[0] for b in batches]
    cfg = TrainingConfig(epochs=5, learning_rate=0.05, gradient_clip=0.5, verbose=True,
                         evaluate_every_n=5, validation_inputs=xs, validation_targets=[1, 0, 1])
    res = net.train(batches, cfg)
    out = capsys.readouterr().out
    head = ("\n=== Training Configuration ===\nEpochs: 5\nLearning Rate: 0.050000\n"
            "Batches per Epoch: 3\nSamples per Epoch: 3\nBackend: CPU\nLoss Function: mse\n"
            "Gradient Clipping: 0.50\n\n")
    assert out.startswith(head)
    body = out[len(head):]
    for e in range(1, 6):
        batch = "".join(rf"\rEpoch {e}/5 - Batch {b}/3 - Loss: {NUM}" for b in (1, 2, 3))
        epoch = (rf"\rEpoch {e}/5 - Avg Loss: {NUM} \(Best: {NUM}\) - Time: {DUR} - "
                 rf"Throughput: \d+ samples/sec\n")
        m = re.match(batch + epoch, body)
        assert m, f"epoch {e} text differs from LOOM's: {body[:300]!r}"
        batch_losses = [float(v) for v in m.groups()[:3]]
        assert float(m.group(4)) == pytest.approx(np.mean(batch_losses), abs=2e-6)
        assert m.group(4) == f"{res.loss_history[e - 1]:.6f}"
        body = body[m.end():]
    stats = ["  Gradient Statistics:\n", "    Total layers: 2, Kernel grads: 2, Bias grads: 2\n"]
    for i, g in enumerate(net.kernel_gradients()):  # the last batch's (clipped) gradients
        g = np.ravel(g).astype(np.float64)
        stats.append(f"    Layer {i}: norm={np.sqrt(g @ g):.6f}, mean={g.mean():.6f}, "
                     f"size={g.size}\n")
    m = res.eval_metrics
    validation = ("\n  Running validation evaluation...\n  Validation Score: "
                  f"{m.score:.2f}/100, Avg Deviation: {m.average_deviation:.2f}%, Failures: "
                  f"{m.failures}/3\n")
    assert body.startswith("".join(stats) + validation)
    tail = body[len("".join(stats) + validation):]
    assert re.fullmatch(rf"\n✓ Training Complete!\nFinal Loss: {NUM}\nBest Loss: {NUM}\n"
                        rf"Total Time: {DUR}\nAverage Throughput: \d+ samples/sec\n\n", tail)


@pytest.mark.parametrize("every, printed", [(2, [1, 3, 5]), (-1, []), (0, [1, 2, 3, 4, 5])])
def test_print_every_batch(capsys, every, printed):
    """Spec 1.1 TrainingConfig.PrintEveryBatch: 0 prints every batch, N > 0 when
    batchIdx % N == 0, < 0 never."""
    net, batches = _net_and_batches(n_batches=5)
    net.train(batches, TrainingConfig(epochs=1, learning_rate=0.01, verbose=True,
                                      print_every_batch=every))
    out = capsys.readouterr().out
    assert [int(b) for b in re.findall(r"\rEpoch 1/1 - Batch (\d+)/5 - Loss:", out)] == printed


@pytest.mark.parametrize("seconds, text", [
    (0.0, "0s"), (1e-7, "100ns"), (1.5e-6, "1.5µs"), (850e-6, "850µs"),
    (0.001234567, "1.234567ms"), (0.002, "2ms"), (2.5, "2.5s"), (1.000000001, "1.000000001s"),
    (90.5, "1m30.5s"), (3600.0, "1h0m0s"), (3723.25, "1h2m3.25s")])
def test_go_duration_string(seconds, text):
    """Spec 1.1: Train prints time.Duration with %v, i.e. Go's Duration.String()."""
    from loomdist.train_console import go_duration
    assert go_duration(seconds) == text


def test_train_skips_validation_when_a_validation_set_is_empty(capsys):
    """Spec 1.1: validation runs only when both validation slices are non-empty, so
    EvalMetrics stays nil."""
    net, batches = _net_and_batches()
    res = net.train(batches, TrainingConfig(epochs=2, learning_rate=0.01, evaluate_every_n=1,
                                            verbose=True, validation_inputs=[],
                                            validation_targets=[]))
    assert res.eval_metrics is None
    assert "Running validation evaluation" not in capsys.readouterr().out
