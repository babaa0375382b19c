"""The console text of LOOM's Network.Train (nn/training.go), with Go's fmt formats.

Go's `%v` of a time.Duration is Duration.String(): integer nanoseconds printed as "850µs",
"1.234567ms", "2.5s", "1m30.5s", "1h0m0s" (trailing fraction zeros dropped, "0s" for zero).
"""

from __future__ import annotations

import numpy as np

_NS = {"h": 3_600_000_000_000, "m": 60_000_000_000, "s": 1_000_000_000}
_SUBSECOND = ((1_000_000, "ms"), (1_000, "µs"), (1, "ns"))


def go_duration(seconds: float) -> str:
    """Go's time.Duration(seconds * 1e9).String()."""
    ns = int(round(seconds * 1e9))
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns == 0:
        return "0s"
    if ns < _NS["s"]:
        unit, name = next((u, n) for u, n in _SUBSECOND if ns >= u)
        return sign + _fraction(ns, unit) + name
    h, rest = divmod(ns, _NS["h"])
    m, rest = divmod(rest, _NS["m"])
    text = _fraction(rest, _NS["s"]) + "s"
    if h:
        text = f"{h}h{m}m" + text
    elif m:
        text = f"{m}m" + text
    return sign + text


def _fraction(value: int, unit: int) -> str:
    """value / unit with the exact decimal fraction and no trailing zeros."""
    whole, frac = divmod(value, unit)
    digits = len(str(unit)) - 1
    tail = f"{frac:0{digits}d}".rstrip("0") if digits else ""
    return f"{whole}.{tail}" if tail else str(whole)


def config_block(cfg, n_batches: int, samples: int, backend: str) -> str:
    """The "=== Training Configuration ===" block, ending with its empty line."""
    clip = f"Gradient Clipping: {cfg.gradient_clip:.2f}\n" if cfg.gradient_clip > 0 else ""
    return (f"\n=== Training Configuration ===\nEpochs: {cfg.epochs}\nLearning Rate: "
            f"{cfg.learning_rate:.6f}\nBatches per Epoch: {n_batches}\nSamples per Epoch: "
            f"{samples}\nBackend: {backend}\nLoss Function: {cfg.loss_type}\n{clip}\n")


def prints_batch(print_every: int, batch_idx: int) -> bool:
    """PrintEveryBatch: 0 prints every batch, N > 0 every N-th (from the first), < 0 none."""
    return print_every == 0 or (print_every > 0 and batch_idx % print_every == 0)


def batch_line(epoch: int, epochs: int, batch_idx: int, n_batches: int, loss: float) -> str:
    """Per-batch progress (no newline: the next line overwrites it with \\r)."""
    return f"\rEpoch {epoch + 1}/{epochs} - Batch {batch_idx + 1}/{n_batches} - Loss: {loss:.6f}"


def epoch_line(epoch: int, epochs: int, avg: float, best: float, seconds: float,
               samples: int) -> str:
    """The epoch summary (\r overwrites the last batch line; throughput per epoch)."""
    throughput = samples / seconds if seconds > 0 else float("inf")
    return (f"\rEpoch {epoch + 1}/{epochs} - Avg Loss: {avg:.6f} (Best: {best:.6f}) - Time: "
            f"{go_duration(seconds)} - Throughput: {throughput:.0f} samples/sec\n")


def gradient_stats(net) -> str:
    """Every 5th epoch: L2 norm and mean of each layer's (LOOM-packed) kernel gradient."""
    kernels, biases = net.kernel_gradients(), net.bias_gradients()
    lines = ["  Gradient Statistics:\n", f"    Total layers: {net.total_layers}, Kernel grads: "
             f"{len(kernels)}, Bias grads: {len(biases)}\n"]
    for i, g in enumerate(kernels):
        if g is not None and np.size(g):
            v = np.ravel(g).astype(np.float64)
            lines.append(f"    Layer {i}: norm={np.sqrt(v @ v):.6f}, mean={v.mean():.6f}, "
                         f"size={v.size}\n")
    return "".join(lines)


def validation_lines(metrics) -> str:
    """The validation announcement and its DeviationMetrics line."""
    return (f"\n  Running validation evaluation...\n  Validation Score: {metrics.score:.2f}/100, "
            f"Avg Deviation: {metrics.average_deviation:.2f}%, Failures: {metrics.failures}/"
            f"{metrics.total_samples}\n")


def final_block(result) -> str:
    """The "Training Complete!" block of a TrainingResult."""
    return (f"\n✓ Training Complete!\nFinal Loss: {result.final_loss:.6f}\nBest Loss: "
            f"{result.best_loss:.6f}\nTotal Time: {go_duration(result.total_time)}\n"
            f"Average Throughput: {result.avg_throughput:.0f} samples/sec\n\n")
