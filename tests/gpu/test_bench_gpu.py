"""`loomdist bench layers --backend wgpu` and jobs/bench_gpu_layers.py run on any adapter."""

import importlib.util
import json
from pathlib import Path

import pytest

wgpu = pytest.importorskip("wgpu")
if wgpu.gpu.request_adapter_sync(power_preference="high-performance") is None:
    pytest.skip("no wgpu adapter on this machine", allow_module_level=True)

from click.testing import CliRunner  # noqa: E402

from loomdist import bench as B  # noqa: E402
from loomdist.cli import main  # noqa: E402
from tests.gpu._grids import LN, SW, D  # noqa: E402

pytestmark = pytest.mark.gpu
JOB = Path(__file__).resolve().parents[2] / "jobs" / "bench_gpu_layers.py"


def test_run_on_wgpu_times_only_gpu_kinds():
    configs = [B.BenchConfig("dense", D(8, 8, "tanh"), 4, 8, 2),
               B.BenchConfig("swiglu", SW(8, 4), 4, 8, 1),
               B.BenchConfig("norm", LN(8), 4, 8, 1)]
    report = B.run(configs, repeats=1, warmup=0, threads=1, backend="wgpu")
    assert report["backend"] == "wgpu"
    assert [r["name"] for r in report["results"]] == ["dense", "swiglu", "norm"]
    for r in report["results"]:
        assert r["forward_ms"] > 0 and r["fwd_bwd_ms"] > 0 and r["extra"]["backend"] == "wgpu"


def test_gpu_configs_filters_kinds_without_gpu_modules(monkeypatch):
    from loomdist.kernels.gpu import layers as registry
    monkeypatch.setattr(registry, "supported", lambda: ["parallel"])
    configs = B.readme_configs(quick=True)
    assert B.gpu_configs(configs) == []


def test_cli_bench_layers_backend_wgpu(tmp_path):
    out = tmp_path / "gpu.json"
    res = CliRunner().invoke(main, ["bench", "layers", "--backend", "wgpu", "--quick", "--only",
                                    "parallel_4branch", "--repeats", "1", "--warmup", "0",
                                    "--threads", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    assert report["backend"] == "wgpu"
    assert [r["name"] for r in report["results"]] == ["parallel_4branch"]


def test_job_script_writes_json(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_gpu_layers", JOB)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    out = tmp_path / "job.json"
    report = job.main(["--quick", "--only", "parallel_4branch", "--repeats", "1", "--warmup",
                       "0", "--threads", "1", "--torch-device", "cpu", "--json", str(out)])
    (row,) = report["results"]
    assert row["wgpu"]["fwd_bwd_ms"] > 0 and row["loomdist_cpu"]["fwd_bwd_ms"] > 0
    if row["torch"] is not None:  # torch installed
        assert row["wgpu_over_torch_fwd_bwd"] > 0
    assert json.loads(out.read_text())["benchmark"] == "gpu_layers"
