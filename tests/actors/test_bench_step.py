"""jobs/bench_step.py runs a tiny configuration on the session's Ray and reports its rates."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
BENCH = Path(__file__).resolve().parents[2] / "jobs" / "bench_step.py"


def _bench_module(ray):
    spec = importlib.util.spec_from_file_location("loomdist_bench_step", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    ray.cloudpickle.register_pickle_by_value(mod)
    return mod


def test_tiny_run_reports_local_and_grid_rates(ray_session):
    bs = _bench_module(ray_session)
    cfg = bs.BenchConfig(ticks=20, train_ticks=5, warmup=3, width=8, layers_per_cell=1,
                         window=8)
    report = bs.run(cfg, log=lambda _: None)
    json.dumps(report)
    assert report["actors"] == 4 and report["layers"] == 4
    for key in ("local_ticks_per_s", "grid_ticks_per_s", "grid_train_ticks_per_s"):
        assert report[key] > 0


def test_config_errors():
    bs = _bench_module(pytest.importorskip("ray"))
    with pytest.raises(ValueError, match="ticks must be >= 1"):
        bs.BenchConfig(ticks=0)
    with pytest.raises(ValueError, match="train_ticks must be >= 0"):
        bs.BenchConfig(train_ticks=-1)
    cfg, _ = bs.parse_args(["--quick", "--width", "16", "--engine-residuals"])
    assert (cfg.ticks, cfg.width, cfg.loom_residuals) == (300, 16, False)
