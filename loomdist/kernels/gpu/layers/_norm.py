"""Shared launch helpers of the GPU norm layers (norm.wgsl): row and column dispatch shapes."""

from __future__ import annotations

from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream

SHADER = "norm"
COLUMN_WG = 64  # threads per workgroup of the *_params entries


def rows_params(rows: int, n: int, eps: float) -> dict:
    """The `Rows` uniform of norm.wgsl."""
    return {"rows": rows, "n": n, "eps": float(eps), "inv_n": 1.0 / n}


def per_row(s: Stream, entry: str, arrays: list, rows: int, n: int, eps: float = 0.0) -> None:
    """One workgroup per row."""
    if rows:
        s.dispatch(SHADER, arrays, rows_params(rows, n, eps), s.groups(rows, 1), entry=entry)


def per_column(s: Stream, entry: str, arrays: list, rows: int, n: int) -> None:
    """One thread per column, summing over rows."""
    s.dispatch(SHADER, arrays, rows_params(rows, n, 0.0), (-(-n // COLUMN_WG), 1, 1),
               entry=entry)


def as_rows(x: GpuArray, n: int) -> GpuArray:
    """x viewed as (rows, n)."""
    return x.reshape(x.size // n, n)
