"""The click CLI, through CliRunner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from loomdist.cli import main
from tests.loomfix import FIXTURES


def test_help_everywhere():
    r = CliRunner()
    for args in ([], ["layers"], ["inspect"], ["bench"], ["bench", "layers"],
                 ["bench", "train"], ["train"], ["eval"], ["report"]):
        res = r.invoke(main, [*args, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output


def test_layers_lists_registry():
    res = CliRunner().invoke(main, ["layers", "--json"])
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert "dense" in data["layers"]
    assert any(f["loom_name"] == "InitDenseLayer" for f in data["init_functions"])
    assert "InitDenseLayer" in CliRunner().invoke(main, ["layers"]).output


def test_inspect_model():
    res = CliRunner().invoke(main, ["inspect", str(FIXTURES / "dense_scaled_relu.model.json")])
    assert res.exit_code == 0, res.output
    assert "dense_scaled_relu: 1x1x2 grid" in res.output and "59 parameters" in res.output


def test_inspect_errors(tmp_path):
    r = CliRunner()
    res = r.invoke(main, ["inspect", str(tmp_path / "none.json")])
    assert res.exit_code == 1 and "no file at" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    res = r.invoke(main, ["inspect", str(bad)])
    assert res.exit_code == 1 and "not valid JSON" in res.output
    res = r.invoke(main, ["inspect", str(FIXTURES / "dense_scaled_relu.model.json"), "--id", "x"])
    assert res.exit_code == 2 and "no model 'x'" in res.output


def test_bench_layers_quick_writes_json(tmp_path):
    out = tmp_path / "b.json"
    res = CliRunner().invoke(main, ["bench", "layers", "--quick", "--only", "dense",
                                    "--repeats", "1", "--warmup", "0", "--json", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    (r,) = report["results"]
    assert r["name"] == "dense" and r["fwd_bwd_ms"] > 0 and r["batch"] == 512


def test_bench_unknown_config():
    res = CliRunner().invoke(main, ["bench", "layers", "--only", "warp"])
    assert res.exit_code == 2 and "unknown config" in res.output


def test_bench_train_json(tmp_path):
    out = tmp_path / "t.json"
    res = CliRunner().invoke(main, ["bench", "train", "--epochs", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    assert report["samples"] == 1797 and report["loomdist_samples_per_s"] > 0


def test_digits_example_uses_the_benchmarked_network():
    from pathlib import Path

    import pytest

    from loomdist.bench_train import DIGITS_NETWORK
    tomllib = pytest.importorskip("tomllib")
    example = Path(__file__).resolve().parents[1] / "examples" / "digits.toml"
    assert tomllib.loads(example.read_text())["network"] == DIGITS_NETWORK


def test_bench_configs_include_softmax_and_parallel():
    from loomdist.bench import readme_configs
    names = [c.name for c in readme_configs(quick=True)]
    assert {"softmax_standard", "softmax_sparse", "parallel_4branch"} <= set(names)
    assert names[:5] == ["dense", "conv2d", "multi_head_attention", "rnn", "lstm"]
