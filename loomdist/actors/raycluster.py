"""Reaching Ray: check a host:port before ray.init, start or join a cluster; the machine
record of a benchmark on it."""

from __future__ import annotations

import os
import socket

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


def cluster_machine_info() -> dict:
    """bench.machine_info with the connected Ray's CPUs and version."""
    from ..bench import machine_info
    return machine_info(ray.cluster_resources().get("CPU"), ray.__version__)
