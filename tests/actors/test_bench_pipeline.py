"""jobs/bench_pipeline.py runs a tiny sweep (1 and 2 stages, 2 micro-batches, a 2-cell grid
of 16-wide layers) on the session's Ray and reports every column it promises."""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
from pathlib import Path

import pytest

from loomdist.errors import ConfigError
from loomdist.memory import retention_wanted

pytestmark = pytest.mark.ray
BENCH = Path(__file__).resolve().parents[2] / "jobs" / "bench_pipeline.py"


def _bench_module(ray):
    spec = importlib.util.spec_from_file_location("loomdist_bench_pipeline", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    ray.cloudpickle.register_pickle_by_value(mod)  # workers cannot import jobs/ by name
    return mod


def test_tiny_sweep_reports_throughput_bubble_and_hops(ray_session):
    bp = _bench_module(ray_session)
    cfg = bp.BenchConfig(stages=(1, 2), micro=(2,), cells=2, layers_per_cell=1, width=16,
                         batch=8, steps=1, warmup=1, hops=4, scaling_s=0.02)
    report = bp.run(cfg, log=lambda _: None)
    json.dumps(report)  # JSON-ready
    assert report["machine"]["ray_version"] == ray_session.__version__
    assert report["machine"]["cores"] >= 1
    assert [(p["stages"], p["micro"]) for p in report["points"]] == [(1, 2), (2, 2)]
    one, two = report["points"]
    assert one["speedup_same_m"] == 1.0 and one["ideal_bubble"] == 0.0
    assert two["ideal_bubble"] == pytest.approx(2 / 8)  # deferred W: 2(K-1)/(3M+2(K-1))
    for p in report["points"]:
        assert p["samples_per_s"] > 0 and p["speedup"] > 0 and p["ceiling"] > 0
        assert p["bubble"] is None or 0.0 <= p["bubble"] < 1.0
    for p in report["points"]:  # faults, CPU time, preemptions per timed step, per stage
        for key in ("faults_per_step", "cpu_ms_per_step", "preempted_per_step"):
            assert len(p[key]) == p["stages"] and all(v >= 0 for v in p[key])
        assert max(p["cpu_ms_per_step"]) > 0  # the stages computed
    if two["per_stage"] is not None:
        assert "minor faults/step" in bp.table(report)
        assert 0 < two["pace"] <= 1 and two["spread"] >= 1  # events matched the programs
        assert all(st["wait_ms"] >= 0 and st["tail_ms"] >= 0 for st in two["per_stage"])
        assert "overhead" in bp.table(report)
    assert [h["rows"] for h in report["hops"]] == [0, 4]
    assert all(h["hop_ms"] > 0 and h["put_ms"] > 0 for h in report["hops"])
    assert set(report["baselines"]) == {"x1", "xK1"} and report["elapsed_s"] > 0
    assert report["config"]["defer_weight_grads"] is True
    assert "ms/step" in bp.table(report) and "weight gradients deferred" in bp.table(report)
    base = report["baseline"]  # timed before and after the sweep; x1 against their mean
    assert base["step_ms"] == pytest.approx((base["step_ms_before"] + base["step_ms_after"]) / 2)
    for p in report["points"]:
        assert p["speedup"] == pytest.approx(base["step_ms"] / p["step_ms"])


def test_rounds_and_schedules_report_medians_and_stages(ray_session):
    bp = _bench_module(ray_session)
    cfg = bp.BenchConfig(stages=(1, 2), micro=(2,), cells=2, layers_per_cell=1, width=16,
                         batch=8, steps=1, warmup=0, hops=2, scaling_s=0.02, rounds=2,
                         schedule="gpipe,zbh1")
    report = bp.run(cfg, log=lambda _: None)
    json.dumps(report)
    assert [(p["schedule"], p["stages"]) for p in report["points"]] == [
        ("gpipe", 1), ("gpipe", 2), ("zbh1", 2)]  # K=1 once: no bubble to shrink
    assert len(report["baseline"]["step_ms_runs"]) == 3  # before, between, after the rounds
    assert report["memory"] == bp.MEMORY[platform.libc_ver()[0] == "glibc"
                                         and retention_wanted()]  # as the workers have it
    runs = report["cpu_scaling_runs"]  # probed as each round starts
    assert len(runs) == 2 and all(set(sc) == {1, 2} for sc in runs)
    assert report["cpu_scaling"][2] == pytest.approx((runs[0][2] + runs[1][2]) / 2)
    for p in report["points"]:
        assert len(p["rounds"]) == 2
        assert sorted(r["cpu_scaling"] for r in p["rounds"]) == sorted(
            sc[p["stages"]] for sc in runs)  # each round's ceiling from its own probe
        for key in ("step_ms", "speedup"):
            assert p[key] == pytest.approx(sum(r[key] for r in p["rounds"]) / 2)
        if p["stages"] == 2 and p["per_stage"] is not None:
            assert len(p["per_stage"]) == 2 and all(0 < st["busy"] <= 1 for st in
                                                     p["per_stage"])
            assert "backward" in p["per_stage"][0]["ms"]
    zb = report["points"][2]
    assert zb["ideal_bubble"] == pytest.approx(1 / 7)  # (K-1)/(3M+K-1)
    assert "zbh1" in bp.table(report) and "mean of 3 runs" in bp.table(report)
    with pytest.raises(ConfigError, match="unknown schedule 'pipedream' in 'gpipe,pipedream'"):
        bp.BenchConfig(schedule="gpipe,pipedream")


def test_rounds_combine_by_median_and_baselines_by_mean(ray_session):
    bp = _bench_module(ray_session)
    rounds = [{"step_ms": v, "speedup": 10 / v, "bubble": b, "per_stage": [{"round": i}]}
              for i, (v, b) in enumerate([(1.0, 0.1), (9.0, None), (2.0, 0.3)])]
    p = bp._median_point(tuple(rounds))
    assert p["step_ms"] == 2.0 and p["speedup"] == 5.0  # medians, not means (4.0, 5.7)
    assert p["bubble"] == pytest.approx(0.2)  # over the rounds that measured one
    assert p["per_stage"] == [{"round": 2}]  # the breakdown of the median-time round
    assert [r["step_ms"] for r in p["rounds"]] == [1.0, 9.0, 2.0]
    assert "rounds" not in bp._median_point(tuple(rounds[:1]))
    base = bp._mean_base([{"step_ms": 4.0, "samples_per_s": 2.0}, {"step_ms": 2.0},
                          {"step_ms": 3.0}])
    assert (base["step_ms"], base["step_ms_before"], base["step_ms_after"]) == (3.0, 4.0, 3.0)
    assert base["samples_per_s"] == pytest.approx(2.0 * 4 / 3)
    assert base["step_ms_runs"] == [4.0, 2.0, 3.0]


def test_options_map_onto_the_config(ray_session):
    bp = _bench_module(ray_session)
    assert bp.parse_args(["--rounds", "3", "--schedule", "1f1b,zbh1"])[0].schedules() == [
        "1f1b", "zbh1"]
    cfg, _ = bp.parse_args(["--quick", "--no-defer", "--batch", "64"])
    assert (cfg.stages, cfg.micro, cfg.batch, cfg.defer_weight_grads) == ((1, 2), (4, 8), 64,
                                                                          False)
    assert bp.parse_args([])[0] == bp.BenchConfig()
    assert bp.BenchConfig().defer_weight_grads is True
    assert bp.BenchConfig().pin_cpus == "process"
    for flag, mode in (("none", None), ("thread", "thread"), ("process", "process")):
        assert bp.parse_args(["--pin", flag])[0].pin_cpus == mode


@pytest.mark.parametrize("kw,match", [
    (dict(width=0), "width must be >= 1"),
    (dict(stages=(4,), cells=2), "4 stages for 2 cells"),
    (dict(micro=(8,), batch=4), "8 micro-batches of a 4-row batch"),
    (dict(schedule="zb"), "unknown schedule 'zb' in 'zb'"),
    (dict(micro=()), "need positive values"),
    (dict(pin_cpus="cores"), "pin_cpus must be"),
])
def test_bad_settings_are_refused(ray_session, kw, match):
    bp = _bench_module(ray_session)
    with pytest.raises(ConfigError, match=match):
        bp.BenchConfig(**kw)
