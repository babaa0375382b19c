"""GEMM throughput: loomdist's WGSL tiled GEMM vs torch fp32 (TF32 off) on the same machine.

Times C = A @ B for square float32 operands with the operands resident on the device
(one warm-up dispatch, then `--repeats` dispatches in one submit), spot-checks rows of C
against numpy, and prints one JSON object (also written to `--json` when given).
Usage: python jobs/gemm_tflops.py [--sizes 1024,4096,8192] [--repeats 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from loomdist.errors import ConfigError
from loomdist.kernels.gpu.device import get_device
from loomdist.kernels.gpu.gemm import Gemm

CHECK_ROWS = 8  # rows of C compared with numpy float64


def tflops(n: int, seconds: float) -> float:
    return 2.0 * n**3 / seconds / 1e12


def time_wgpu(n: int, repeats: int) -> dict:
    """TFLOP/s of one n x n x n GEMM through wgpu, plus a spot-check error."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)  # (M, K)
    b = rng.standard_normal((n, n), dtype=np.float32)  # (K, N)
    try:
        gemm = Gemm(a, b)
    except ConfigError as err:
        return {"n": n, "error": str(err)}
    gemm.run(1)  # compile, first-touch
    t = time.perf_counter()
    gemm.run(repeats)
    seconds = (time.perf_counter() - t) / repeats
    ref = a[:CHECK_ROWS].astype(np.float64) @ b.astype(np.float64)
    err = float(np.abs(gemm.read()[:CHECK_ROWS] - ref).max() / np.abs(ref).max())
    return {"n": n, "seconds": seconds, "tflops": tflops(n, seconds), "max_rel_err": err}


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
    torch.mm(a, b)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        torch.mm(a, b)
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1e3 / repeats
    return {"n": n, "seconds": seconds, "tflops": tflops(n, seconds),
            "device": torch.cuda.get_device_name()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,4096,8192", help="comma-separated n")
    parser.add_argument("--repeats", type=int, default=10, help="timed dispatches per size")
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    dev = get_device()
    out = {
        "adapter": dev.adapter_name,
        "limits": {k: dev.limits[k] for k in ("max-storage-buffer-binding-size",
                                              "max-buffer-size")},
        "wgpu": [time_wgpu(n, args.repeats) for n in sizes],
        "torch_fp32_no_tf32": [r for n in sizes if (r := time_torch(n, args.repeats))],
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
