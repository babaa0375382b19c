"""evaluate_from_checkpoint_files (LOOM's EvaluateFromCheckpointFiles, loom-training.md 2.3):
one JSON input per file, unreadable files skipped without an entry, LOOM's prediction rule."""

import json
import logging

import numpy as np
import pytest

import loomdist
from loomdist.errors import ShapeError
from loomdist.layers import dense


def classifier(batch=1):
    net = loomdist.Network(0, 1, 1, 1, batch_size=batch)
    net.set_layer(0, 0, 0, dense.Spec(4, 3, "sigmoid"), rng=0)
    return net


def write_inputs(tmp_path, xs):
    paths = []
    for i, x in enumerate(xs):
        p = tmp_path / f"input{i}.json"
        p.write_text(json.dumps([float(v) for v in x]))
        paths.append(p)
    return paths


def test_files_give_the_metrics_of_evaluate_network(tmp_path):
    xs = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    expected = [0, 1, 2, 1, 0, 2]
    net = classifier()
    metrics, load_s, forward_s = net.evaluate_from_checkpoint_files(
        write_inputs(tmp_path, xs), expected)
    want = net.evaluate(xs, expected)
    assert metrics.score == want.score and metrics.failures == want.failures
    assert [r.actual for r in metrics.results] == [r.actual for r in want.results]
    assert load_s > 0 and forward_s > 0


def test_unreadable_files_are_skipped_and_logged(tmp_path, caplog):
    xs = np.ones((3, 4), np.float32)
    paths = write_inputs(tmp_path, xs)
    paths[1].write_text("[1, 2,")  # cut off
    paths.append(tmp_path / "missing.json")
    for name, text in (("strings", '["1", 2, 3, 4]'), ("bools", "[true, 1, 2, 3]"),
                       ("empty", "[]"), ("null", "null")):  # Go rejects or has no input
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(text)
    with caplog.at_level(logging.WARNING):
        metrics, _, _ = classifier().evaluate_from_checkpoint_files(paths, [0, 1, 2] + [0] * 5)
    assert [r.sample_index for r in metrics.results] == [0, 2]  # no entry for the rest
    assert metrics.total_samples == 2
    for name in ("input1", "missing", "strings", "bools", "empty", "null"):
        assert f"{name}.json" in caplog.text


def test_the_network_keeps_its_batch_size_and_argmax_covers_the_whole_output(tmp_path):
    """LOOM does not force batch 1 here: a file of 2 samples runs as one batch-2 forward and
    the prediction is the argmax over all 6 outputs."""
    net = classifier(batch=2)
    x = np.random.default_rng(1).standard_normal(8).astype(np.float32)
    (metrics, _, _) = net.evaluate_from_checkpoint_files(write_inputs(tmp_path, [x]), [4])
    assert metrics.results[0].actual == float(np.argmax(net.forward(x)))


def test_mismatched_lengths_are_an_error(tmp_path):
    with pytest.raises(ShapeError, match=r"mismatched files \(1\) vs expected outputs \(2\)"):
        classifier().evaluate_from_checkpoint_files(["a.json"], [0, 1])
