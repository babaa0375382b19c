"""jobs/tween_sparta.py --merge: per (config, mode) the last file with enough runs wins, the
source is recorded, and what is missing is listed (exit status 1)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

JOB = Path(__file__).resolve().parents[2] / "jobs" / "tween_sparta.py"


def _job():
    spec = importlib.util.spec_from_file_location("loomdist_tween_sparta", JOB)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _doc(path, command, runs):
    """A result file with summary rows {(config, mode): (mean, n)}."""
    summary: dict = {}
    for (config, mode), (mean, n) in runs.items():
        summary.setdefault(config, {})[mode] = {
            "avg_accuracy": {"mean": mean, "std_dev": 1.0, "n": n}, "loom_mean_std": [50, 2],
            "outputs_per_sec_mean": 1000.0}
    path.write_text(json.dumps({"command": command, "machine": {"cpus": 2},
                                "summary": summary}))
    return path


def test_merge_takes_the_last_complete_summary(tmp_path):
    job = _job()
    a = _doc(tmp_path / "a.json", "first", {("Dense-3L", "StepBP"): (60.0, 10),
                                            ("Attn-5L", "NormalBP"): (40.0, 10),
                                            ("Dense-5L", "StepBP"): (55.0, 4)})
    b = _doc(tmp_path / "b.json", "second", {("Attn-5L", "NormalBP"): (53.0, 10),
                                             ("Dense-3L", "StepBP"): (61.0, 3)})
    doc = job.merge([a, b], seeds=10)
    assert doc["summary"]["Dense-3L"]["StepBP"]["avg_accuracy"]["mean"] == 60.0  # b: 3 runs
    assert doc["summary"]["Attn-5L"]["NormalBP"]["avg_accuracy"]["mean"] == 53.0  # b wins
    assert doc["sources"]["Attn-5L"]["NormalBP"]["command"] == "second"
    assert "Dense-5L StepBP" in doc["missing"]  # 4 runs < 10
    assert list(doc["summary"]) == ["Dense-3L", "Attn-5L"]  # LOOM's table order
    out = tmp_path / "m.json"
    assert job.main(["--merge", str(a), str(b), "--json", str(out)]) == 1  # incomplete
    assert json.loads(out.read_text())["merged_from"] == ["a.json", "b.json"]


def test_merged_repository_table_is_complete():
    """docs/benchmarks/tween-sparta.json holds all 15 configs x 3 modes with 10 seeds."""
    doc = json.loads((JOB.parents[1] / "docs/benchmarks/tween-sparta.json").read_text())
    assert doc["missing"] == [] and doc["seeds"] == 10
    assert len(doc["summary"]) == 15
    for config, modes in doc["summary"].items():
        assert set(modes) == {"NormalBP", "StepBP", "StepTweenChain"}, config
        assert all(m["avg_accuracy"]["n"] >= 10 for m in modes.values()), config
