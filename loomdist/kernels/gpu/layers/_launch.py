"""Launch geometry shared by the layer kernels: one invocation per item, 64 per workgroup."""

from __future__ import annotations

WG = 64  # @workgroup_size of every 1-D entry point in the layer shaders
MAX_GROUPS = 65535  # WebGPU's default maxComputeWorkgroupsPerDimension


def groups(items: int) -> tuple[int, int, int]:
    """Workgroups covering `items` invocations; 2-D past 65535 groups.

    The shaders rebuild the flat index as gid.x + gid.y * (num_workgroups.x * 64) and return
    when it is >= items, so the overshoot of the last row of groups is harmless.
    """
    n = max(1, -(-items // WG))
    if n <= MAX_GROUPS:
        return n, 1, 1
    return MAX_GROUPS, -(-n // MAX_GROUPS), 1
