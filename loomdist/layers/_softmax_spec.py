"""Validation and output sizes of softmax specs (kept apart from the math)."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings

import numpy as np

from ..activations import check_activation
from ..errors import ConfigError, LoomFallbackWarning, ShapeError

VARIANTS = ("standard", "grid", "hierarchical", "temperature", "gumbel", "masked", "sparse",
            "entmax", "adaptive", "mixture")
ALIASES = {"sparsemax": "sparse", "softmax": "standard", "": "standard"}


def check_spec(spec) -> None:
    """Normalise and validate a softmax Spec in place (it is frozen: use object.__setattr__)."""
    where = f"softmax({spec.variant!r})"
    variant = ALIASES.get(spec.variant, spec.variant)
    if variant not in VARIANTS:
        raise ConfigError(f"{where}: unknown variant; use one of {list(VARIANTS)}")
    _set(spec, "variant", variant)
    _set(spec, "activation", check_activation(spec.activation, where))
    t = _number(spec.temperature, where, "temperature")
    if t < 0:
        raise ConfigError(f"{where}: temperature must be >= 0 (got {t}); 0 means 1")
    # LOOM stores these as float32: round once here so files round-trip exactly
    _set(spec, "temperature", _f32(t))
    _set(spec, "entmax_alpha", _f32(_number(spec.entmax_alpha, where, "entmax_alpha")))
    for name in ("rows", "cols"):
        v = getattr(spec, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"{where}: {name} must be a non-negative integer (got {v!r})")
    _set(spec, "mask", tuple(bool(m) for m in spec.mask))
    _set(spec, "levels", tuple(spec.levels))
    _set(spec, "mixture_weights", tuple(_f32(_number(w, where, "mixture weight"))
                                        for w in spec.mixture_weights))
    _set(spec, "adaptive_clusters", tuple(tuple(c) for c in spec.adaptive_clusters))
    if not isinstance(spec.extended, bool):
        raise ConfigError(f"{where}: extended must be True or False (got {spec.extended!r})")
    CHECKS.get(variant, lambda s, w: None)(spec, where)


def _f32(v: float) -> float:
    return float(np.float32(v))


def _set(spec, name, value):
    object.__setattr__(spec, name, value)


def _number(v, where, name) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{where}: {name} must be a finite number (got {v!r})")
    return float(v)


def _grid(spec, where):
    if spec.rows < 1 or spec.cols < 1:
        raise ConfigError(f"{where}: grid softmax needs rows >= 1 and cols >= 1 (got "
                          f"{spec.rows}x{spec.cols}); pass init_grid_softmax_layer(rows, cols)")


def _levels(spec, where):
    if not spec.levels or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                              for v in spec.levels):
        raise ConfigError(f"{where}: hierarchy levels must be a non-empty list of positive "
                          f"integers (got {list(spec.levels)}); e.g. [3, 3, 4]")


def _mask(spec, where):
    if not spec.mask:
        raise ConfigError(f"{where}: masked softmax needs a non-empty mask; pass one bool per "
                          f"input feature")


def _adaptive(spec, where):
    seen = set()
    for c in spec.adaptive_clusters:
        if not c or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in c):
            raise ConfigError(f"{where}: each adaptive cluster must be a non-empty list of "
                              f"output indices >= 0 (got {list(c)})")
        if seen & set(c):
            raise ConfigError(f"{where}: adaptive clusters overlap at {sorted(seen & set(c))}; "
                              f"each output index belongs to one cluster")
        seen |= set(c)


def _mixture(spec, where):
    ws = [_number(w, where, "mixture weight") for w in spec.mixture_weights]
    if ws and (min(ws) < 0 or sum(ws) <= 0):
        raise ConfigError(f"{where}: mixture weights must be >= 0 with a positive sum "
                          f"(got {ws})")


def _gumbel(spec, where):
    s = spec.noise_seed
    if s is not None and (isinstance(s, bool) or not isinstance(s, int)):
        raise ConfigError(f"{where}: noise_seed must be an int or None (got {s!r})")


# entmax needs no check: any finite alpha is valid (LOOM: <= 1 softmax, >= 2 sparsemax)
CHECKS = {"grid": _grid, "hierarchical": _levels, "masked": _mask,
          "adaptive": _adaptive, "mixture": _mixture, "gumbel": _gumbel}


def out_features_of(spec, n: int, where: str) -> int:
    """Output features per sample for n input features; ShapeError when they do not fit
    (configs LOOM falls back from, runs_as, fit any n)."""
    v = spec.variant
    if v == "grid" and spec.rows * spec.cols > n:
        _shape(where, f"grid rows x cols = {spec.rows}x{spec.cols} = {spec.rows * spec.cols}",
               n, "set rows*cols to at most the input size")
    if not spec.extended:
        return n
    if v == "adaptive" and spec.adaptive_clusters:
        top = max(max(c) for c in spec.adaptive_clusters)
        if top >= n:
            _shape(where, f"adaptive cluster index {top}", n, "use indices < input size")
    if v == "mixture" and spec.mixture_weights:
        m = len(spec.mixture_weights)
        if n % m:
            _shape(where, f"{m} mixture components", n, "use an input size divisible by them")
        return n // m
    return n


def runs_as(spec, n: int) -> tuple:
    """What LOOM's forward computes for `spec` on n logits: (the spec to run, how many
    leading logits it covers). LOOM falls back silently where a config does not fit; so does
    loomdist, with a LoomFallbackWarning (once per spec and size):

    - adaptive and mixture (unless `extended`): plain softmax, temperature ignored;
    - masked with len(mask) != n, hierarchical whose levels do not multiply to n: plain
      softmax(x / T);
    - grid with rows*cols < n: the grid over the first rows*cols logits, the rest stay 0.
    """
    return _runs_as(spec, int(n))


@functools.lru_cache(maxsize=1024)
def _runs_as(spec, n: int) -> tuple:
    v = spec.variant
    if v in ("adaptive", "mixture") and not spec.extended:
        return dataclasses.replace(spec, variant="standard", temperature=1.0), n
    if v == "masked" and len(spec.mask) != n:
        _fallback(spec, f"its mask has {len(spec.mask)} entries for {n} logits",
                  "a plain softmax of all of them")
        return dataclasses.replace(spec, variant="standard"), n
    if v == "hierarchical" and math.prod(spec.levels) != n:
        _fallback(spec, f"its levels {list(spec.levels)} multiply to "
                        f"{math.prod(spec.levels)}, not {n} logits", "a plain softmax")
        return dataclasses.replace(spec, variant="standard"), n
    if v == "grid" and spec.rows * spec.cols < n:
        m = spec.rows * spec.cols
        _fallback(spec, f"its {spec.rows}x{spec.cols} grid covers {m} of {n} logits",
                  f"the grid over the first {m} and zeros after them")
        return spec, m
    return spec, n


def _fallback(spec, what: str, runs: str) -> None:
    warnings.warn(f"softmax({spec.variant!r}): {what}; like LOOM, loomdist computes {runs} "
                  f"(fix the layer's config if that is not what you meant)",
                  LoomFallbackWarning, stacklevel=4)


def _shape(where, what, n, fix):
    raise ShapeError(f"{where}: {what} does not match the input ({n} features per sample); "
                     f"{fix}")
