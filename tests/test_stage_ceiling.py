"""jobs/stage_ceiling.py: the pipeline's ceiling from the stages' own work, no Ray."""

import json
import os
import subprocess
import sys

import pytest

from loomdist.errors import ConfigError

JOB = os.path.join(os.path.dirname(__file__), "..", "jobs", "stage_ceiling.py")


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, JOB, *args], capture_output=True, text=True,
                          timeout=timeout)


def test_stage_ceiling_times_stages_together_between_baselines(tmp_path):
    out = tmp_path / "c.json"
    res = _run("--stages", "2", "--micro", "2", "--cells", "2", "--layers-per-cell", "1",
               "--width", "16", "--batch", "8", "--rounds", "2", "--steps", "2",
               "--warmup", "0", "--json", str(out))
    assert res.returncode == 0, res.stderr
    report = json.loads(out.read_text())
    assert len(report["baselines_ms"]) == 3  # before, between and after the rounds
    for k, row in enumerate(report["rounds"]):
        assert len(row["stage_ms"]) == len(row["stage_cpu_ms"]) == 2
        assert len(set(row["cpus"])) == 2  # one CPU per stage process
        base = (report["baselines_ms"][k] + report["baselines_ms"][k + 1]) / 2
        assert row["baseline_ms"] == base
        assert abs(row["ceiling_x1"] - base / max(row["stage_ms"])) < 1e-9
        assert abs(row["concurrency"] - sum(base / 2 / s for s in row["stage_ms"]) / 2) < 1e-9
    assert "ceiling x1 (median of 2 rounds)" in res.stdout


def test_stage_ceiling_rejects_unequal_stages_before_starting():
    res = _run("--stages", "3", "--cells", "4", timeout=120)
    assert res.returncode == 2
    assert "4 cells do not split into 3 equal stages" in res.stderr
    res = _run("--stages", str(len(os.sched_getaffinity(0)) * 2), "--cells",
               str(len(os.sched_getaffinity(0)) * 2), timeout=120)
    assert res.returncode == 2 and "CPUs" in res.stderr


def _bench_module():
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "jobs", "bench_pipeline.py")
    spec = importlib.util.spec_from_file_location("loomdist_bench_pipeline_plain", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_bench_pipeline_scores_the_x1_its_plain_stages_allow():
    bp = _bench_module()
    p = {"stages": 2, "micro": 4, "step_ms": 10.0, "ideal_bubble": 0.25}
    base, same_m, scaling = {"step_ms": 30.0}, {4: {"step_ms": 20.0}}, {2: 1.8}
    scored = bp._score(p, base, same_m, scaling, {(2, 4): [6.0, 7.5]})
    assert scored["plain_stage_ms"] == [6.0, 7.5]
    assert scored["stage_ceiling"] == 30.0 / 7.5 * 0.75  # the slowest stage bounds it
    assert "stage_ceiling" not in bp._score(p, base, same_m, scaling)


def test_bench_pipeline_times_its_stages_as_plain_processes():
    bp = _bench_module()
    cfg = bp.BenchConfig(stages=(1, 2), micro=(2,), cells=2, layers_per_cell=1, width=16,
                         batch=8, steps=1, warmup=0, stage_ceiling=True, timeout_s=60)
    lines = []
    got = bp.plain_stages(cfg, log=lines.append)
    assert list(got) == [(2, 2)] and len(got[2, 2]) == 2 and min(got[2, 2]) > 0
    assert lines and "K=2 M=2" in lines[0]


def test_bench_pipeline_stage_ceiling_needs_equal_stages_and_this_machine():
    bp = _bench_module()
    with pytest.raises(ConfigError, match="3 cells do not split into 2"):
        bp.BenchConfig(stages=(1, 2), micro=(2,), cells=3, stage_ceiling=True)
    bp.BenchConfig(stages=(1, 2), micro=(2,), cells=3)  # fine without it
    with pytest.raises(SystemExit):
        bp.parse_args(["--stage-ceiling", "--address", "auto"])


def test_a_failed_stage_process_is_an_error_at_once():
    bp = _bench_module()
    sys.path.insert(0, os.path.dirname(JOB))
    import stage_ceiling as sc

    cfg = bp.BenchConfig(stages=(1,), micro=(1,), cells=1, layers_per_cell=1, width=16,
                         batch=8, steps=1, warmup=0, timeout_s=120)
    with pytest.raises(RuntimeError, match="stage processes \\[0\\] failed"):
        sc.run_together(cfg, [(range(5, 6), True, sc.cpus_for(1)[0])], 1)  # no layer 5


def test_stage_processes_leave_this_processs_thread_settings_alone():
    bp = _bench_module()
    before = {v: os.environ.get(v) for v in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    bp.plain_stages(bp.BenchConfig(stages=(2,), micro=(1,), cells=2, layers_per_cell=1,
                                   width=8, batch=4, steps=1, warmup=0, stage_ceiling=True,
                                   timeout_s=120), log=lambda _: None)
    assert {v: os.environ.get(v) for v in before} == before
