"""Layer benchmarks at LOOM's README configs, optionally against PyTorch in the same process;
and what every benchmark report shares: the machine it ran on, JSON written atomically."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .layers import LAYERS
from .network import Network
from .threads import set_threads


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark: a grid of `layers` copies of `spec` fed (batch, in_features)."""

    name: str
    spec: object
    batch: int
    in_features: int
    layers: int = 1
    note: str = ""

    @property
    def kind(self) -> str:
        return self.spec.kind


def readme_configs(quick: bool = False) -> list[BenchConfig]:
    """LOOM's README configs, then softmax variants and a 4-branch parallel layer.

    quick: the same shapes at 1/8 of the batch (for smoke runs and CI).
    """
    q = 8 if quick else 1
    L = LAYERS
    configs = [
        BenchConfig("dense", L["dense"].Spec(64, 64, "leaky_relu"), 4096 // q, 64, 80,
                    "4x4 grid, 5 layers/cell, width 64"),
        BenchConfig("conv2d", L["conv2d"].Spec(64, 64, 64, 128, 3, 1, 1, "leaky_relu"),
                    32 // q, 64 * 64 * 64, 1, "64->128 channels, 64x64, 3x3, pad 1"),
        BenchConfig("multi_head_attention", L["multi_head_attention"].Spec(512, 8, 256),
                    32 // q, 256 * 512, 1, "seq 256, d_model 512, 8 heads"),
        BenchConfig("rnn", L["rnn"].Spec(128, 256, 128), 64 // q, 128 * 128, 1,
                    "seq 128, 128->256"),
        BenchConfig("lstm", L["lstm"].Spec(128, 256, 128), 64 // q, 128 * 128, 1,
                    "seq 128, 128->256"),
    ]
    sm = L["softmax"].Spec
    for name, spec in (("standard", sm()), ("grid", sm("grid", rows=10, cols=100)),
                       ("temperature", sm("temperature", 0.5)), ("sparse", sm("sparse")),
                       ("entmax", sm("entmax", entmax_alpha=1.5)),
                       ("masked", sm("masked", mask=(True, False) * 500))):
        configs.append(BenchConfig(f"softmax_{name}", spec, 4096 // q, 1000, 1,
                                   "[4096, 1000] per-sample distributions"))
    d = L["dense"].Spec
    configs.append(BenchConfig(
        "parallel_4branch", L["parallel"].Spec(
            (d(512, 512, "tanh"), d(512, 512, "relu"), d(512, 512, "sigmoid"),
             d(512, 512, "leaky_relu")), "concat"), 1024 // q, 512, 1,
        "4 dense branches 512->512, concat"))
    return configs


@dataclass
class BenchResult:
    name: str
    batch: int
    forward_ms: float
    fwd_bwd_ms: float
    first_call_ms: float  # includes Numba JIT (or cache load) on first use
    torch_forward_ms: float | None = None
    torch_fwd_bwd_ms: float | None = None
    ratio_fwd_bwd: float | None = None  # loomdist / torch (lower is better; goal <= 1.25)
    extra: dict = field(default_factory=dict)


def build_network(cfg: BenchConfig, seed: int = 0, backend: str = "cpu") -> Network:
    """A 1 x 1 x `layers` grid (dense uses LOOM's 4 x 4 x 5 when layers == 80)."""
    rows, cols, lpc = (4, 4, 5) if cfg.layers == 80 else (1, 1, cfg.layers)
    net = Network(0, rows, cols, lpc, batch_size=cfg.batch, backend=backend)
    spec = cfg.spec
    rng = np.random.default_rng(seed)
    for i in range(net.total_layers):
        net.set_layer(*net.coords(i), spec, rng=rng)
    return net


def median_ms(fn, repeats: int, warmup: int) -> float:
    """Median wall time of fn() in ms over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def gpu_configs(configs: list[BenchConfig]) -> list[BenchConfig]:
    """The configs whose kind (and branches) the wgpu backend runs."""
    from .kernels.gpu.bench import runs_on_gpu
    return [c for c in configs if runs_on_gpu(c.spec)]


def bench_wgpu(cfg: BenchConfig, repeats: int, warmup: int) -> BenchResult:
    """`cfg` on the wgpu backend, device-resident (see kernels/gpu/bench.py)."""
    from .kernels.gpu.bench import time_network
    net = build_network(cfg, backend="wgpu")
    x = np.random.default_rng(1).standard_normal((cfg.batch, cfg.in_features)).astype(np.float32)
    first, fwd, both = time_network(net, x, median_ms, repeats, warmup)
    return BenchResult(cfg.name, cfg.batch, fwd, both, first,
                       extra={"backend": "wgpu", "adapter": net.runner.device.adapter_name})


def bench_loomdist(cfg: BenchConfig, repeats: int, warmup: int) -> BenchResult:
    net = build_network(cfg)
    x = np.random.default_rng(1).standard_normal((cfg.batch, cfg.in_features)).astype(np.float32)
    t = time.perf_counter()
    y = net.forward(x)
    first = (time.perf_counter() - t) * 1e3
    dy = np.ones_like(y)

    def fwd_bwd():
        net.forward(x)
        net.backward(dy)
        net.zero_grad()

    fwd = median_ms(lambda: net.forward(x), repeats, warmup)
    both = median_ms(fwd_bwd, repeats, warmup)
    return BenchResult(cfg.name, cfg.batch, fwd, both, first)


def run(configs: list[BenchConfig], vs_torch: bool = False, repeats: int = 5, warmup: int = 2,
        threads: int | None = None, progress=None, backend: str = "cpu") -> dict:
    """Benchmark each config; returns a JSON-ready dict with environment and results.

    backend "wgpu": only the configs the GPU runs (gpu_configs), timed on the device.
    """
    from .bench_torch import bench_torch, has_twin
    n = set_threads(threads)
    bench_one = bench_wgpu if backend == "wgpu" else bench_loomdist
    configs = gpu_configs(configs) if backend == "wgpu" else configs
    # every loomdist config first, then torch: torch's OpenMP threads keep spinning after its
    # calls and would steal the cores from the next loomdist measurement
    results = [bench_one(cfg, repeats, warmup) for cfg in configs]
    for cfg, r in zip(configs, results):
        if vs_torch and has_twin(cfg):
            r.torch_forward_ms, r.torch_fwd_bwd_ms = bench_torch(cfg, repeats, warmup, n)
            r.ratio_fwd_bwd = r.fwd_bwd_ms / r.torch_fwd_bwd_ms
        if progress:
            progress(r)
    return {"benchmark": "layers", "backend": backend, "threads": n, "repeats": repeats,
            "warmup": warmup,
            "machine": platform.machine(), "processor": platform.processor(),
            "python": platform.python_version(), "numpy": np.__version__,
            "configs": [asdict(c) for c in configs], "results": [asdict(r) for r in results]}


def write_json(report: dict, path) -> Path:
    """Write `report` as indented JSON, atomically (a reader never sees half a file);
    numpy arrays and scalars become lists and numbers, anything else not JSON its str()."""
    from .io.loom_json import write_atomic
    path = Path(path)
    write_atomic(path, json.dumps(report, indent=2, default=_jsonable).encode())
    return path


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v.item() if isinstance(v, np.generic) else str(v)


def machine_info(ray_cpus: float | None = None, ray_version: str | None = None) -> dict:
    """What a benchmark report records of the machine it ran on: cores, CPU model, Ray's CPUs
    and version (a Ray benchmark passes them: this plane does not import Ray), versions,
    BLAS, load, time."""
    from threadpoolctl import threadpool_info
    model = next((ln.split(":", 1)[1].strip() for ln in _read("/proc/cpuinfo").splitlines()
                  if ln.startswith("model name")), platform.processor())
    return {"cores": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
            "cpu_model": model, "ray_cpus": ray_cpus, "ray_version": ray_version,
            "numpy_version": np.__version__, "python": platform.python_version(),
            "platform": platform.platform(),
            "blas": [f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info()
                     if i.get("user_api") == "blas"],
            "loadavg": os.getloadavg(),  # other work on the machine skews every number
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
