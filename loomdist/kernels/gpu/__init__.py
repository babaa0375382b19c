"""GPU kernels through wgpu: `device` (adapter, limits, pipeline cache) and one wrapper per
WGSL shader (`gemm`). Import the submodules directly; this package imports nothing heavy."""
