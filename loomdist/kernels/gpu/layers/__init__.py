"""GPU layer registry: LOOM's layer kind -> the GPU module `kernels/gpu/layers/<kind>.py`.

A GPU layer module mirrors its CPU twin in loomdist/layers/ on device arrays:

    forward(stream, spec, params: dict[str, GpuArray], x: GpuArray) -> (y: GpuArray, cache)
    backward(stream, spec, params, cache, dy: GpuArray[, need_dx=True]) -> (dx, grads: dict)

x and y are (batch, features); grads are fresh arrays (the caller accumulates). A module
that sets `SKIPS_DX = True` takes `need_dx` in backward, skips the work of dx when it is
False (nobody reads it: the first layer of a training step or of a pipeline's first stage)
and returns None for it; `backward` below asks that of those modules and drops the dx of
the others. Everything is recorded on `stream`; nothing is read back. A module may define
`check(spec, where)` to reject specs it cannot run (parallel checks its branches through
this registry).

Modules are found by file name, so adding a kind is adding `<kind>.py` here; `supported()`
lists the kinds present.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from loomdist.errors import UnsupportedLayerError

_DIR = Path(__file__).parent


def supported() -> list[str]:
    """Every LOOM kind that has a GPU module."""
    return list(_scan())


@lru_cache(maxsize=1)
def _scan() -> tuple:
    return tuple(sorted(p.stem for p in _DIR.glob("*.py") if not p.stem.startswith("_")))


def gpu_module(kind: str, where: str = "layer") -> ModuleType:
    """The GPU module of `kind`; UnsupportedLayerError when there is none."""
    if kind not in supported():
        raise UnsupportedLayerError(
            f"{where}: layer kind {kind!r} has no module for the wgpu backend (GPU kinds: "
            f"{supported()}); run this network on the CPU backend")
    return importlib.import_module(f"{__name__}.{kind}")


def backward(s, spec, params: dict, cache, dy, need_dx: bool = True) -> tuple:
    """`spec`'s GPU backward -> (dx, grads); dx is None when need_dx is False (the module
    skips computing it where its backward takes need_dx)."""
    module = gpu_module(spec.kind)
    if need_dx:
        return module.backward(s, spec, params, cache, dy)
    if skips_dx(module):
        return module.backward(s, spec, params, cache, dy, need_dx=False)
    return None, module.backward(s, spec, params, cache, dy)[1]


def skips_dx(module: ModuleType) -> bool:
    """True when `module` declares SKIPS_DX: its backward takes need_dx and skips dL/dx."""
    return bool(getattr(module, "SKIPS_DX", False))


def check(spec, where: str = "layer") -> ModuleType:
    """The GPU module for `spec`, after its own `check` hook (nested specs) passes."""
    module = gpu_module(spec.kind, where)
    hook = getattr(module, "check", None)
    if hook is not None:
        hook(spec, where)
    return module


def runs_on_gpu(spec) -> bool:
    """True when `spec` (and every nested branch) has a GPU module."""
    try:
        check(spec)
    except UnsupportedLayerError:
        return False
    return True
