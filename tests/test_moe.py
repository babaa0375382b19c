"""The native-MoE claim (examples/moe_proof.py) holds as a test."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "examples" / "moe_proof.py"
spec = importlib.util.spec_from_file_location("moe_proof", _PATH)
moe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(moe)


def test_grid_softmax_equals_manual_soft_moe():
    d = moe.compare()
    assert d["output"] < 1e-12 and d["gradient"] < 1e-12
    assert d["fd_grid"] < 1.5e-4 and d["fd_manual"] < 1.5e-4


def test_routing_task_trains():
    first, last, acc, held_out, _ = moe.train_routing()
    assert last <= 0.05 * first
    assert acc == 1.0 and held_out >= 0.95


def test_example_prints_summary(capsys):
    moe.main()
    out = capsys.readouterr().out
    for line in ("Output match:", "Gradient match:", "Finite difference check: <",
                 "loss reduction", "Accuracy: 100% (3/3 patterns)"):
        assert line in out
    with pytest.raises(ValueError):
        moe.build_grid_moe(0, 1, 1)
