"""The process-wide wgpu device: adapter choice, raised limits, size checks, pipeline cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import wgpu

from loomdist.errors import ConfigError

SHADER_DIR = Path(__file__).parent
# Limits raised from the WebGPU defaults to whatever the adapter allows.
RAISED_LIMITS = (
    "max-storage-buffer-binding-size",
    "max-buffer-size",
    "max-storage-buffers-per-shader-stage",
    "max-compute-workgroup-storage-size",
)
# Optional features requested when the adapter has them.
WANTED_FEATURES = ("timestamp-query",)


@dataclass
class Device:
    """A wgpu device with its granted limits and a pipeline cache.

    `pipelines` maps (shader name, sorted constants) to a compiled compute pipeline; shader
    modules are cached by name.
    """

    raw: wgpu.GPUDevice
    adapter_name: str
    limits: dict[str, int]
    pipelines: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)
    uniforms: dict = field(default_factory=dict)
    features: frozenset = frozenset()
    info: dict = field(default_factory=dict)  # adapter vendor, device, driver, backend

    def check_size(self, nbytes: int, where: str) -> None:
        """Raise ConfigError when a buffer of `nbytes` cannot be bound as storage here."""
        for name in ("max-storage-buffer-binding-size", "max-buffer-size"):
            limit = self.limits[name]
            if nbytes > limit:
                raise ConfigError(
                    f"{where}: buffer too large for the adapter ({nbytes} bytes > "
                    f"{name} = {limit} on {self.adapter_name}); split the operand or use "
                    "the CPU backend"
                )

    def pipeline(self, shader: str, constants: dict | None = None,
                 entry: str = "main") -> wgpu.GPUComputePipeline:
        """Compile `<shader>.wgsl` (entry point `entry`) with override `constants`, once."""
        key = (shader, tuple(sorted((constants or {}).items())))
        if entry != "main":
            key += (entry,)
        if key not in self.pipelines:
            self.pipelines[key] = self.raw.create_compute_pipeline(
                layout="auto",
                compute={
                    "module": self._module(shader), "entry_point": entry,
                    "constants": dict(key[1]),
                },
            )
        return self.pipelines[key]

    def require_feature(self, feature: str, where: str) -> None:
        """Raise ConfigError when the device lacks a wgpu `feature` (e.g. "shader-f16")."""
        if feature not in self.features:
            raise ConfigError(
                f"{where}: the adapter {self.adapter_name} lacks the wgpu feature {feature!r} "
                f"(it has {sorted(self.features)}); use another adapter or the CPU backend")

    def pipeline_from_code(self, name: str, code: str) -> wgpu.GPUComputePipeline:
        """Compile generated WGSL `code` (entry point `main`) once per unique `name`."""
        key = (name, ("generated",))
        if key not in self.pipelines:
            module = self.raw.create_shader_module(label=name, code=code)
            self.pipelines[key] = self.raw.create_compute_pipeline(
                layout="auto", compute={"module": module, "entry_point": "main"})
        return self.pipelines[key]

    def uniform_u32(self, values: tuple[int, ...]) -> wgpu.GPUBuffer:
        """A cached, immutable uniform buffer holding `values` as u32 (padded to 16 bytes)."""
        if values not in self.uniforms:
            data = np.zeros(-(-len(values) // 4) * 4, dtype=np.uint32)
            data[: len(values)] = values
            self.uniforms[values] = self.raw.create_buffer_with_data(
                data=data, usage=wgpu.BufferUsage.UNIFORM)
        return self.uniforms[values]

    def _module(self, shader: str) -> wgpu.GPUShaderModule:
        if shader not in self.modules:
            code = (SHADER_DIR / f"{shader}.wgsl").read_text()
            self.modules[shader] = self.raw.create_shader_module(label=shader, code=code)
        return self.modules[shader]


def _request_adapter():
    """The high-performance adapter, or None when the machine has none."""
    return wgpu.gpu.request_adapter_sync(power_preference="high-performance")


@lru_cache(maxsize=1)
def get_device() -> Device:
    """The process's Device (created on first call, then cached).

    Raises:
        ConfigError: when no wgpu adapter exists.
    """
    adapter = _request_adapter()
    if adapter is None:
        raise ConfigError(
            "kernels.gpu.get_device: no wgpu adapter found (power_preference="
            "'high-performance'); install a GPU driver or Mesa's lavapipe (llvmpipe) "
            "Vulkan driver, or use the CPU backend"
        )
    wanted = {name: adapter.limits[name] for name in RAISED_LIMITS}
    features = [f for f in WANTED_FEATURES if f in adapter.features]
    raw = adapter.request_device_sync(
        label="loomdist", required_limits=wanted, required_features=features)
    limits = {name: int(raw.limits[name]) for name in raw.limits}
    return Device(raw=raw, adapter_name=adapter.summary, limits=limits,
                  features=frozenset(features), info=dict(adapter.info))
