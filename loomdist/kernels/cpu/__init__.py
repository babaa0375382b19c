"""Numba CPU kernels: pure functions on C-contiguous float32/float64 arrays."""
