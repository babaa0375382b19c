"""LOOM's DeviationMetrics (nn/evaluation.go): per-sample deviation, buckets, score, summary.

Everything here reproduces LOOM exactly: the same float64 operations in the same order (so
score and average deviation have LOOM's bits), the same tie order in `worst_samples`, the
same PrintSummary text and the same SaveMetrics bytes (see `loomdist.eval.metrics_json`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, DataError, ShapeError

# (key, range_min, range_max) in LOOM's evaluation order; upper bounds are inclusive.
BUCKETS = (("0-10%", 0.0, 10.0), ("10-20%", 10.0, 20.0), ("20-30%", 20.0, 30.0),
           ("30-40%", 30.0, 40.0), ("40-50%", 40.0, 50.0), ("50-100%", 50.0, 100.0),
           ("100%+", 100.0, math.inf))
BUCKET_ORDER = tuple(name for name, _, _ in BUCKETS)
FAILURE_BUCKET = "100%+"


@dataclass(frozen=True)
class PredictionResult:
    """One evaluated sample (LOOM's PredictionResult); deviation is in percent."""

    sample_index: int
    expected: float
    actual: float
    deviation: float
    bucket: str


@dataclass
class DeviationBucket:
    """One deviation range (range_min, range_max] with the sample indices that fell in it."""

    range_min: float
    range_max: float
    count: int = 0
    samples: list[int] = field(default_factory=list)


def new_buckets() -> dict[str, DeviationBucket]:
    """LOOM's NewDeviationMetrics buckets, empty, in evaluation order."""
    return {name: DeviationBucket(lo, hi) for name, lo, hi in BUCKETS}


def deviation_percent(expected: float, actual: float) -> float:
    """LOOM's deviation: relative error in percent, absolute*100 near zero, NaN/Inf -> 100."""
    if math.fabs(expected) < 1e-10:
        dev = math.fabs(actual - expected) * 100
    else:
        dev = math.fabs((actual - expected) / expected * 100)
    return 100.0 if math.isnan(dev) or math.isinf(dev) else dev


def bucket_of(deviation: float) -> str:
    """The bucket key of a deviation (upper bound inclusive); above 100 is a failure."""
    for name, _, hi in BUCKETS[:-1]:
        if deviation <= hi:
            return name
    return FAILURE_BUCKET


def evaluate_prediction(idx: int, expected: float, actual: float) -> PredictionResult:
    """LOOM's EvaluatePrediction(sampleIndex, expected, actual) for float64 values."""
    expected, actual = float(expected), float(actual)
    dev = deviation_percent(expected, actual)
    return PredictionResult(int(idx), expected, actual, dev, bucket_of(dev))


@dataclass(eq=False)
class DeviationMetrics:
    """LOOM's DeviationMetrics: accumulate with `update`, then call `compute_final` once.

    Attributes:
        buckets: bucket key -> DeviationBucket (LOOM's seven, in evaluation order).
        score: running sum of max(0, 100 - dev); after compute_final the mean (0..100).
        total_samples, failures: counts (a failure is dev > 100; exactly 100 is not one).
        results: every PredictionResult in evaluation order.
        average_deviation: mean deviation in percent (set by compute_final).
    """

    buckets: dict[str, DeviationBucket] = field(default_factory=new_buckets)
    score: float = 0.0
    total_samples: int = 0
    failures: int = 0
    results: list[PredictionResult] = field(default_factory=list)
    average_deviation: float = 0.0

    def update(self, result: PredictionResult) -> None:
        """LOOM's UpdateMetrics: count the result in its bucket and add its score."""
        bucket = self.buckets.get(result.bucket)
        if bucket is None:
            raise DataError(f"DeviationMetrics.update: unknown bucket {result.bucket!r} "
                            f"(known {list(self.buckets)}); build results with "
                            f"evaluate_prediction")
        bucket.count += 1
        bucket.samples.append(result.sample_index)
        self.total_samples += 1
        if result.bucket == FAILURE_BUCKET:
            self.failures += 1
        self.results.append(result)
        self.score += max(0.0, 100 - result.deviation)

    def compute_final(self) -> None:
        """LOOM's ComputeFinalMetrics: score -> mean score, average deviation (sequential sum).

        Like LOOM it divides the stored score again if called twice; call it once.
        """
        if self.total_samples == 0:
            self.score, self.average_deviation = 0.0, 0.0
            return
        self.score = max(0.0, self.score / self.total_samples)
        total = 0.0
        for r in self.results:  # sequential, as Go: sum() or np.sum would round differently
            total += r.deviation
        self.average_deviation = total / self.total_samples

    def samples_in_bucket(self, name: str) -> list[int]:
        """LOOM's GetSamplesInBucket: that bucket's sample indices; unknown name -> []."""
        bucket = self.buckets.get(name)
        return bucket.samples if bucket is not None else []

    def worst_samples(self, n: int) -> list[PredictionResult]:
        """LOOM's GetWorstSamples(n): the n largest deviations, in LOOM's exact tie order.

        LOOM sorts a copy with an unstable O(len^2) swap loop; passes i >= n never touch the
        first n slots, so only n passes run here, each vectorised (same result, see tests).
        Raises ConfigError for n < 0 (LOOM would panic slicing [:n]).
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"DeviationMetrics.worst_samples: n must be an int >= 0 "
                              f"(got {n!r}); pass how many samples to return")
        order = swap_sort_order([r.deviation for r in self.results], int(n))
        return [self.results[k] for k in order]

    def summary(self) -> str:
        """The exact text LOOM's PrintSummary prints (Go's %.2f/%.1f, NaN% when empty)."""
        total = self.total_samples
        lines = ["", "=== Model Evaluation Summary ===", f"Total Samples: {total}",
                 f"Quality Score: {_gof(self.score, 2)}/100",
                 f"Average Deviation: {_gof(self.average_deviation, 2)}%",
                 f"Failures (>100% deviation): {self.failures} "
                 f"({_gof(_percent(self.failures, total), 1)}%)", "", "Deviation Distribution:"]
        for name in BUCKET_ORDER:
            count = self.buckets[name].count if name in self.buckets else 0
            pct = _percent(count, total)
            bar = "█" * int(pct / 2) if math.isfinite(pct) else ""
            lines.append(f"  {name:>8}: {count:4d} samples ({_gof(pct, 1)}%) {bar}")
        return "\n".join(lines) + "\n\n"

    def print_summary(self) -> None:
        """LOOM's PrintSummary: print `summary()` to stdout."""
        print(self.summary(), end="")

    def save_metrics(self, path) -> None:
        """LOOM's SaveMetrics: byte-identical JSON, written atomically (mode 0644)."""
        from .metrics_json import save_metrics
        save_metrics(self, path)


def swap_sort_order(devs: list[float], n: int) -> list[int]:
    """Indices of the first min(n, len) entries after LOOM's GetWorstSamples swap loop:

        for i in 0..len-2: for j in i+1..len-1: if s[j] > s[i]: swap(s[i], s[j])

    In pass i the swaps happen exactly at the strict running-maximum records after i; the
    record holders shift one record to the right and the last record lands in slot i.
    """
    d = np.asarray(devs, dtype=np.float64)
    perm = np.arange(d.size)
    if np.isnan(d).any():  # NaN breaks the running-max shortcut; LOOM never makes NaN devs
        return _swap_sort_literal(d.tolist(), n)
    for i in range(min(n, d.size - 1)):
        rest = d[i + 1:]
        prev = np.maximum.accumulate(np.concatenate(([d[i]], rest)))[:-1]
        rec = np.flatnonzero(rest > prev) + i + 1
        if rec.size:
            slots = np.concatenate(([i], rec))
            d[slots] = np.roll(d[slots], 1)
            perm[slots] = np.roll(perm[slots], 1)
    return perm[:min(n, d.size)].tolist()


def _swap_sort_literal(d: list[float], n: int) -> list[int]:
    perm = list(range(len(d)))
    for i in range(len(d) - 1):
        for j in range(i + 1, len(d)):
            if d[j] > d[i]:
                d[i], d[j] = d[j], d[i]
                perm[i], perm[j] = perm[j], perm[i]
    return perm[:min(n, len(d))]


def _percent(count: int, total: int) -> float:
    """float64(count)/float64(total)*100 with Go's 0/0 = NaN and x/0 = +Inf."""
    if total == 0:
        return math.nan if count == 0 else math.copysign(math.inf, count)
    return count / total * 100


def _gof(x: float, prec: int) -> str:
    """Go's %.<prec>f: NaN, +Inf and -Inf are spelt as Go spells them."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:.{prec}f}"


def evaluate_model(expected, actual) -> DeviationMetrics:
    """LOOM's EvaluateModel: pairwise EvaluatePrediction over two 1-D float64 sequences.

    Args:
        expected, actual: 1-D sequences/arrays of the same length (n,).
    Returns:
        Final DeviationMetrics (compute_final already applied).
    Raises:
        ShapeError: not 1-D, or the lengths differ.
    """
    e = _vector(expected, "evaluate_model", "expected")
    a = _vector(actual, "evaluate_model", "actual")
    if e.size != a.size:
        raise ShapeError(f"evaluate_model: mismatched expected ({e.size}) vs actual "
                         f"({a.size}) output sizes; pass one actual value per expected value")
    metrics = DeviationMetrics()
    for i, (ev, av) in enumerate(zip(e.tolist(), a.tolist())):
        metrics.update(evaluate_prediction(i, ev, av))
    metrics.compute_final()
    return metrics


def _vector(values, where: str, name: str) -> np.ndarray:
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ShapeError(f"{where}: {name} is not a sequence of numbers ({e}); pass a 1-D "
                         f"float sequence") from e
    if v.ndim != 1:
        raise ShapeError(f"{where}: {name} has shape {v.shape}; pass a 1-D sequence "
                         f"(one value per sample)")
    return v


def evaluate_network(net, inputs, expected, *, batched: bool = True) -> DeviationMetrics:
    """LOOM's Network.EvaluateNetwork: forward each input, predict, evaluate.

    Prediction per sample: output[0] when the output has one value, else the argmax index
    (first maximum, Go's strict `>` so NaN never wins). Overwrites the network's stored
    activations, like LOOM; `net.batch_size` is left unchanged.

    Args:
        net: a loomdist Network.
        inputs: (n, features) float32 inputs (array or list of equal-length lists).
        expected: (n,) float64 expected values (class indices for classifiers).
        batched: run all samples through one batched forward when the network treats rows
            independently (checked on probe rows; otherwise per-sample, like LOOM). Rows of
            a batched GEMM may differ from one-row GEMMs in the last float32 bit; pass
            False for LOOM's literal per-sample loop.
    Raises:
        ShapeError: inputs not 2-D/ragged, or len(inputs) != len(expected), or the
            network rejects the feature width.
    """
    x = _inputs(inputs)
    e = _vector(expected, "evaluate_network", "expected")
    if x.shape[0] != e.size:
        raise ShapeError(f"evaluate_network: mismatched inputs ({x.shape[0]}) vs expected "
                         f"outputs ({e.size}); pass one expected value per input")
    if e.size == 0:
        return evaluate_model(e, e)
    y = _forward_rows(net, x) if batched else None
    if y is None:
        y = np.stack([_forward_one(net, x, i) for i in range(x.shape[0])])
    return evaluate_model(e, predictions(y))


def predictions(outputs: np.ndarray) -> np.ndarray:
    """(n, out) outputs -> (n,) float64: the value itself if out == 1, else Go's argmax."""
    y = np.asarray(outputs)
    if y.shape[1] == 1:
        return y[:, 0].astype(np.float64)
    idx = np.where(np.isnan(y), -np.inf, y).argmax(axis=1)
    idx[np.isnan(y[:, 0])] = 0  # Go: nothing is > NaN, so a NaN first value keeps index 0
    return idx.astype(np.float64)


def _inputs(inputs) -> np.ndarray:
    try:
        x = np.asarray(inputs, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ShapeError(f"evaluate_network: inputs are not an (n, features) array of "
                         f"numbers ({e}); pass equal-length float rows") from e
    if x.ndim == 1 and x.size == 0:
        return x.reshape(0, 0)
    if x.ndim != 2:
        raise ShapeError(f"evaluate_network: inputs have shape {x.shape}; pass (n, "
                         f"features), one row per sample")
    return x


def _forward_one(net, x: np.ndarray, i: int) -> np.ndarray:
    return np.asarray(net.forward(x[i:i + 1])).reshape(-1)


_CHUNK = 4096  # rows per batched forward (bounds activation memory)


def _forward_rows(net, x: np.ndarray):
    """(n, out) from batched forwards, or None where rows are not independent."""
    n = x.shape[0]
    try:
        parts = [np.asarray(net.forward(x[s:s + _CHUNK])) for s in range(0, n, _CHUNK)]
    except ShapeError:
        return None
    if any(p.ndim != 2 or p.shape[0] != min(_CHUNK, n - s)
           for p, s in zip(parts, range(0, n, _CHUNK))):
        return None
    y = np.concatenate(parts)
    for i in sorted({0, n // 2, n - 1}):  # a batch-coupled layer (parallel concat) mixes rows
        one = _forward_one(net, x, i)
        if one.shape != y[i].shape or not np.allclose(y[i], one, rtol=1e-5, atol=1e-6,
                                                      equal_nan=True):
            return None
    return y
