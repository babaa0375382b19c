"""How actors call each other and wait for results: one interface, two implementations.

    RayTransport   calls return ObjectRefs; get() waits with a timeout naming its setting
    LocalTransport calls run in place and return values; get() returns them (no Ray needed)

Schedules and cells only use call/get/put, so a faster channel is one more class here.
"""

from __future__ import annotations

import ray
from ray.exceptions import GetTimeoutError


class RayTransport:
    """The Ray object store: data moves actor to actor as ObjectRefs.

    timeout_s: seconds any single wait may take; `setting` names where the user sets it.
    """

    def __init__(self, timeout_s: float, setting: str = "timeout_s"):
        self.timeout_s, self.setting = float(timeout_s), setting

    def call(self, handle, method: str, *args, returns: int = 1):
        fn = getattr(handle, method)
        return (fn.options(num_returns=returns) if returns != 1 else fn).remote(*args)

    def put(self, value):
        return ray.put(value)

    def get(self, refs, what: str):
        """Wait for `refs` (one or a list); TimeoutError names `what` and the setting."""
        try:
            return ray.get(refs, timeout=self.timeout_s)
        except GetTimeoutError as e:
            raise TimeoutError(f"{what}: no result within {self.timeout_s:g} s; raise "
                               f"{self.setting} if the work is slow, or check the actors "
                               f"(ray status)") from e


class LocalTransport:
    """In-process calls on plain objects (tests and the Ray-free path)."""

    timeout_s, setting = float("inf"), "timeout_s"

    def call(self, handle, method: str, *args, returns: int = 1):
        return getattr(handle, method)(*args)

    def put(self, value):
        return value

    def get(self, refs, what: str):
        return refs
