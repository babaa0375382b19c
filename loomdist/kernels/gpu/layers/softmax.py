"""Softmax layer on the GPU: LOOM's 10 variants (softmax.wgsl), forward and true JVPs.

Same semantics as loomdist/layers/softmax.py, per sample row of x (batch, n): one
workgroup per row (adaptive and mixture: one invocation per row). The small tables a spec
fixes (mask, cluster ids, mixture weights) are uploaded with the call; gumbel noise is drawn
on the host from the same generator the CPU layer uses, so a seeded layer gives the same
output on both backends.
"""

from __future__ import annotations

import numpy as np

from loomdist.kernels.gpu import ops
from loomdist.kernels.gpu.array import GpuArray
from loomdist.kernels.gpu.stream import Stream
from loomdist.layers import _softmax_math as sm
from loomdist.layers._common import buffer_rows
from loomdist.layers._softmax_spec import runs_as

SHADER = "softmax"
WHERE = "softmax gpu"  # names this layer in buffer-limit errors
WG = 64  # @workgroup_size of every entry point in softmax.wgsl
PLAIN, GUMBEL, MASKED = 0, 1, 2  # softmax_fwd's MODE


def _rows(stream, entry: str, arrays: list, rows: int, n: int, scale: float = 1.0,
          constants: dict | None = None) -> None:
    """One workgroup per row of n (the row-parallel entry points)."""
    stream.dispatch(SHADER, arrays, {"rows": rows, "n": n, "scale": float(scale), "pad": 0},
                    stream.groups(rows * WG, WG), constants, entry)


def _softmax(stream, x: GpuArray, rows: int, n: int, t: float, mode: int = PLAIN,
             aux: GpuArray | None = None) -> GpuArray:
    """softmax(logits / t) per row; logits are x, x + noise (aux) or x masked by aux."""
    y = stream.scratch(x.shape, WHERE)
    _rows(stream, "softmax_fwd", [x, x if aux is None else aux, y], rows, n, 1.0 / t,
          {"MODE": mode})
    return y


def _softmax_back(stream, y: GpuArray, g: GpuArray, rows: int, n: int, t: float,
                  keep: GpuArray | None = None) -> GpuArray:
    """scale * y * (g - <g, y>) per row, zero where `keep` is 0 when given."""
    dx = stream.scratch(y.shape, WHERE)
    _rows(stream, "softmax_bwd", [y, g, y if keep is None else keep, dx], rows, n, 1.0 / t,
          {"MASKED": int(keep is not None)})
    return dx


def _table(stream, values) -> GpuArray:
    """A small float32 table of per-spec constants (mask, cluster ids, weights) on the device."""
    return stream.upload(np.asarray(values, dtype=np.float32), WHERE)


def _size(x: GpuArray) -> tuple[int, int]:
    return x.shape[0], x.shape[1]


# ------------------------------------------------------------------------------- forward
def _standard(stream, spec, x, t=None):
    t = spec.effective_temperature if t is None else t
    nb, n = _size(x)
    y = _softmax(stream, x, nb, n, t)
    return y, {"op": "softmax", "y": y, "t": t, "rows": nb, "n": n}


def _grid(stream, spec, x):
    cols = spec.cols if spec.variant == "grid" else spec.levels[-1]
    rows = x.size // cols
    y = _softmax(stream, x, rows, cols, spec.effective_temperature)
    return y, {"op": "softmax", "y": y, "t": spec.effective_temperature, "rows": rows,
               "n": cols}


def _gumbel(stream, spec, x):
    rng = (np.random.default_rng(spec.noise_seed) if spec.noise_seed is not None
           else sm._GUMBEL["rng"])  # the CPU layer's generator: same draws on both backends
    u = np.maximum(rng.random(x.shape, dtype=np.float32), np.float32(1e-10))
    noise = stream.upload(-np.log(-np.log(u.astype(np.float64))), WHERE)  # float32 there
    nb, n = _size(x)
    t = spec.effective_temperature
    y = _softmax(stream, x, nb, n, t, GUMBEL, noise)
    return y, {"op": "softmax", "y": y, "t": t, "rows": nb, "n": n}  # noise held fixed


def _masked(stream, spec, x):
    nb, n = _size(x)
    keep = _table(stream, spec.mask)
    t = spec.effective_temperature
    y = _softmax(stream, x, nb, n, t, MASKED, keep)
    return y, {"op": "masked", "y": y, "t": t, "rows": nb, "n": n, "keep": keep}


def _sparse(stream, spec, x):
    nb, n = _size(x)
    y = stream.scratch(x.shape, WHERE)
    _rows(stream, "sparse_fwd", [x, y], nb, n)
    return y, {"op": "sparse", "y": y, "rows": nb, "n": n}


def _entmax(stream, spec, x):
    a = spec.entmax_alpha
    if a <= 1.0:
        return _standard(stream, spec, x, 1.0)
    if a >= 2.0:
        return _sparse(stream, spec, x)
    nb, n = _size(x)
    p = _softmax(stream, x, nb, n, 1.0)
    s = _sparse(stream, spec, x)[0]
    y, total = stream.scratch(x.shape, WHERE), stream.scratch((nb,), WHERE)
    w = float(np.float32(a - 1.0))
    _rows(stream, "entmax_fwd", [p, s, y, total], nb, n, w)
    return y, {"op": "entmax", "p": p, "s": s, "y": y, "total": total, "w": w, "rows": nb, "n": n}


def _adaptive(stream, spec, x):
    if not spec.adaptive_clusters:
        return _standard(stream, spec, x, 1.0)  # LOOM: plain softmax, temperature ignored
    nb, n = _size(x)
    cid, onehot = sm._membership(spec, n, np.float32)
    c = onehot.shape[1]
    cid_gpu = _table(stream, cid)
    y, q = stream.scratch(x.shape, WHERE), stream.scratch(x.shape, WHERE)
    pc, zc = stream.scratch((nb, c), WHERE), stream.scratch((nb, c), WHERE)  # per cluster
    t = spec.effective_temperature
    stream.dispatch(SHADER, [x, cid_gpu, y, q, pc, zc],
                    {"rows": nb, "n": n, "clusters": c, "inv_t": 1.0 / t}, stream.groups(nb, WG),
                    entry="adaptive_fwd")
    return y, {"op": "adaptive", "g_shape": x.shape, "q": q, "pc": pc, "cid": cid_gpu, "t": t,
               "rows": nb, "n": n, "c": c}


def _mixture(stream, spec, x):
    if not spec.mixture_weights:
        return _standard(stream, spec, x, 1.0)  # LOOM: plain softmax, temperature ignored
    nb, n = _size(x)
    m = len(spec.mixture_weights)
    w = np.asarray(spec.mixture_weights, dtype=np.float32)
    w_gpu = _table(stream, w / w.sum())
    s = _softmax(stream, x, nb * m, n // m, 1.0)  # (batch, M, k) flat
    y = stream.scratch((nb, n // m), WHERE)
    stream.dispatch(SHADER, [s, w_gpu, y], {"batch": nb, "m": m, "k": n // m, "pad": 0},
                    stream.groups(nb * (n // m), WG), entry="mixture_fwd")
    return y, {"op": "mixture", "x_shape": x.shape, "s": s, "w": w_gpu, "batch": nb, "m": m,
               "k": n // m}


# ------------------------------------------------------------------------------ backward
def _softmax_bwd(stream, c, g):
    return _softmax_back(stream, c["y"], g, c["rows"], c["n"], c["t"])


def _masked_bwd(stream, c, g):
    return _softmax_back(stream, c["y"], g, c["rows"], c["n"], c["t"], c["keep"])


def _sparse_bwd(stream, c, g):
    dx = stream.scratch(c["y"].shape, WHERE)
    _rows(stream, "sparse_bwd", [c["y"], g, dx], c["rows"], c["n"])
    return dx


def _entmax_bwd(stream, c, g):
    dx = stream.scratch(c["y"].shape, WHERE)
    _rows(stream, "entmax_bwd", [c["p"], c["s"], c["y"], c["total"], g, dx], c["rows"], c["n"],
          c["w"])
    return dx


def _adaptive_bwd(stream, c, g):
    nb = c["rows"]
    dx = stream.scratch(c["g_shape"], WHERE)
    s, gl = stream.scratch((nb, c["c"]), WHERE), stream.scratch((nb, c["c"]), WHERE)
    stream.dispatch(SHADER, [g, c["cid"], c["q"], c["pc"], s, gl, dx],
                    {"rows": nb, "n": c["n"], "clusters": c["c"], "inv_t": 1.0 / c["t"]},
                    stream.groups(nb, WG), entry="adaptive_bwd")
    return dx


def _mixture_bwd(stream, c, g):
    dx = stream.scratch(c["x_shape"], WHERE)
    stream.dispatch(SHADER, [c["s"], c["w"], g, dx],
                    {"batch": c["batch"], "m": c["m"], "k": c["k"], "pad": 0},
                    stream.groups(c["batch"] * c["m"], WG), entry="mixture_bwd")
    return dx


FORWARD = {"standard": _standard, "temperature": _standard, "grid": _grid,
           "hierarchical": _grid, "gumbel": _gumbel, "masked": _masked, "sparse": _sparse,
           "entmax": _entmax, "adaptive": _adaptive, "mixture": _mixture}
BACKWARD = {"softmax": _softmax_bwd, "masked": _masked_bwd, "sparse": _sparse_bwd,
            "entmax": _entmax_bwd, "adaptive": _adaptive_bwd, "mixture": _mixture_bwd}


def forward(stream: Stream, spec, params: dict, x: GpuArray) -> tuple:
    """x: (batch, n) logits -> (probabilities (batch, out_features), cache); no parameters.
    What runs is the CPU layer's (_softmax_spec.runs_as: LOOM's fallbacks; whole_buffer).

    Raises:
        ShapeError: the input size does not fit the variant (a grid larger than the input,
        mixture components that do not divide it, ...).
    """
    xs = x.reshape(buffer_rows(x), -1)
    spec.out_features(xs.shape[1], "softmax gpu forward")
    run, m = runs_as(spec, xs.shape[1])
    if m == xs.shape[1]:
        y, cache = FORWARD[run.variant](stream, run, xs)
    else:  # a grid covering the first m logits: LOOM leaves the rest 0
        part = stream.scratch((xs.shape[0], m), WHERE)
        ops.copy_cols(stream, xs, part, m, 0, 0)
        y_m, cache = FORWARD[run.variant](stream, run, part)
        y = stream.empty(xs.shape, WHERE)
        ops.copy_cols(stream, y_m, y, m, 0, 0)
    cache.update(covered=m, in_shape=xs.shape)
    return y.reshape(x.shape[0], -1), cache


def backward(stream: Stream, spec, params: dict, cache: dict, dy: GpuArray) -> tuple:
    """True Jacobian-vector product of the variant's forward -> (dx (batch, n), {})."""
    m, shape = cache["covered"], cache["in_shape"]
    g = dy.reshape(shape[0], -1)
    if m == shape[1]:
        dx = BACKWARD[cache["op"]](stream, cache, g)
    else:
        g_m = stream.scratch((shape[0], m), WHERE)
        ops.copy_cols(stream, g, g_m, m, 0, 0)
        dx = stream.empty(shape, WHERE)
        ops.copy_cols(stream, BACKWARD[cache["op"]](stream, cache, g_m), dx, m, 0, 0)
    return dx.reshape(dy.shape[0], -1), {}
