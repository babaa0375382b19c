"""DeviationMetrics against LOOM: the recorded fixture, every formula branch, exact output."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest

import loomdist
from loomdist import ConfigError, DataError, ShapeError
from loomdist.eval import (
    BUCKET_ORDER,
    DeviationMetrics,
    PredictionResult,
    evaluate_model,
    evaluate_network,
    evaluate_prediction,
    go_float64,
    load_metrics,
    metrics_to_json,
)
from loomdist.eval.metrics import bucket_of, predictions, swap_sort_order
from tests.loomfix import FIXTURES


@pytest.fixture(scope="module")
def fixture():
    path = FIXTURES / "evaluation.json"
    if not path.exists():
        pytest.skip(f"fixture evaluation not found under {FIXTURES}")
    data = json.loads(path.read_text())
    data["metrics_bytes"] = (FIXTURES / data["metrics_file"]).read_bytes()
    data["metrics"] = json.loads(data["metrics_bytes"])
    return data


@pytest.fixture(scope="module")
def net(fixture):
    text = (FIXTURES / fixture["model_file"]).read_text()
    return loomdist.load_model_from_string(text, fixture["model_id"])


# ------------------------------------------------------------------ LOOM's fixture
def test_fixture_metrics_match_loom(fixture):
    m = evaluate_model(fixture["expected_outputs"], fixture["actual_outputs"])
    ref = fixture["metrics"]
    assert (m.total_samples, m.failures) == (ref["total_samples"], ref["failures"])
    assert m.score == ref["score"] and m.average_deviation == ref["avg_deviation"]
    assert [r.deviation for r in m.results] == [r["deviation"] for r in ref["results"]]
    assert [r.bucket for r in m.results] == [r["bucket"] for r in ref["results"]]
    for name, b in ref["buckets"].items():
        assert (m.buckets[name].count, m.buckets[name].samples) == (b["count"], b["samples"])


def test_save_metrics_is_byte_identical_to_loom(fixture, tmp_path):
    m = evaluate_model(fixture["expected_outputs"], fixture["actual_outputs"])
    out = tmp_path / "sub" / "metrics.json"
    m.save_metrics(out)
    assert out.read_bytes() == fixture["metrics_bytes"]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644
    assert os.listdir(out.parent) == ["metrics.json"]  # no temp file left behind


def test_load_metrics_reads_loom_file(fixture):
    m = load_metrics(FIXTURES / fixture["metrics_file"])
    assert m.total_samples == 24 and m.failures == 1
    assert m.buckets["100%+"].range_max == 1e9
    assert list(m.buckets) == list(BUCKET_ORDER)
    assert m.results[7] == PredictionResult(7, -0.4, 0.49520042538642883, 223.8001063466072,
                                            "100%+")
    assert metrics_to_json(m).encode() == fixture["metrics_bytes"]


def test_evaluate_network_reproduces_loom(fixture, net):
    m = evaluate_network(net, fixture["inputs"], fixture["expected_outputs"])
    ref = fixture["metrics"]
    np.testing.assert_allclose([r.actual for r in m.results], fixture["actual_outputs"],
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose([r.deviation for r in m.results],
                               [r["deviation"] for r in ref["results"]], rtol=1e-5)
    assert {k: b.samples for k, b in m.buckets.items()} == \
        {k: b["samples"] for k, b in ref["buckets"].items()}
    assert m.score == pytest.approx(ref["score"], rel=1e-6)
    assert net.batch_size == 1


def test_batched_equals_per_sample(fixture, net):
    rows = np.random.default_rng(3).uniform(-1, 1, (200, 4)).astype(np.float32)
    expected = np.linspace(-1, 1, 200)
    a = evaluate_network(net, rows, expected, batched=True)
    b = evaluate_network(net, rows, expected, batched=False)
    loop = [float(net.forward(r)[0]) for r in rows]  # LOOM's literal loop, flat input
    assert [r.actual for r in b.results] == loop
    np.testing.assert_allclose([r.actual for r in a.results], loop, rtol=1e-6)
    assert [r.bucket for r in a.results] == [r.bucket for r in b.results]


@pytest.mark.parametrize("name", ["parallel_concat", "softmax_standard", "layernorm"])
def test_multi_output_networks_use_argmax(name):
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    net = loomdist.load_model_from_string((FIXTURES / f"{name}.model.json").read_text(),
                                          data["model_id"])
    n_in = len(data["input"]) // data["batch_size"]
    x = np.random.default_rng(5).standard_normal((9, n_in)).astype(np.float32)
    expected = np.arange(9) % 3
    loop = [float(np.argmax(net.forward(x[i:i + 1])[0])) for i in range(9)]
    for batched in (True, False):  # parallel concat mixes rows in a batch: must fall back
        m = evaluate_network(net, x, expected, batched=batched)
        assert [r.actual for r in m.results] == loop


def test_evaluate_network_empty(net):
    m = evaluate_network(net, [], [])
    assert (m.total_samples, m.score, m.results) == (0, 0.0, [])


# ------------------------------------------------------------------ formula branches
@pytest.mark.parametrize("expected, actual, dev", [
    (0.0, 0.5, 50.0),                      # |expected| < 1e-10: absolute error * 100
    (0.0, 0.1, 10.0),
    (1e-11, 0.2, (0.2 - 1e-11) * 100),
    (-5e-11, 0.0, 5e-11 * 100),
    (1e-10, 2e-10, 100.0),                 # exactly 1e-10 is relative
    (2.0, 1.0, 50.0),                      # relative: |(a - e) / e * 100|
    (-0.4, 0.49520042538642883, 223.8001063466072),
    (0.0, 1e300, 1e302),                   # huge but finite stays
    (math.nan, 1.0, 100.0),                # NaN -> 100
    (1.0, math.nan, 100.0),
    (0.0, math.inf, 100.0),                # Inf -> 100
    (1e-5, 1e305, 100.0),                  # overflow to Inf -> 100
])
def test_deviation_formula(expected, actual, dev):
    r = evaluate_prediction(3, expected, actual)
    assert r.deviation == dev and r.sample_index == 3 and r.bucket == bucket_of(dev)


@pytest.mark.parametrize("i, name", list(enumerate(BUCKET_ORDER[:-1])))
def test_bucket_upper_bounds_are_inclusive(i, name):
    hi = [10.0, 20.0, 30.0, 40.0, 50.0, 100.0][i]
    assert bucket_of(hi) == name
    assert bucket_of(math.nextafter(hi, math.inf)) == BUCKET_ORDER[i + 1]
    assert bucket_of(math.nextafter(hi, 0.0)) == name


@pytest.mark.parametrize("actual, bucket", [(11, "0-10%"), (12, "10-20%"), (13, "20-30%"),
                                            (14, "30-40%"), (15, "40-50%"), (20, "50-100%")])
def test_exact_bounds_through_the_formula(actual, bucket):
    r = evaluate_prediction(0, 10.0, actual)
    assert r.deviation == (actual - 10) * 10.0 and r.bucket == bucket


def test_failures_exclude_exactly_100_and_score_clamps():
    m = evaluate_model([1.0, 1.0, 1.0, 0.0], [2.0, 0.0, 3.5, 0.25])  # dev 100, 100, 250, 25
    assert m.failures == 1 and m.buckets["100%+"].samples == [2]
    assert m.buckets["50-100%"].samples == [0, 1]
    assert m.score == (0 + 0 + 0 + 75) / 4
    assert m.average_deviation == (100 + 100 + 250 + 25) / 4


def test_compute_final_empty_and_sequential_sum():
    m = DeviationMetrics()
    m.compute_final()
    assert (m.score, m.average_deviation) == (0.0, 0.0)
    devs = [0.1, 0.2, 0.3, 1e-17, 7.7]
    m = evaluate_model([0.0] * 5, [d / 100 for d in devs])
    total = 0.0
    for r in m.results:
        total += r.deviation
    assert m.average_deviation == total / 5


def test_update_rejects_unknown_bucket():
    with pytest.raises(DataError, match=r"unknown bucket 'bogus'.*evaluate_prediction"):
        DeviationMetrics().update(PredictionResult(0, 1.0, 1.0, 0.0, "bogus"))


def test_samples_in_bucket():
    m = evaluate_model([1.0, 1.0, 1.0], [1.0, 3.0, 1.05])
    assert m.samples_in_bucket("0-10%") == [0, 2]
    assert m.samples_in_bucket("100%+") == [1]
    assert m.samples_in_bucket("nope") == []


# ------------------------------------------------------------------ worst samples
def _literal(devs, n):
    s = list(enumerate(devs))
    for i in range(len(s) - 1):
        for j in range(i + 1, len(s)):
            if s[j][1] > s[i][1]:
                s[i], s[j] = s[j], s[i]
    return [k for k, _ in s[:min(n, len(s))]]


def test_worst_samples_unstable_tie_order():
    m = evaluate_model([1.0] * 4, [1.01, 1.05, 1.05, 1.09])  # devs 1, 5, 5, 9 (ties at 5)
    assert [r.sample_index for r in m.worst_samples(4)] == [3, 2, 1, 0]  # not [3, 1, 2, 0]
    assert [r.sample_index for r in m.worst_samples(10)] == [3, 2, 1, 0]
    assert m.worst_samples(0) == []


@pytest.mark.parametrize("seed", range(6))
def test_worst_samples_equals_literal_loop(seed):
    rng = np.random.default_rng(seed)
    devs = rng.integers(0, 6, size=int(rng.integers(0, 40))).astype(float).tolist()
    for n in (0, 1, 3, len(devs), len(devs) + 2):
        assert swap_sort_order(devs, n) == _literal(devs, n)
    with_nan = devs + [math.nan, 2.0]
    assert swap_sort_order(with_nan, 5) == _literal(with_nan, 5)


@pytest.mark.parametrize("n", [-1, 2.5, True])
def test_worst_samples_rejects_bad_n(n):
    with pytest.raises(ConfigError, match=r"worst_samples: n must be an int >= 0"):
        DeviationMetrics().worst_samples(n)


# ------------------------------------------------------------------ summary text
FIXTURE_SUMMARY = """
=== Model Evaluation Summary ===
Total Samples: 24
Quality Score: 64.27/100
Average Deviation: 40.89%
Failures (>100% deviation): 1 (4.2%)

Deviation Distribution:
     0-10%:    3 samples (12.5%) ██████
    10-20%:    7 samples (29.2%) ██████████████
    20-30%:    3 samples (12.5%) ██████
    30-40%:    3 samples (12.5%) ██████
    40-50%:    1 samples (4.2%) ██
   50-100%:    6 samples (25.0%) ████████████
     100%+:    1 samples (4.2%) ██

"""


def test_summary_text_exact(fixture, capsys):
    m = evaluate_model(fixture["expected_outputs"], fixture["actual_outputs"])
    assert m.summary() == FIXTURE_SUMMARY
    m.print_summary()
    assert capsys.readouterr().out == FIXTURE_SUMMARY


def test_summary_of_empty_metrics_prints_nan_like_go():
    m = evaluate_model([], [])
    text = m.summary()
    assert "Failures (>100% deviation): 0 (NaN%)\n" in text
    assert "     0-10%:    0 samples (NaN%) \n" in text
    assert "Quality Score: 0.00/100\n" in text


# ------------------------------------------------------------------ Go JSON numbers
@pytest.mark.parametrize("x, text", [
    (100.0, "100"), (1e9, "1000000000"), (0.0, "0"), (-0.0, "-0"), (0.1, "0.1"),
    (98.17497730255127, "98.17497730255127"), (1e20, "100000000000000000000"),
    (1.2345678901234568e20, "123456789012345680000"), (1e21, "1e+21"), (-2.5e22, "-2.5e+22"),
    (1e-6, "0.000001"), (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (1.234e-10, "1.234e-10"),
    (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
])
def test_go_float64(x, text):
    assert go_float64(x) == text


def test_save_sanitizes_inf_and_nan(tmp_path):
    m = evaluate_model([1.0], [1.0])
    m.average_deviation = math.inf
    m.buckets["0-10%"].range_min = -math.inf
    m.buckets["10-20%"].range_max = math.nan
    doc = json.loads(metrics_to_json(m))
    assert doc["avg_deviation"] == 1e9 and doc["buckets"]["0-10%"]["range_min"] == -1e9
    assert doc["buckets"]["10-20%"]["range_max"] == 0
    assert list(doc) == ["total_samples", "score", "avg_deviation", "failures", "buckets",
                         "results"]
    assert list(doc["buckets"]) == sorted(BUCKET_ORDER)


def test_save_rejects_nan_actual_and_writes_nothing(tmp_path):
    m = evaluate_model([1.0], [math.nan])
    with pytest.raises(DataError, match=r"cannot be written as JSON.*NaN/Inf"):
        m.save_metrics(tmp_path / "m.json")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ load errors
def _write(tmp_path, doc) -> str:
    p = tmp_path / "m.json"
    text = doc if isinstance(doc, str) else json.dumps(doc)
    p.write_text(text.replace('"<1e400>"', "1e400"))  # a number that overflows float64
    return str(p)


def _good(fixture) -> dict:
    return json.loads(fixture["metrics_bytes"])


def test_load_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"failed to read metrics file .*nope\.json"):
        load_metrics(tmp_path / "nope.json")


@pytest.mark.parametrize("text", ["{", '{"score": NaN}', "[1,"])
def test_load_invalid_json(tmp_path, text):
    with pytest.raises(DataError, match=r"failed to unmarshal metrics"):
        load_metrics(_write(tmp_path, text))


@pytest.mark.parametrize("edit, pattern", [
    (lambda d: [], r"is list, not an object"),
    (lambda d: d.pop("score"), r"lacks \['score'\]"),
    (lambda d: d.update(buckets=[]), r"buckets is \[\], expected an object"),
    (lambda d: d.update(results={}), r"results is \{\}, expected an array"),
    (lambda d: d.update(total_samples=24.5), r"total_samples is 24.5, expected an integer"),
    (lambda d: d.update(score="hi"), r"score is 'hi', expected a finite number"),
    (lambda d: d.update(avg_deviation="<1e400>"), r"avg_deviation is inf"),
    (lambda d: d["buckets"]["0-10%"].pop("count"), r"buckets\['0-10%'\] lacks \['count'\]"),
    (lambda d: d["buckets"]["0-10%"].update(samples=3), r"samples is 3, expected an array"),
    (lambda d: d["buckets"]["0-10%"].update(samples=["a"]), r"samples\[\] is 'a'"),
    (lambda d: d["results"][2].update(bucket=5), r"results\[2\]: bucket is 5"),
    (lambda d: d["results"][0].update(sample_index=True), r"sample_index is True"),
    (lambda d: d["results"].__setitem__(1, 7), r"results\[1\] is int, not an object"),
])
def test_load_rejects_malformed(fixture, tmp_path, edit, pattern):
    doc = _good(fixture)
    replaced = edit(doc)
    doc = replaced if replaced == [] else doc
    with pytest.raises(DataError, match=pattern):
        load_metrics(_write(tmp_path, doc))


def test_load_accepts_null_samples(fixture, tmp_path):
    doc = _good(fixture)
    doc["buckets"]["40-50%"]["samples"] = None
    assert load_metrics(_write(tmp_path, doc)).buckets["40-50%"].samples == []


# ------------------------------------------------------------------ entry point errors
def test_evaluate_model_errors():
    with pytest.raises(ShapeError, match=r"mismatched expected \(2\) vs actual \(1\) output"):
        evaluate_model([1.0, 2.0], [1.0])
    with pytest.raises(ShapeError, match=r"expected has shape \(1, 2\); pass a 1-D"):
        evaluate_model([[1.0, 2.0]], [1.0, 2.0])
    with pytest.raises(ShapeError, match=r"actual is not a sequence of numbers"):
        evaluate_model([1.0], ["x"])


def test_evaluate_network_errors(net):
    with pytest.raises(ShapeError, match=r"mismatched inputs \(2\) vs expected outputs \(1\)"):
        evaluate_network(net, np.zeros((2, 4)), [0.0])
    with pytest.raises(ShapeError, match=r"inputs have shape \(2, 2, 2\); pass \(n, features"):
        evaluate_network(net, np.zeros((2, 2, 2)), [0.0, 1.0])
    with pytest.raises(ShapeError, match=r"inputs are not an \(n, features\) array"):
        evaluate_network(net, [[1.0, 2.0], [1.0]], [0.0, 1.0])
    with pytest.raises(ShapeError):  # the network names the wrong feature width
        evaluate_network(net, np.zeros((2, 3)), [0.0, 1.0])


@pytest.mark.parametrize("outputs, idx", [
    ([[0.2]], 0.2), ([[1.0, 3.0, 3.0]], 1.0), ([[math.nan, 5.0]], 0.0),
    ([[1.0, math.nan, 2.0]], 2.0), ([[2.0, math.nan, 1.0]], 0.0), ([[-math.inf, -math.inf]], 0),
])
def test_prediction_rule_matches_go(outputs, idx):
    got = predictions(np.asarray(outputs, dtype=np.float32))[0]
    assert got == np.float64(np.float32(idx))
