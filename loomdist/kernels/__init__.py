"""Compute kernels: `cpu` (Numba) and `gpu` (wgpu)."""
