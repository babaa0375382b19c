"""jobs/stage_ceiling.py: the pipeline's ceiling from the stages' own work, no Ray."""

import json
import os
import subprocess
import sys

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
