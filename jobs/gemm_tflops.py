"""GEMM throughput: loomdist's WGSL tiled GEMM vs torch fp32 (TF32 off) on the same machine.

Times C = A @ B for square float32 operands resident on the device: 0.5 s of untimed
dispatches (GPU clocks ramp up from idle), then 3 trials of `repeats` dispatches recorded into
one command buffer (encoded before the clock starts; small sizes get more repeats), each timed
by the wall clock around submit-and-wait and, where the adapter has timestamp queries, by the
GPU's own timestamps; the median trial is reported. torch gets the same warm-up and trials.
Rows of C are spot-checked against numpy float64. Prints one JSON object (also written to
`--json`). `--tiles 128x128x8,64x64x8w` times those tiles besides the automatic one.
Usage: python jobs/gemm_tflops.py [--sizes 1024,4096,8192] [--repeats 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from loomdist.bench import write_json
from loomdist.errors import ConfigError
from loomdist.kernels.gpu.device import get_device
from loomdist.kernels.gpu.gemm import Gemm
from loomdist.kernels.gpu.gemm_codegen import Tile
from loomdist.kernels.gpu.gemm_timing import time_dispatches

CHECK_ROWS = 8  # rows of C compared with numpy float64
WARMUP_S = 0.5  # untimed work before timing, for wgpu and torch alike
TRIALS = 3  # timed submits per size; the median is reported
MAX_REPEAT_FACTOR = 20  # small sizes run up to this many times --repeats


def tflops(n: int, seconds: float) -> float:
    return 2.0 * n**3 / seconds / 1e12


def repeats_for(n: int, repeats: int) -> int:
    """`repeats` at n >= 4096, scaled up ~ (4096/n)^3 below that (at most 20x)."""
    return int(min(max(repeats * (4096 / n) ** 3, repeats), MAX_REPEAT_FACTOR * repeats))


def operands(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)  # (M, K)
    b = rng.standard_normal((n, n), dtype=np.float32)  # (K, N)
    return a, b


def time_wgpu(n: int, repeats: int, tile: Tile | None = None) -> dict:
    """TFLOP/s of one n x n x n GEMM through wgpu (wall clock and timestamps) plus an error."""
    a, b = operands(n)
    try:
        gemm = Gemm(a, b, tile=tile)
    except ConfigError as err:
        return {"n": n, "tile": tile.name if tile else "auto", "error": str(err)}
    gemm.run(1)  # compile, first-touch
    reps = repeats_for(n, repeats)
    times = time_dispatches(gemm.dev, gemm.encode, reps, TRIALS, WARMUP_S)
    ref = a[:CHECK_ROWS].astype(np.float64) @ b.astype(np.float64)
    err = float(np.abs(gemm.read()[:CHECK_ROWS] - ref).max() / np.abs(ref).max())
    out = {"n": n, "tile": gemm.plan.tile.name, "vec4": gemm.plan.vec4, "repeats": reps,
           "seconds": times["wall_s"], "tflops": tflops(n, times["wall_s"]), "max_rel_err": err}
    if "gpu_s" in times:
        out |= {"gpu_seconds": times["gpu_s"], "gpu_tflops": tflops(n, times["gpu_s"]),
                "gpu_best_tflops": tflops(n, times["gpu_min_s"])}
    return out


def _torch_trial(torch, a, b, reps: int) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        torch.mm(a, b)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / reps


def time_torch(n: int, repeats: int) -> dict | None:
    """TFLOP/s of torch.mm in fp32 with TF32 off, or None without torch + CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    a, b = (torch.randn(n, n, device="cuda", dtype=torch.float32) for _ in range(2))
    reps = repeats_for(n, repeats)
    warm = time.perf_counter()
    while time.perf_counter() - warm < WARMUP_S:  # as for wgpu: let the clocks ramp up
        torch.mm(a, b)
        torch.cuda.synchronize()
    seconds = float(np.median([_torch_trial(torch, a, b, reps) for _ in range(TRIALS)]))
    return {"n": n, "repeats": reps, "seconds": seconds, "tflops": tflops(n, seconds),
            "device": torch.cuda.get_device_name(), "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,4096,8192", help="comma-separated n")
    parser.add_argument("--repeats", type=int, default=10, help="timed dispatches per size")
    parser.add_argument("--tiles", default="", help="also time these tiles, e.g. 128x128x8")
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    dev = get_device()
    out = {
        "adapter": dev.adapter_name,
        "adapter_info": dev.info,
        "features": sorted(dev.features),
        "limits": {k: dev.limits[k] for k in ("max-storage-buffer-binding-size",
                                              "max-buffer-size",
                                              "max-compute-workgroup-storage-size")},
        "wgpu": [time_wgpu(n, args.repeats) for n in sizes],
        "wgpu_tiles": [time_wgpu(n, args.repeats, t) for n in sizes
                       for t in map(Tile.parse, filter(None, args.tiles.split(",")))],
        "torch_fp32_no_tf32": [r for n in sizes if (r := time_torch(n, args.repeats))],
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        write_json(out, args.json)


if __name__ == "__main__":
    main()
