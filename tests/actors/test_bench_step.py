"""jobs/bench_step.py runs a tiny configuration on the session's Ray and reports its rates."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

JOBS = Path(__file__).resolve().parents[2] / "jobs"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(JOBS))  # nothing of the script runs on Ray workers
    return importlib.import_module("bench_step")


@pytest.mark.ray
def test_tiny_run_reports_local_and_grid_rates(ray_session, bench):
    cfg = bench.BenchConfig(ticks=20, train_ticks=5, warmup=3, width=8, layers_per_cell=1,
                            window=8)
    report = bench.run(cfg, log=lambda _: None)
    json.dumps(report)
    assert report["actors"] == 4 and report["layers"] == 4
    for key in ("local_ticks_per_s", "grid_ticks_per_s", "grid_train_ticks_per_s",
                "grid_tween_ticks_per_s"):
        assert report[key] > 0


def test_config_errors_and_options(bench):
    with pytest.raises(ValueError, match="ticks must be >= 1"):
        bench.BenchConfig(ticks=0)
    with pytest.raises(ValueError, match="train_ticks must be >= 0"):
        bench.BenchConfig(train_ticks=-1)
    cfg, _ = bench.parse_args(["--quick", "--width", "16", "--engine-residuals"])
    assert (cfg.ticks, cfg.width, cfg.loom_residuals) == (300, 16, False)
    with pytest.raises(SystemExit):
        bench.parse_args(["--window", "0"])


def test_t17_step_bp_report_without_ray(bench, tmp_path, capsys):
    report = bench.t17_bp_report(5, warmup=2)
    assert report["step_bp_outputs_per_s"] > 0 and report["config"]["t17_bp_outputs"] == 5
    out = tmp_path / "bp.json"
    bench.main(["--t17-bp", "3", "--json", str(out)])
    doc = json.loads(out.read_text())
    assert doc["machine"]["ray_cpus"] is None and doc["step_bp_outputs_per_s"] > 0
    assert "Step+BP" in capsys.readouterr().out
    with pytest.raises(ValueError, match="t17-bp must be >= 1"):
        bench.t17_bp_report(0)
