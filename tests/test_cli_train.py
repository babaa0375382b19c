"""`loomdist train / eval / report` end to end through CliRunner (digits, small runs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import loomdist
from loomdist.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.toml"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    res = CliRunner().invoke(main, ["train", str(EXAMPLE), "--run-dir", str(root), "--run-id",
                                    "short", "--epochs", "3", "--evaluate-every-n", "1",
                                    "--checkpoint-every", "40"])
    assert res.exit_code == 0, res.output
    return root / "short", res.output


def test_train_writes_a_complete_run_directory(short_run):
    run, out = short_run
    assert "test accuracy" in out and "run directory" in out
    for name in ("config.json", "history.parquet", "predictions.parquet", "buckets.parquet",
                 "model.json", "plots/loss.png", "plots/deviation.png",
                 "plots/buckets_heatmap.png"):
        assert (run / name).is_file(), name
    hist = pq.read_table(run / "history.parquet").to_pylist()
    assert [h["epoch"] for h in hist] == [0, 1, 2] and hist[-1]["val_accuracy"] > 0.8
    preds = pq.read_table(run / "predictions.parquet")
    assert preds.num_rows == 3 * 359  # every test sample at every evaluation
    assert json.loads((run / "config.json").read_text())["training"]["epochs"] == 3
    net = loomdist.load_model(run / "model.json", "short")
    assert net.grid_rows == 2 and net.get_layer(1, 0, 1).kind == "softmax"


def test_duckdb_example_query(short_run):
    duckdb = pytest.importorskip("duckdb")
    run, _ = short_run
    rows = duckdb.sql(f"SELECT bucket, count(*) AS n FROM '{run}/predictions.parquet' "
                      f"WHERE epoch = 2 GROUP BY bucket ORDER BY n DESC").fetchall()
    assert rows[0][0] == "0-10%" and sum(n for _, n in rows) == 359


def test_local_backend_and_resume(tmp_path, monkeypatch):
    import loomdist.memory
    calls = []
    monkeypatch.setattr(loomdist.memory, "retain_freed_memory", lambda: calls.append(1))
    args = ["train", str(EXAMPLE), "--run-dir", str(tmp_path), "--run-id", "short",
            "--epochs", "1", "--backend", "local"]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert calls == [1]  # this process trains: it keeps freed memory, as actors do
    run = tmp_path / "short"
    res = CliRunner().invoke(main, [*args, "--resume"])
    assert res.exit_code == 0, res.output
    again = CliRunner().invoke(main, ["train", str(EXAMPLE), "--run-dir", str(run.parent),
                                      "--run-id", "short", "--epochs", "3"])
    assert again.exit_code == 1 and "exists; pass --resume" in again.output


def test_eval_and_report(short_run, tmp_path):
    run, _ = short_run
    out = tmp_path / "m.json"
    res = CliRunner().invoke(main, ["eval", str(run / "model.json"), "digits", "--json",
                                    str(out)])
    assert res.exit_code == 0, res.output
    assert "Quality Score" in res.output and "Accuracy:" in res.output
    assert json.loads(out.read_text())["total_samples"] == 1797
    res = CliRunner().invoke(main, ["report", str(run)])
    assert res.exit_code == 0, res.output
    assert "3 epochs" in res.output and "loss.png" in res.output


@pytest.mark.parametrize("args, code, match", [
    (["train", "nope.toml"], 1, "no config file"),
    (["train", str(EXAMPLE), "--epochs", "0"], 1, "epochs must be an integer >= 1"),
    (["train", str(EXAMPLE), "--optimizer", "lion"], 1, "optimizer 'lion' is unknown"),
    (["eval", "nope.json", "digits"], 1, "no file at"),
    (["report", "."], 1, "no history.parquet"),
])
def test_cli_errors(args, code, match, tmp_path):
    res = CliRunner().invoke(main, args)
    assert res.exit_code == code and match in res.output, res.output


def test_bad_data_stops_before_training(tmp_path):
    cfg = EXAMPLE.read_text().replace('source = "digits"', 'source = "bad.npz"')
    np.savez(tmp_path / "bad.npz", x=np.zeros((10, 64)), y=np.arange(10) + 5)
    (tmp_path / "c.toml").write_text(cfg)
    res = CliRunner().invoke(main, ["train", str(tmp_path / "c.toml"), "--run-dir",
                                    str(tmp_path / "runs")])
    assert res.exit_code == 1 and "label 14 is out of range" in res.output
    assert not (tmp_path / "runs" / "digits" / "checkpoints").exists()
