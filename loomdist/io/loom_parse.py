"""Parse and validate LOOM bundle text; every failure is a ModelFormatError naming the place."""

from __future__ import annotations

import json

import numpy as np

from ..errors import ConfigError, LoomdistError, ModelFormatError, UnsupportedLayerError
from ..layers import layer_module
from .loom_json import (
    BUNDLE_TYPE,
    KNOWN_ACTIVATIONS,
    _short,
    decode_weights,
    to_float32,
)

GRID_FIELDS = ("batch_size", "grid_rows", "grid_cols", "layers_per_cell")


def parse_bundle(text) -> dict:
    """{model_id: Network} from bundle text."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise ModelFormatError(f"model text: expected str, got {type(text).__name__}")
    try:
        bundle = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ModelFormatError(f"model text: not valid JSON ({e}); the file is truncated or "
                               f"not a LOOM bundle") from e
    if not isinstance(bundle, dict) or bundle.get("type") != BUNDLE_TYPE:
        raise ModelFormatError(f"model text: top level must be {{'type': '{BUNDLE_TYPE}', ...}}, "
                               f"got {_short(bundle)}")
    models = bundle.get("models")
    if not isinstance(models, list) or not models:
        raise ModelFormatError("bundle.models: expected a non-empty list of models")
    out = {}
    for n, model in enumerate(models):
        mid, net = parse_model(model, f"models[{n}]")
        out[mid] = net
    return out


def parse_model(model, where: str):
    """(model_id, Network) from one bundle entry."""
    from ..network import Network
    if not isinstance(model, dict):
        raise ModelFormatError(f"{where}: expected an object, got {_short(model)}")
    cfg = model.get("cfg")
    if not isinstance(cfg, dict):
        raise ModelFormatError(f"{where}.cfg: expected an object, got {_short(cfg)}")
    mid = model.get("id", cfg.get("id"))
    if not isinstance(mid, str):
        raise ModelFormatError(f"{where}.id: expected a string, got {_short(mid)}")
    grid = [_int(cfg.get(k), f"{where}.cfg.{k}") for k in GRID_FIELDS]
    layers = cfg.get("layers")
    total = grid[1] * grid[2] * grid[3]
    if not isinstance(layers, list) or len(layers) != total:
        raise ModelFormatError(f"{where}.cfg.layers: expected a list of {total} layers "
                               f"(rows*cols*layers_per_cell), got {_short(layers)}")
    weights = decode_weights(model.get("weights"), f"{where}.weights")
    if len(weights) != total:
        raise ModelFormatError(f"{where}.weights: {len(weights)} weight entries for {total} "
                               f"layers; the file is corrupt")
    net = Network(0, grid[1], grid[2], grid[3], batch_size=grid[0])
    for i, (lc, lw) in enumerate(zip(layers, weights)):
        spec = spec_from_config(lc, f"{where}.cfg.layers[{i}]")
        params = params_from_json(spec, lw, f"{where}.weights.layers[{i}]")
        net.set_layer(*net.coords(i), spec, params)
    return mid, net


def spec_from_config(cfg, where: str):
    """A layer Spec from a LOOM layer cfg dict (LOOM's activation-string quirks applied)."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("type"), str):
        raise ModelFormatError(f"{where}: expected a layer object with a string 'type', got "
                               f"{_short(cfg)}")
    try:
        module = layer_module(cfg["type"], where)
    except UnsupportedLayerError as e:
        raise UnsupportedLayerError(
            f"{e}; this file needs a newer loomdist or is not LOOM's") from None
    cfg = GoDefaults(cfg, activation=_activation(cfg.get("activation", "relu"), where))
    try:
        return module.from_config(cfg)
    except KeyError as e:
        raise ModelFormatError(f"{where}: missing field {e} for type {cfg['type']!r}") from e
    except (ConfigError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, LoomdistError) and not isinstance(e, ConfigError):
            raise
        raise ModelFormatError(f"{where}: invalid {cfg['type']} layer: {e}") from e


class GoDefaults(dict):
    """A layer cfg where an absent field reads as Go's zero value (LOOM omits zeros)."""

    def __missing__(self, key):
        return 0


def params_from_json(spec, wdict, where: str) -> dict:
    """float32 parameter arrays of `spec` from its weight-payload dict."""
    module = layer_module(spec.kind)
    if hasattr(module, "weights_from_json"):
        return module.weights_from_json(spec, wdict, where)
    shapes = module.param_shapes(spec)
    if not shapes:
        return {}
    if not isinstance(wdict, dict):
        raise ModelFormatError(f"{where}: expected an object with {sorted(shapes)}, got "
                               f"{_short(wdict)}")
    out = {}
    for name, shape in shapes.items():
        if name not in wdict:
            raise ModelFormatError(f"{where}: missing weights {name!r} for {spec.kind}")
        arr = to_float32(wdict[name], f"{where}.{name}")
        if arr.size != int(np.prod(shape)):
            raise ModelFormatError(f"{where}.{name}: {arr.size} values, the layer config needs "
                                   f"{int(np.prod(shape))} (shape {shape}); cfg and weights "
                                   f"disagree")
        out[name] = arr.reshape(shape)
    return out


def _activation(name, where: str) -> str:
    if name is None:  # Go leaves the string empty: ScaledReLU
        return "relu"
    if not isinstance(name, str):
        raise ModelFormatError(f"{where}.activation: expected a string, got {_short(name)}")
    # LOOM's stringToActivation: an exact match of a known name, else ScaledReLU ("linear",
    # "gelu", "", "Tanh" ... all load as "relu")
    return name if name in KNOWN_ACTIVATIONS else "relu"


def _int(v, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ModelFormatError(f"{where}: expected a positive integer, got {_short(v)}")
    return v
