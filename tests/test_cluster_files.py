"""cluster/ and jobs/bench_pipeline.py: the YAML files parse (ray up's own checks for the
on-premise config), name jobs/train.py, and the benchmark's command line works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "jobs" / "bench_pipeline.py"


def _load(name: str) -> dict:
    return yaml.safe_load((REPO / "cluster" / name).read_text())


def test_ray_up_config_passes_ray_ups_checks():
    pytest.importorskip("ray")
    from ray.autoscaler._private.util import prepare_config, validate_config
    raw = _load("ray-up.yaml")
    assert raw["provider"]["type"] == "local"
    assert raw["provider"]["head_ip"] and raw["provider"]["worker_ips"]
    config = prepare_config(raw)  # what `ray up` does before validating
    validate_config(config)
    assert "PLACEHOLDER" in (REPO / "cluster" / "ray-up.yaml").read_text()
    assert any("pip install" in c and "loomdist" in c for c in raw["setup_commands"])
    assert any("RAY_AUTH_MODE=token" in c for c in raw["head_start_ray_commands"])


def test_rayjob_runs_jobs_train_on_a_ray_cluster():
    job = _load("rayjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    entry = job["spec"]["entrypoint"]
    assert "jobs/train.py examples/digits.toml" in entry
    assert "--stages 2" in entry and "--microbatches 4" in entry
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"].startswith("2.")
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    workers = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    for c in (head, workers):
        assert c["image"] and c["resources"]["limits"]["cpu"]


def test_readme_documents_every_path():
    text = (REPO / "cluster" / "README.md").read_text()
    for needle in ("RAY_AUTH_MODE=token", "~/.ray/auth_token", "ray start --head",
                   "ray job submit", "--working-dir .", "python jobs/train.py",
                   "ray up cluster/ray-up.yaml", "cluster/rayjob.yaml",
                   "jobs/bench_pipeline.py", "RAY_AUTH_TOKEN"):
        assert needle in text, needle


def test_bench_help_lists_the_sweep_options():
    res = subprocess.run([sys.executable, str(BENCH), "--help"], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr
    for opt in ("--stages", "--micro", "--quick", "--json", "--cpus-per-actor", "--address"):
        assert opt in res.stdout, opt


@pytest.mark.parametrize("args, match", [
    (["--stages", "4", "--cells", "2"], "4 stages for 2 cells; use --cells >= 4"),
    (["--micro", "64", "--batch", "8"], "64 micro-batches of a 8-row batch"),
    (["--schedule", "zigzag"], "unknown schedule 'zigzag'"),
])
def test_bench_rejects_impossible_sweeps_before_starting_ray(args, match):
    res = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert res.returncode == 2 and match in res.stderr, res.stderr[-2000:]
    assert "Started a local Ray" not in res.stderr
