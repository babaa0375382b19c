"""Reaching Ray: check a host:port before ray.init, start or join a cluster; what a
benchmark records of the machine."""

from __future__ import annotations

import os
import platform
import socket
import time
from pathlib import Path

import numpy as np
import ray

from ..errors import ConfigError


def check_address(address) -> None:
    """Raise ConfigError when a host:port address has nothing listening (before ray.init)."""
    if address in (None, "auto", "local") or str(address).startswith("ray://"):
        return
    host, _, port = str(address).rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as e:
        raise ConfigError(f"DistributedTrainer: cannot reach a Ray cluster at {address!r} "
                          f"({e}); start one (ray start --head) or pass --address auto / none "
                          f"for a local Ray") from e


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to Ray (start a local instance when address is None); True when this call
    started or joined it, so the caller shuts it down."""
    if ray.is_initialized():
        return False
    if address is None:
        ray.init(address="local", num_cpus=num_cpus or len(os.sched_getaffinity(0)),
                 include_dashboard=False)
        return True
    try:
        ray.init(address=address)
    except ConnectionError as e:
        raise ConfigError(f"DistributedTrainer: cannot reach a Ray cluster at {address!r} "
                          f"({e}); start one (ray start --head) or omit the address for a "
                          f"local Ray") from e
    return True


def machine_info(ray_cpus: object = "cluster") -> dict:
    """What a benchmark report records of the machine it ran on: cores, CPU model, Ray's CPUs
    (`ray_cpus`, "cluster": ask the connected Ray), versions, BLAS, load, time."""
    from threadpoolctl import threadpool_info
    if ray_cpus == "cluster":
        ray_cpus = ray.cluster_resources().get("CPU")
    model = next((ln.split(":", 1)[1].strip() for ln in _read("/proc/cpuinfo").splitlines()
                  if ln.startswith("model name")), platform.processor())
    return {"cores": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
            "cpu_model": model, "ray_cpus": ray_cpus, "ray_version": ray.__version__,
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
