"""README layer configs, forward and forward+backward: loomdist wgpu vs torch CUDA fp32 vs
loomdist CPU, one JSON object out.

Each config runs on the wgpu backend when its kind (and branches) has GPU modules, on torch
CUDA in float32 with TF32 off when torch.cuda is available and the config has a torch twin
(loomdist/bench_torch.py), and on loomdist's CPU backend unless --skip-cpu. Times are median
wall-clock ms; GPU times wait for the device (device-resident input, no readback).
Usage: python jobs/bench_gpu_layers.py [--quick] [--only dense ...] [--repeats 10]
       [--warmup 3] [--skip-cpu] [--torch-device cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict

from loomdist import bench as B
from loomdist.bench_torch import _modules, has_twin


def torch_twin(cfg, device: str, repeats: int, warmup: int) -> dict | None:
    """{"forward_ms", "fwd_bwd_ms", "device"} of the torch twin in float32 on `device`
    ("cuda", TF32 off; "cpu" only smoke-tests this path), or None without torch/CUDA/twin."""
    try:
        import torch
    except ImportError:
        return None
    if (device == "cuda" and not torch.cuda.is_available()) or not has_twin(cfg):
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with torch.device(device):  # parameters, RoPE tables and inputs are created there
        module, shape = _modules(torch, cfg)
        x = torch.randn(*shape, requires_grad=True)
    params = list(module.parameters())
    dy = torch.ones_like(module(x))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def fwd():
        with torch.no_grad():
            module(x)
        sync()

    def both():
        module(x).backward(dy)
        for p in [x, *params]:
            p.grad = None
        sync()

    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    return {"forward_ms": B.median_ms(fwd, repeats, warmup),
            "fwd_bwd_ms": B.median_ms(both, repeats, warmup), "device": name}


def run_config(cfg, args) -> dict:
    row = {"name": cfg.name, "batch": cfg.batch, "note": cfg.note}
    if B.gpu_configs([cfg]):
        row["wgpu"] = asdict(B.bench_wgpu(cfg, args.repeats, args.warmup))
    row["torch"] = torch_twin(cfg, args.torch_device, args.repeats, args.warmup)
    if not args.skip_cpu:
        row["loomdist_cpu"] = asdict(B.bench_loomdist(cfg, args.repeats, args.warmup))
    gpu, ref = row.get("wgpu"), row["torch"]
    if gpu and ref:
        row["wgpu_over_torch_fwd_bwd"] = gpu["fwd_bwd_ms"] / ref["fwd_bwd_ms"]
    return row


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="README shapes at 1/8 of the batch")
    p.add_argument("--only", nargs="*", default=None, help="config names")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.add_argument("--torch-device", default="cuda", help="cuda (default) or cpu (smoke)")
    p.add_argument("--skip-cpu", action="store_true", help="do not time loomdist on the CPU")
    p.add_argument("--json", default=None, help="also write the report here")
    args = p.parse_args(argv)
    configs = [c for c in B.readme_configs(args.quick) if not args.only or c.name in args.only]
    threads = B.set_threads(args.threads)
    report = {"benchmark": "gpu_layers", "threads": threads, "repeats": args.repeats,
              "warmup": args.warmup, "quick": args.quick, "machine": platform.machine(),
              "python": platform.python_version(),
              "results": [run_config(c, args) for c in configs]}
    print(json.dumps(report, indent=2))
    if args.json:
        B.write_json(report, args.json)
    return report


if __name__ == "__main__":
    main()
