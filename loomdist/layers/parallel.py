"""Parallel layer: branches of any kind (nested too) on one input, combined four ways.

    concat        branch-major over the whole flat buffer, as LOOM: [b0 all samples][b1 ...]
    add / avg     element-wise sum / mean (branches must have equal output sizes)
    grid_scatter  per sample: the features of grid cells in flat order r*C*L + c*L + l

Branches dispatch through the layer registry; parameters are named "branch<i>.<name>".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import check_activation
from ..errors import ConfigError, ModelFormatError, ShapeError

TYPE = "parallel"
WEIGHT_KEYS = ("branch_weights",)
RESIDUAL = None
LOOM_TYPE_ID = 10  # LOOM's LayerType enum value (events' LayerType)
STATS_NAME = "parallel"  # LOOM's layerTypeString (events' Stats.LayerType)
MODES = ("concat", "add", "avg", "average", "grid_scatter", "")


@dataclass(frozen=True)
class Spec:
    """Branches (layer specs) run side by side on the same input.

    grid_positions: for grid_scatter, one (branch_index, row, col, layer) per branch inside a
        grid_rows x grid_cols x grid_layers output grid.
    """

    branches: tuple
    combine_mode: str = "concat"
    grid_rows: int = 0
    grid_cols: int = 0
    grid_layers: int = 0
    grid_positions: tuple = ()
    activation: str = "relu"
    kind = TYPE

    def __post_init__(self):
        where = f"parallel({self.combine_mode!r}, {len(self.branches)} branches)"
        object.__setattr__(self, "branches", tuple(self.branches))
        object.__setattr__(self, "grid_positions", tuple(tuple(p) for p in self.grid_positions))
        object.__setattr__(self, "activation", check_activation(self.activation, where))
        if not self.branches or any(not hasattr(b, "kind") for b in self.branches):
            raise ConfigError(f"{where}: needs a non-empty list of layer specs as branches")
        if self.combine_mode not in MODES:
            raise ConfigError(f"{where}: unknown combine_mode; use one of "
                              f"{[m for m in MODES if m]}")
        if self.mode == "grid_scatter":
            _check_grid(self, where)

    @property
    def mode(self) -> str:
        return {"": "concat", "average": "avg"}.get(self.combine_mode, self.combine_mode)

    def out_features(self, in_features: int, where: str = "parallel") -> int:
        sizes = [b.out_features(in_features, f"{where} branch {i} ({b.kind})")
                 for i, b in enumerate(self.branches)]
        if self.mode in ("add", "avg") and len(set(sizes)) > 1:
            raise ShapeError(f"{where}: {self.mode} needs equal branch output sizes, got "
                             f"{sizes}; make every branch produce {sizes[0]} features")
        return sizes[0] if self.mode in ("add", "avg") else sum(sizes)


def _check_grid(spec, where):
    dims = (spec.grid_rows, spec.grid_cols, spec.grid_layers)
    if any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise ConfigError(f"{where}: grid_scatter needs grid rows/cols/layers >= 1 (got {dims})")
    if len(spec.grid_positions) != len(spec.branches):
        raise ConfigError(f"{where}: grid_scatter needs one position per branch "
                          f"({len(spec.grid_positions)} != {len(spec.branches)})")
    cells, placed = {}, set()
    for b, r, c, lay in spec.grid_positions:
        if not 0 <= b < len(spec.branches) or b in placed:
            raise ConfigError(f"{where}: position branch_index {b} is out of range or repeated")
        if not (0 <= r < dims[0] and 0 <= c < dims[1] and 0 <= lay < dims[2]):
            raise ConfigError(f"{where}: branch {b} position ({r},{c},{lay}) falls outside the "
                              f"{dims[0]}x{dims[1]}x{dims[2]} grid")
        cell = (r * dims[1] + c) * dims[2] + lay
        if cell in cells:
            raise ConfigError(f"{where}: branches {cells[cell]} and {b} collide at grid cell "
                              f"({r},{c},{lay}); give each branch its own cell")
        cells[cell] = b
        placed.add(b)


def _module(spec):
    from . import module_of
    return module_of(spec)


def _prefix(i: int) -> str:
    return f"branch{i}."


def _sub(params: dict, i: int) -> dict:
    p = _prefix(i)
    return {k[len(p):]: v for k, v in params.items() if k.startswith(p)}


def in_features(spec: Spec) -> int | None:
    """The first branch that declares its input size decides (all branches share the input)."""
    for b in spec.branches:
        n = getattr(_module(b), "in_features", lambda s: None)(b)
        if n is not None:
            return n
    return None


def telemetry(spec: Spec) -> dict:
    """LOOM's blueprint facts: the branch specs (the blueprint sums their parameters)."""
    return {"branches": list(spec.branches), "combine_mode": spec.combine_mode or "concat"}


def param_shapes(spec: Spec) -> dict:
    return {_prefix(i) + k: s for i, b in enumerate(spec.branches)
            for k, s in _module(b).param_shapes(b).items()}


def init(spec: Spec, rng) -> dict:
    return {_prefix(i) + k: v for i, b in enumerate(spec.branches)
            for k, v in _module(b).init(b, rng).items()}


def forward(spec: Spec, params: dict, x: np.ndarray):
    """x: (batch, n) -> combined branch outputs (batch, out_features)."""
    outs, caches = [], []
    for i, b in enumerate(spec.branches):
        y, cache = _module(b).forward(b, _sub(params, i), x)
        outs.append(y)
        caches.append(cache)
    return _combine(spec, outs, x.shape[0]), (caches, [o.shape for o in outs])


def _combine(spec, outs, batch):
    mode = spec.mode
    if mode == "concat":
        return np.concatenate([o.reshape(-1) for o in outs]).reshape(batch, -1)
    if mode in ("add", "avg"):
        total = outs[0].copy()
        for o in outs[1:]:
            total += o
        return total / total.dtype.type(len(outs)) if mode == "avg" else total
    return np.concatenate([outs[b] for b in _scatter_order(spec)], axis=1)


def _scatter_order(spec) -> list[int]:
    """Branch indices in the flat order of the grid cells they occupy."""
    c, lay = spec.grid_cols, spec.grid_layers
    cell = lambda p: (p[1] * c + p[2]) * lay + p[3]  # noqa: E731
    return [p[0] for p in sorted(spec.grid_positions, key=cell)]


def backward(spec: Spec, params: dict, cache, dy: np.ndarray):
    caches, shapes = cache
    dx, grads = None, {}
    for i, (b, g) in enumerate(zip(spec.branches, _split(spec, dy, shapes))):
        dxi, gi = _module(b).backward(b, _sub(params, i), caches[i], g)
        dx = dxi if dx is None else dx + dxi
        grads.update({_prefix(i) + k: v for k, v in gi.items()})
    return dx, grads


def splits(spec: Spec) -> bool:
    """Whether any branch (nested ones too) has the split backward: only then does
    engine.backward_layer use backward_input / weight_grads, else plain backward."""
    return any(_splits(b) for b in spec.branches)


def _splits(branch) -> bool:
    from . import splits_backward
    return splits_backward(_module(branch), branch)


def backward_input(spec: Spec, params: dict, cache, dy: np.ndarray, need_dx: bool = True):
    """backward's dx (batch, in) alone (None with need_dx=False: branches with a split
    backward skip their dL/dx GEMMs) and wcache: per branch, ("split", its backward_input's
    wcache) or, for a branch without the pair, ("grads", its gradients, computed now and
    summed by weight_grads; a deferred pipeline stage keeps one such dict per micro-batch
    until its flush, so a branch without the pair costs its parameters' size per
    micro-batch there)."""
    caches, shapes = cache
    dx, wcache = None, []
    for i, (b, g) in enumerate(zip(spec.branches, _split(spec, dy, shapes))):
        module, sub = _module(b), _sub(params, i)
        if _splits(b):
            dxi, wc = module.backward_input(b, sub, caches[i], g, need_dx=need_dx)
            wcache.append(("split", wc))
        else:
            dxi, gi = module.backward(b, sub, caches[i], g)
            wcache.append(("grads", gi))
        if need_dx:
            dx = dxi if dx is None else dx + dxi
    return dx, wcache


def weight_grads(spec: Spec, params: dict, wcaches: list) -> dict:
    """Every branch's gradients (named as backward's), summed over the micro-batches of
    `wcaches` (backward_input's, in micro-batch order; at least one)."""
    if not wcaches:
        raise ValueError("parallel.weight_grads: no micro-batches; pass backward_input's "
                         "wcache of at least one")
    grads = {}
    for i, b in enumerate(spec.branches):
        kind, per_mb = wcaches[0][i][0], [w[i][1] for w in wcaches]
        gi = (_module(b).weight_grads(b, _sub(params, i), per_mb) if kind == "split"
              else _summed(per_mb))
        grads.update({_prefix(i) + k: v for k, v in gi.items()})
    return grads


def _summed(per_mb: list) -> dict:
    """Gradient dicts added in micro-batch order (one of them: as it is)."""
    out = per_mb[0]
    for g in per_mb[1:]:
        out = {k: out[k] + g[k] for k in out}
    return out


def _split(spec, dy, shapes):
    mode = spec.mode
    if mode == "add":
        return [dy] * len(shapes)
    if mode == "avg":
        return [dy / dy.dtype.type(len(shapes))] * len(shapes)
    if mode == "concat":
        flat, out, at = dy.reshape(-1), [], 0
        for s in shapes:
            n = s[0] * s[1]
            out.append(flat[at:at + n].reshape(s))
            at += n
        return out
    out, at = [None] * len(shapes), 0
    for b in _scatter_order(spec):
        out[b] = dy[:, at:at + shapes[b][1]]
        at += shapes[b][1]
    return out


# Public wrappers for BranchActors (the owning cell combines, the branches compute).
def branch_params(params: dict, i: int) -> dict:
    """Branch i's parameters (names without the "branch<i>." prefix)."""
    return _sub(params, i)


def branch_key(i: int, name: str) -> str:
    """The Parallel layer's name for branch i's parameter `name`."""
    return _prefix(i) + name


def combine(spec: Spec, outs: list, batch: int) -> np.ndarray:
    """Branch outputs (in branch order) -> the layer output, as forward combines them."""
    return _combine(spec, outs, batch)


def split(spec: Spec, dy: np.ndarray, shapes: list) -> list:
    """dL/d(output) -> per-branch output gradients (branch order), as backward splits them."""
    return _split(spec, dy, shapes)


def mixes_batch(spec: Spec) -> bool:
    """True when a sample's output row depends on other samples (concat's branch-major flat
    layout), so running a mini-batch as micro-batches would change the result."""
    if spec.mode == "concat" and len(spec.branches) > 1:
        return True
    return any(getattr(_module(b), "mixes_batch", lambda s: False)(b) for b in spec.branches)


def to_config(spec: Spec, branch: bool = False) -> dict:
    from ..io.loom_json import layer_config
    return {"type": TYPE, "activation": spec.activation,
            "branches": [layer_config(b, branch=True) for b in spec.branches],
            "combine_mode": spec.combine_mode,
            "grid_positions": [{"branch_index": b, "target_row": r, "target_col": c,
                                "target_layer": lay} for b, r, c, lay in spec.grid_positions],
            "grid_output_rows": spec.grid_rows, "grid_output_cols": spec.grid_cols,
            "grid_output_layers": spec.grid_layers}


def from_config(cfg) -> Spec:
    from ..io.loom_parse import spec_from_config
    branches = cfg["branches"]
    if not isinstance(branches, list):
        raise ConfigError(f"parallel: 'branches' must be a list (got {branches!r})")
    positions = []
    for p in cfg.get("grid_positions") or []:
        if not isinstance(p, dict):
            raise ConfigError(f"parallel: grid position {p!r} is not an object")
        positions.append(tuple(p.get(k, 0) for k in
                               ("branch_index", "target_row", "target_col", "target_layer")))
    return Spec(tuple(spec_from_config(b, f"branches[{i}]") for i, b in enumerate(branches)),
                cfg["combine_mode"] or "", cfg["grid_output_rows"], cfg["grid_output_cols"],
                cfg["grid_output_layers"], tuple(positions), cfg["activation"])


def weights_to_json(spec: Spec, params: dict) -> dict:
    from ..io.loom_json import layer_weights
    return {"branch_weights": [layer_weights(b, _sub(params, i))
                               for i, b in enumerate(spec.branches)]}


def weights_from_json(spec: Spec, wdict, where: str) -> dict:
    from ..io.loom_parse import params_from_json
    bw = wdict.get("branch_weights") if isinstance(wdict, dict) else None
    if not isinstance(bw, list) or len(bw) != len(spec.branches):
        raise ModelFormatError(f"{where}.branch_weights: expected {len(spec.branches)} branch "
                               f"weight objects, got {str(bw)[:60]}")
    out = {}
    for i, (b, w) in enumerate(zip(spec.branches, bw)):
        sub = params_from_json(b, w, f"{where}.branch_weights[{i}]")
        out.update({_prefix(i) + k: v for k, v in sub.items()})
    return out


def loom_gradients(spec: Spec, grads: dict):
    """LOOM concatenates every branch's kernel (and bias) gradients, in branch order."""
    ks, bs = [], []
    for i, b in enumerate(spec.branches):
        sub = _sub(grads, i)
        if sub:
            k, bias = _module(b).loom_gradients(b, sub)
            ks += [] if k is None else [np.ravel(k)]
            bs += [] if bias is None else [np.ravel(bias)]
    return (np.concatenate(ks) if ks else None), (np.concatenate(bs) if bs else None)


def init_parallel_layer(branches: list, combine_mode: str = "concat") -> Spec:
    """A Parallel layer over `branches` (specs) combined by `combine_mode`."""
    return Spec(tuple(branches), combine_mode)


def init_grid_scatter_layer(branches: list, grid_rows: int, grid_cols: int, grid_layers: int,
                            positions: list) -> Spec:
    """grid_scatter Parallel: positions = [(branch_index, row, col, layer), ...]."""
    return Spec(tuple(branches), "grid_scatter", grid_rows, grid_cols, grid_layers,
                tuple(tuple(p) for p in positions))


INIT_FUNCTIONS = {"InitParallelLayer": init_parallel_layer,
                  "InitGridScatterLayer": init_grid_scatter_layer}
