"""LOOM's Network.EvaluateFromCheckpointFiles: evaluate inputs saved one per JSON file.

Each file holds one "checkpointed input", a JSON array of numbers (not a model: LOOM's README
shows a model-file signature, its code reads inputs; loom-training.md, README vs code item 2).
A file that cannot be read or parsed is logged and skipped, so its index gets no metrics
entry, as in LOOM. The network runs at its own batch_size (LOOM does not force 1 here); the
prediction is output[0] for a one-value output, else the argmax index over the whole output.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ..errors import ShapeError
from .metrics import DeviationMetrics, evaluate_prediction, predictions

log = logging.getLogger(__name__)


def evaluate_from_checkpoint_files(net, files, expected) -> tuple[DeviationMetrics, float,
                                                                     float]:
    """(metrics, load seconds, forward seconds) of `files` (one input each) against
    `expected` (one float per file), like LOOM's EvaluateFromCheckpointFiles.

    Raises:
        ShapeError: len(files) != len(expected).
    """
    files, expected = list(files), [float(e) for e in expected]
    if len(files) != len(expected):
        raise ShapeError(f"evaluate_from_checkpoint_files: mismatched files ({len(files)}) vs "
                         f"expected outputs ({len(expected)}); pass one expected value per "
                         f"file")
    metrics, load_s, forward_s = DeviationMetrics(), 0.0, 0.0
    for i, (path, want) in enumerate(zip(files, expected)):
        t0 = time.perf_counter()
        x = _read_input(path)
        load_s += time.perf_counter() - t0
        if x is None:
            continue
        t0 = time.perf_counter()
        out = np.ravel(np.asarray(net.forward(x)))
        forward_s += time.perf_counter() - t0
        metrics.update(evaluate_prediction(i, want, float(predictions(out[None, :])[0])))
    metrics.compute_final()
    return metrics, load_s, forward_s


def _read_input(path) -> np.ndarray | None:
    """The file's flat float32 input, or None (logged) when it cannot be read or parsed."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        log.warning("evaluate_from_checkpoint_files: skipping %s: %s", path, e)
        return None
    # Go's json.Unmarshal into []float32 rejects strings, booleans and nested arrays; an
    # empty array or null (an empty input) is skipped too: there is nothing to forward
    if not isinstance(values, list) or not values or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        log.warning("evaluate_from_checkpoint_files: skipping %s: expected a non-empty JSON "
                    "array of numbers", path)
        return None
    return np.asarray(values, dtype=np.float32)
