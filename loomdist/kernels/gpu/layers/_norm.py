"""Shared launch helpers of the GPU norm layers (norm.wgsl): row and column dispatch shapes."""

from __future__ import annotations

from loomdist.kernels.gpu import ops
from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream

SHADER = "norm"
COLUMN_WG = 64  # threads per workgroup of the *_params entries
CHUNK_ROWS = 64  # rows per partial sum of the *_params entries


def rows_params(rows: int, n: int, eps: float) -> dict:
    """The `Rows` uniform of norm.wgsl."""
    return {"rows": rows, "n": n, "eps": float(eps), "inv_n": 1.0 / n}


def per_row(s: Stream, entry: str, arrays: list, rows: int, n: int, eps: float = 0.0) -> None:
    """One workgroup per row."""
    if rows:
        s.dispatch(SHADER, arrays, rows_params(rows, n, eps), s.groups(rows, 1), entry=entry)


def per_column(s: Stream, entry: str, arrays: list, outputs: int, rows: int,
               n: int) -> list[GpuArray]:
    """Parameter gradients: `outputs` (n,) sums over rows, in parallel chunks of rows.

    `arrays` are the entry's inputs; the (chunks, n) partials are summed by ops.colsum.
    """
    limit = s.device.limits.get("max-compute-workgroups-per-dimension", 65535)
    chunk = max(CHUNK_ROWS, -(-rows // limit))
    chunks = max(1, -(-rows // chunk))
    parts = [s.scratch((chunks, n), "norm param grad") for _ in range(outputs)]
    s.dispatch(SHADER, arrays + parts, {"rows": rows, "n": n, "chunk": chunk},
               (-(-n // COLUMN_WG), chunks, 1), entry=entry)
    return parts if chunks == 1 else [ops.colsum(s, p) for p in parts]


def as_rows(x: GpuArray, n: int) -> GpuArray:
    """x viewed as (rows, n)."""
    return x.reshape(x.size // n, n)
