"""LOOM's JSON model bundles: read and write them exactly (field names, order, float32 bits).

Bundle: {"type": "modelhost/bundle", "version": 1, "models": [{"id", "cfg", "weights"}]}, where
weights = {"fmt": "jsonModelB64", "data": base64(compact JSON {"type": "float32", "layers"})}.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError, LoomdistError, ModelFormatError
from ..layers import layer_module
from . import gojson

BUNDLE_TYPE = "modelhost/bundle"
WEIGHTS_FMT = "jsonModelB64"
# The strings LOOM's stringToActivation knows; every other one ("linear", which LOOM writes for
# id 5, "scaled_relu" from its README, "gelu" ...) loads as ScaledReLU (id 0).
KNOWN_ACTIVATIONS = ("relu", "sigmoid", "tanh", "softplus", "leaky_relu")


# ----------------------------------------------------------------------------- writing
def layer_config(spec, branch: bool = False) -> dict:
    """LOOM cfg dict of one layer: keys in LOOM's order, zero values dropped.

    Every field of LOOM's LayerDefinition except type and activation is `omitempty`, so Go
    never writes 0, false, "" or empty lists; neither do we.
    """
    cfg = layer_module(spec.kind).to_config(spec, branch=branch)
    return {k: v for k, v in cfg.items() if k in ("type", "activation") or not _empty(v)}


def _empty(v) -> bool:
    if isinstance(v, (list, tuple, dict, str, np.ndarray)):
        return len(v) == 0
    return v is None or v is False or v == 0


def layer_weights(spec, params: dict) -> dict:
    """LOOM weight-payload dict of one layer (keys in LOOM's order)."""
    module = layer_module(spec.kind)
    if hasattr(module, "weights_to_json"):
        return module.weights_to_json(spec, params)
    return {k: params[k].ravel() for k in module.WEIGHT_KEYS}


def model_dict(net, model_id: str) -> dict:
    """{"id", "cfg", "weights"} for one network."""
    if not isinstance(model_id, str) or not model_id:
        raise ConfigError(f"save_model: model_id must be a non-empty string (got {model_id!r})")
    missing = [net.coords(i) for i, s in enumerate(net.layers) if s is None]
    if missing:
        raise ConfigError(f"save_model({model_id!r}): layers {missing} are not set; LOOM files "
                          f"need every grid slot filled (call set_layer)")
    slots = net.layers
    cfg = {"id": model_id, "batch_size": net.batch_size, "grid_rows": net.grid_rows,
           "grid_cols": net.grid_cols, "layers_per_cell": net.layers_per_cell,
           "layers": [layer_config(s.spec) for s in slots]}
    payload = {"type": "float32", "layers": [layer_weights(s.spec, s.params) for s in slots]}
    data = base64.b64encode(gojson.dumps(payload).encode()).decode()
    return {"id": model_id, "cfg": cfg, "weights": {"fmt": WEIGHTS_FMT, "data": data}}


def bundle_to_string(models: dict) -> str:
    """A bundle of {model_id: Network} as LOOM's indented JSON text."""
    if not isinstance(models, dict) or not models:
        raise ConfigError("save_bundle: pass a non-empty dict {model_id: Network}")
    bundle = {"type": BUNDLE_TYPE, "version": 1,
              "models": [model_dict(net, mid) for mid, net in models.items()]}
    return gojson.dumps(bundle, indent="  ")


def save_bundle(path, models: dict) -> None:
    """Write {model_id: Network} to `path` atomically (temp file in the same dir + rename)."""
    write_atomic(Path(path), bundle_to_string(models).encode())


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- reading
def load_bundle_from_string(text: str) -> dict:
    """Parse LOOM bundle text into {model_id: Network}. Raises ModelFormatError."""
    from .loom_parse import parse_bundle
    return parse_bundle(text)


def load_bundle(path) -> dict:
    """Read a LOOM bundle file into {model_id: Network}."""
    return load_bundle_from_string(_read(path))


def load_model_from_string(text: str, model_id: str):
    """The Network `model_id` from LOOM bundle text (LOOM's LoadModelFromString)."""
    return _pick(load_bundle_from_string(text), model_id, "load_model_from_string")


def load_model(path, model_id: str):
    """The Network `model_id` from a LOOM bundle file (LOOM's LoadModel)."""
    return _pick(load_bundle(path), model_id, str(path))


def _pick(models: dict, model_id: str, where: str):
    if model_id not in models:
        raise ModelFormatError(f"{where}: model id {model_id!r} not in the bundle; "
                               f"it holds {sorted(models)}")
    return models[model_id]


def _read(path) -> str:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"load_model: no file at {p}; check the path")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ModelFormatError(f"{p}: not UTF-8 text ({e}); is this a LOOM JSON bundle?") from e


def decode_weights(weights, where: str) -> list:
    """The per-layer weight dicts of a model's "weights" object."""
    if not isinstance(weights, dict) or weights.get("fmt") != WEIGHTS_FMT:
        raise ModelFormatError(f"{where}: expected {{'fmt': '{WEIGHTS_FMT}', 'data': ...}}, "
                               f"got {_short(weights)}")
    data = weights.get("data")
    if not isinstance(data, str):
        raise ModelFormatError(f"{where}.data: expected a base64 string, got {_short(data)}")
    try:
        raw = base64.b64decode(data, validate=True)
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as e:
        raise ModelFormatError(f"{where}.data: not base64-encoded JSON ({e}); the file is "
                               f"corrupt or truncated") from e
    if not isinstance(payload, dict) or not isinstance(payload.get("layers"), list):
        raise ModelFormatError(f"{where}.data: decoded payload has no 'layers' list")
    return payload["layers"]


def to_float32(values, where: str) -> np.ndarray:
    """A JSON number list as exact float32 (parse as float64, then cast, as LOOM does)."""
    if not isinstance(values, list) or not all(gojson.is_finite_number(v) for v in values):
        raise ModelFormatError(f"{where}: expected a list of finite numbers, got "
                               f"{_short(values)}")
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def _short(v) -> str:
    s = repr(v)
    return s if len(s) < 80 else s[:77] + "..."


__all__ = ["save_bundle", "load_bundle", "load_model", "load_model_from_string",
           "load_bundle_from_string", "bundle_to_string", "write_atomic", "LoomdistError"]
