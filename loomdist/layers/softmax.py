"""Softmax as a first-class layer: LOOM's 10 variants, each with its true Jacobian.

Every variant works per sample on x (batch, n), except on LOOM's flat layout
(layers._common.whole_buffer), where the whole buffer is one sample as in LOOM. The forward
is LOOM's, fallbacks included (_softmax_spec.runs_as): `adaptive` and `mixture` are plain
softmax there, as in LOOM; `extended=True` gives them the meaning documented in
docs/differences.md (loomdist's init_adaptive_softmax_layer / init_mixture_softmax_layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from . import _softmax_math as sm
from ._common import buffer_rows
from ._softmax_spec import VARIANTS, check_spec, out_features_of, runs_as

TYPE = "softmax"
WEIGHT_KEYS = ()
RESIDUAL = None
LOOM_TYPE_ID = 5  # LOOM's LayerType enum value (events' LayerType)
STATS_NAME = "softmax"  # LOOM's layerTypeString (events' Stats.LayerType)


@dataclass(frozen=True)
class Spec:
    """A softmax layer. Fields are LOOM's (`softmax_variant`, `temperature`, ...).

    noise_seed: gumbel only. None draws fresh noise from `gumbel_rng` each forward; an int
        fixes the noise (the same every call), for reproducible runs. Not saved to files.
    extended: adaptive and mixture only. False (LOOM's files): plain softmax, as LOOM
        computes them. True: loomdist's two-level adaptive softmax and mixture of softmaxes
        (docs/differences.md); saved as "loomdist_extended", a key LOOM ignores.
    """

    variant: str = "standard"
    temperature: float = 1.0
    rows: int = 0
    cols: int = 0
    mask: tuple = ()
    levels: tuple = ()
    gumbel_noise: bool = False
    entmax_alpha: float = 0.0
    adaptive_clusters: tuple = ()
    mixture_weights: tuple = ()
    activation: str = "relu"
    noise_seed: int | None = None
    extended: bool = False
    kind = TYPE

    def __post_init__(self):
        check_spec(self)

    def out_features(self, in_features: int, where: str = "softmax") -> int:
        return out_features_of(self, in_features, where)

    @property
    def effective_temperature(self) -> float:
        return 1.0 if self.temperature == 0 else float(self.temperature)


def telemetry(spec: Spec) -> dict:
    """LOOM's blueprint facts (ExtractNetworkBlueprint): parameter count and shapes."""
    return {"parameters": 0}


def param_shapes(spec: Spec) -> dict:
    return {}


def init(spec: Spec, rng) -> dict:
    return {}


def forward(spec: Spec, params: dict, x: np.ndarray):
    """x: (batch, n) logits -> probabilities (batch, out_features)."""
    rows = buffer_rows(x)
    xs = x.reshape(rows, -1)
    run, m = runs_as(spec, xs.shape[1])
    if m == xs.shape[1]:
        y, inner = sm.FORWARD[run.variant](run, xs)
    else:  # a grid covering the first m logits: LOOM leaves the rest 0
        part, inner = sm.FORWARD[run.variant](run, np.ascontiguousarray(xs[:, :m]))
        y = np.zeros(xs.shape, part.dtype)
        y[:, :m] = part
    return y.reshape(x.shape[0], -1), (run, m, xs.shape, inner)


def backward(spec: Spec, params: dict, cache, dy: np.ndarray):
    """True Jacobian-vector product of the variant's forward; no parameters."""
    run, m, shape, inner = cache
    g = dy.reshape(shape[0], -1)
    if m == shape[1]:
        dx = sm.BACKWARD[run.variant](run, inner, g)
    else:
        dx = np.zeros(shape, dy.dtype)
        dx[:, :m] = sm.BACKWARD[run.variant](run, inner, np.ascontiguousarray(g[:, :m]))
    return dx.reshape(dy.shape[0], -1), {}


def to_config(spec: Spec, branch: bool = False) -> dict:
    cfg = {"type": TYPE, "activation": spec.activation, "softmax_variant": spec.variant,
           "softmax_rows": spec.rows, "softmax_cols": spec.cols,
           "temperature": float(spec.temperature), "gumbel_noise": bool(spec.gumbel_noise),
           "mask": list(spec.mask), "hierarchy_levels": list(spec.levels),
           "adaptive_clusters": [list(c) for c in spec.adaptive_clusters],
           "mixture_weights": [float(w) for w in spec.mixture_weights],
           "entmax_alpha": float(spec.entmax_alpha)}
    if spec.extended:  # only then: LOOM's own files round-trip byte for byte
        cfg["loomdist_extended"] = True
    return cfg


def from_config(cfg) -> Spec:
    variant = cfg["softmax_variant"] or "standard"
    return Spec(variant=variant, temperature=_f32(cfg["temperature"]), rows=cfg["softmax_rows"],
                cols=cfg["softmax_cols"], mask=tuple(cfg.get("mask") or ()),
                levels=tuple(cfg.get("hierarchy_levels") or ()),
                gumbel_noise=bool(cfg["gumbel_noise"]), entmax_alpha=_f32(cfg["entmax_alpha"]),
                adaptive_clusters=tuple(tuple(c) for c in cfg.get("adaptive_clusters") or ()),
                mixture_weights=tuple(_f32(w) for w in cfg.get("mixture_weights") or ()),
                activation=cfg["activation"], extended=cfg.get("loomdist_extended", False))


def _f32(v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"softmax: expected a number, got {v!r}")
    return float(np.float32(v))


def ce_fusion(spec: Spec, n: int):
    """(temperature, group size or None) when cross-entropy can be taken straight from this
    layer's n logits per sample (what runs is standard or a grid covering all n), else
    None."""
    run, m = runs_as(spec, n)
    if run.variant not in ("standard", "temperature", "grid") or m != n:
        return None
    return run.effective_temperature, (run.cols if run.variant == "grid" else None)


def loom_gradients(spec: Spec, grads: dict):
    return None, None


# ----------------------------------------------------------------- LOOM's init functions
def init_softmax_layer() -> Spec:
    """LOOM's InitSoftmaxLayer(): standard softmax, T = 1."""
    return Spec("standard", 1.0)


def init_grid_softmax_layer(rows: int, cols: int) -> Spec:
    """LOOM's InitGridSoftmaxLayer(rows, cols): one distribution per row (soft MoE)."""
    return Spec("grid", 1.0, rows=rows, cols=cols)


def init_hierarchical_softmax_layer(levels: list) -> Spec:
    """LOOM's InitHierarchicalSoftmaxLayer(levels): grid over the last level."""
    return Spec("hierarchical", 1.0, levels=tuple(levels))


def init_temperature_softmax_layer(temperature: float) -> Spec:
    """LOOM's InitTemperatureSoftmaxLayer(t): softmax(x / t)."""
    return Spec("temperature", temperature)


def init_gumbel_softmax_layer(temperature: float, noise_seed: int | None = None) -> Spec:
    """LOOM's InitGumbelSoftmaxLayer(t): softmax((x + Gumbel noise) / t)."""
    return Spec("gumbel", temperature, gumbel_noise=True, noise_seed=noise_seed)


def init_masked_softmax_layer(mask_size: int) -> Spec:
    """LOOM's InitMaskedSoftmaxLayer(n): all n positions enabled; replace `mask` to disable."""
    return Spec("masked", 1.0, mask=(True,) * int(mask_size))


def init_sparsemax_layer() -> Spec:
    """LOOM's InitSparsemaxLayer(): exact zeros possible."""
    return Spec("sparse", 1.0)


def init_entmax_layer(alpha: float) -> Spec:
    """LOOM's InitEntmaxLayer(alpha): 1 = softmax, 2 = sparsemax, between: LOOM's blend."""
    return Spec("entmax", 1.0, entmax_alpha=alpha)


def init_adaptive_softmax_layer(clusters: list, temperature: float = 1.0) -> Spec:
    """Adaptive softmax (loomdist's, extended=True): p(i) = P(cluster) * P(i | cluster);
    `clusters` are index lists. LOOM has no such init function and computes a plain softmax
    for the variant."""
    return Spec("adaptive", temperature, adaptive_clusters=tuple(tuple(c) for c in clusters),
                extended=True)


def init_mixture_softmax_layer(weights: list) -> Spec:
    """Mixture softmax (loomdist's, extended=True): sum_m w_m softmax(chunk_m) over M equal
    chunks of the input. LOOM has no such init function and computes a plain softmax."""
    return Spec("mixture", 1.0, mixture_weights=tuple(float(w) for w in weights),
                extended=True)


INIT_FUNCTIONS = {
    "InitSoftmaxLayer": init_softmax_layer, "InitGridSoftmaxLayer": init_grid_softmax_layer,
    "InitHierarchicalSoftmaxLayer": init_hierarchical_softmax_layer,
    "InitTemperatureSoftmaxLayer": init_temperature_softmax_layer,
    "InitGumbelSoftmaxLayer": init_gumbel_softmax_layer,
    "InitMaskedSoftmaxLayer": init_masked_softmax_layer,
    "InitSparsemaxLayer": init_sparsemax_layer, "InitEntmaxLayer": init_entmax_layer,
    "InitAdaptiveSoftmaxLayer": init_adaptive_softmax_layer,
    "InitMixtureSoftmaxLayer": init_mixture_softmax_layer,
}
__all__ = ["Spec", "VARIANTS"] + [f.__name__ for f in INIT_FUNCTIONS.values()]
