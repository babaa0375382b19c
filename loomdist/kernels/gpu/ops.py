"""Element-wise GPU ops over GpuArrays (elementwise.wgsl), recorded on a Stream.

Public API (stable; layer modules build on it):

    bias_act(s, z, bias, activation) -> y   z (rows, cols) gets the bias in place; y = act(z)
    activate(s, x, activation) -> y         y = act(x) (no bias)
    act_backward(s, z, y, dy, activation) -> dz
    add(s, a, b) -> a + b                   add_into(s, src, dst): dst += src
    scale(s, a, factor)                     a *= factor, in place
    colsum(s, x, out=None, accumulate=False) -> out (cols,), sums over rows of x (rows, cols)
    copy_cols(s, src, dst, cols, src_off, dst_off, accumulate=False)   column blocks
Activations are LOOM's names (loomdist.activations): relu is ScaledReLU 1.1x, leaky_relu 0.1.
"""

from __future__ import annotations

from loomdist.activations import ACTIVATIONS
from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream

SHADER = "elementwise"
CHUNK_ROWS = 64  # rows per partial sum of colsum's first pass


def _act(activation: str) -> dict:
    return {"ACT": ACTIVATIONS[activation]}


def bias_act(s: Stream, z: GpuArray, bias: GpuArray, activation: str) -> GpuArray:
    """z (rows, cols) += bias (cols,) in place; returns y = act(z) (rows, cols)."""
    y = s.scratch(z.shape, "gpu.bias_act")
    if z.size:
        s.dispatch(SHADER, [z, bias, y], {"n": z.size, "cols": z.shape[-1]}, s.groups(z.size),
                   _act(activation), "bias_act")
    return y


def activate(s: Stream, x: GpuArray, activation: str) -> GpuArray:
    """y = act(x) with no bias: bias_act over a zero bias of one column."""
    zero = s.empty((1,), "gpu.activate")  # zero-filled bias
    z = s.scratch(x.shape, "gpu.activate")
    s.copy(x, z)
    y = s.scratch(x.shape, "gpu.activate")
    if x.size:
        s.dispatch(SHADER, [z, zero, y], {"n": x.size, "cols": 1}, s.groups(x.size),
                   _act(activation), "bias_act")
    return y


def act_backward(s: Stream, z: GpuArray, y: GpuArray, dy: GpuArray,
                 activation: str) -> GpuArray:
    """dz = dy * act'(z) given y = act(z); all of one shape."""
    dz = s.scratch(z.shape, "gpu.act_backward")
    if z.size:
        s.dispatch(SHADER, [z, y, dy, dz], {"n": z.size}, s.groups(z.size), _act(activation),
                   "act_backward")
    return dz


def add_into(s: Stream, src: GpuArray, dst: GpuArray) -> None:
    """dst += src (same size)."""
    if dst.size:
        s.dispatch(SHADER, [src, dst], {"n": dst.size}, s.groups(dst.size), entry="add_into")


def add(s: Stream, a: GpuArray, b: GpuArray) -> GpuArray:
    """A new array a + b (same size; a's shape)."""
    out = s.scratch(a.shape, "gpu.add")
    if a.size:
        s.dispatch(SHADER, [a, b, out], {"n": a.size}, s.groups(a.size), entry="add")
    return out


def scale(s: Stream, a: GpuArray, factor: float) -> None:
    """a *= factor, in place."""
    if a.size:
        s.dispatch(SHADER, [a], {"n": a.size, "s": float(factor)}, s.groups(a.size),
                   entry="scale")


def colsum(s: Stream, x: GpuArray, out: GpuArray | None = None,
           accumulate: bool = False) -> GpuArray:
    """Column sums of x (rows, cols) into out (cols,); adds to out when `accumulate`.

    Past CHUNK_ROWS rows, chunks of rows are summed in parallel first (colsum_partial), so
    a tall thin matrix does not leave one thread per column walking every row.
    """
    rows, cols = x.size // max(x.shape[-1], 1), x.shape[-1]
    out = out if out is not None else s.scratch((cols,), "gpu.colsum")
    chunks = -(-rows // CHUNK_ROWS)
    limit = s.device.limits.get("max-compute-workgroups-per-dimension", 65535)
    if 1 < chunks <= limit:
        part = s.scratch((chunks, cols), "gpu.colsum partial")
        s.dispatch(SHADER, [x, part], {"rows": rows, "cols": cols, "chunk": CHUNK_ROWS},
                   (-(-cols // 64), chunks, 1), entry="colsum_partial")
        x, rows = part, chunks
    s.dispatch(SHADER, [x, out], {"rows": rows, "cols": cols, "accumulate": int(accumulate)},
               s.groups(cols), entry="colsum")
    return out


def copy_cols(s: Stream, src: GpuArray, dst: GpuArray, cols: int, src_off: int, dst_off: int,
              accumulate: bool = False) -> None:
    """dst[:, dst_off:dst_off+cols] (+)= src[:, src_off:src_off+cols] (both (rows, *))."""
    rows = src.shape[0]
    params = {"rows": rows, "cols": cols, "src_cols": src.shape[1], "src_off": src_off,
              "dst_cols": dst.shape[1], "dst_off": dst_off, "accumulate": int(accumulate)}
    if rows * cols:
        s.dispatch(SHADER, [src, dst], params, s.groups(rows * cols), entry="copy_cols")
