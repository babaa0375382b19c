"""`loomdist blueprint` and `loomdist telemetry record|replay|viz` through CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import loomdist
from loomdist.cli import main
from loomdist.tween import read_recording
from tests.loomfix import FIXTURES

MODEL = str(FIXTURES / "dense_stack_all_activations.model.json")


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_help():
    for args in (["blueprint"], ["telemetry"], ["telemetry", "record"],
                 ["telemetry", "replay"], ["telemetry", "viz"]):
        res = _run(*args, "--help")
        assert res.exit_code == 0 and "Usage" in res.output


def test_blueprint_prints_loom_json(tmp_path):
    res = _run("blueprint", MODEL)
    assert res.exit_code == 0, res.output
    want = loomdist.load_model(MODEL, "dense_stack_all_activations").blueprint(
        "dense_stack_all_activations")
    assert res.output == want.to_json() + "\n"
    res = _run("blueprint", MODEL, "dense_stack_all_activations", "--compact", "--out",
               tmp_path / "bp.json")
    assert res.exit_code == 0
    assert (tmp_path / "bp.json").read_text() == want.to_json(indent=False) + "\n"
    res = _run("blueprint", MODEL, "nope")
    assert res.exit_code != 0 and "no model 'nope'" in res.output
    res = _run("blueprint", tmp_path / "missing.json")
    assert res.exit_code == 1 and "no file at" in res.output


@pytest.mark.parametrize("mode", ["forward", "step"])
def test_record_replay_viz(tmp_path, mode):
    rec = tmp_path / "rec.parquet"
    res = _run("telemetry", "record", MODEL, rec, "--ticks", 12, "--mode", mode, "--backward",
               "--values", 4)
    assert res.exit_code == 0, res.output
    table = read_recording(rec)
    assert table.num_rows == 12 * 5 * 2 and set(table.column("mode").to_pylist()) == \
        {"normal" if mode == "forward" else "step"}
    res = _run("telemetry", "replay", rec, "--json", tmp_path / "act.json")
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("[dense_stack")]
    assert len(lines) == 120 and "[FWD] Grid[0,0,0] (dense): avg=" in lines[0]
    act = json.loads((tmp_path / "act.json").read_text())
    assert act["total_events"] == 120 and act["model_id"] == "dense_stack_all_activations"
    res = _run("telemetry", "viz", rec, "--png", tmp_path / "a.png", "--html",
               tmp_path / "a.html", "--metric", "active")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert "(0,0,4) dense" in (tmp_path / "a.html").read_text()


def test_cli_errors(tmp_path):
    res = _run("telemetry", "viz", tmp_path / "x.parquet")
    assert res.exit_code != 0 and "pass --png FILE and/or --html FILE" in res.output
    res = _run("telemetry", "viz", tmp_path / "x.parquet", "--png", tmp_path / "a.png")
    assert res.exit_code == 1 and "read_recording: no file at" in res.output
    rec = tmp_path / "r.parquet"
    assert _run("telemetry", "record", MODEL, rec, "--ticks", 2).exit_code == 0
    res = _run("telemetry", "viz", rec, "--png", tmp_path / "a.svg")
    assert res.exit_code == 1 and "should end in .png" in res.output


def test_readme_telemetry_snippet_runs(tmp_path, monkeypatch, capsys):
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    tour = re.search(r"## Quick tour\n\n```python\n(.*?)```", readme, re.S).group(1)
    snippet = re.search(r"### Telemetry\n\n```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(tour, "README quick tour", "exec"), scope)
    exec(compile(snippet, "README telemetry", "exec"), scope)
    out = capsys.readouterr().out
    assert '"id": "my_model"' in out and "[FWD] Grid[0,0,1] (dense): avg=" in out
    assert (tmp_path / "act.parquet").is_file()
