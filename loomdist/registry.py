"""LOOM's layer-init registry: list init functions and call them by name with coercion."""

from __future__ import annotations

import inspect
import re
import typing

from .activations import check_activation
from .errors import ConfigError
from .layers import LAYERS


def _functions() -> dict:
    """{LOOM name: python function} over every registered layer module."""
    out = {}
    for module in LAYERS.values():
        out.update(getattr(module, "INIT_FUNCTIONS", {}))
    return out


def snake_case(name: str) -> str:
    """InitConv2DLayer -> init_conv2d_layer, InitRNNLayer -> init_rnn_layer."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s)
    return s.replace("2_D", "2D").lower()


def _signature_text(fn) -> str:
    hints = typing.get_type_hints(fn)
    args = ", ".join(_type_name(hints.get(p, object)) for p in inspect.signature(fn).parameters)
    return f"func({args}) {_type_name(hints.get('return', object))}"


def _type_name(t) -> str:
    return getattr(t, "__name__", str(t)).replace("typing.", "")


def list_layer_init_functions() -> list[dict]:
    """Every init function: {name, loom_name, signature, num_args, arg_types, doc}."""
    rows = []
    for loom_name, fn in sorted(_functions().items()):
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
        rows.append({
            "name": fn.__name__, "loom_name": loom_name, "signature": _signature_text(fn),
            "num_args": len(sig.parameters),
            "arg_types": [_type_name(hints.get(p, object)) for p in sig.parameters],
            "doc": (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "",
        })
    return rows


def call_layer_init(name: str, params=()):
    """Call an init function by LOOM name ("InitDenseLayer") or snake_case name.

    Args:
        name: the function's LOOM or Python name.
        params: positional list/tuple, or a dict of keyword arguments. Numbers given as
            floats/strings are coerced to int where the signature wants int; activations
            accept LOOM ids (0-5) or names.
    Returns:
        The layer Spec.
    Raises:
        ConfigError: unknown name, wrong argument count, or an argument that cannot be coerced.
    """
    table = _functions()
    fn = table.get(name) or {f.__name__: f for f in table.values()}.get(name)
    if fn is None:
        raise ConfigError(f"layer init function {name} not found; available: "
                          f"{sorted(table)}")
    sig = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    if isinstance(params, dict):
        bound = _bind(fn, sig, (), params, name)
    else:
        bound = _bind(fn, sig, tuple(params), {}, name)
    for pname, value in list(bound.arguments.items()):
        bound.arguments[pname] = _coerce(value, hints.get(pname), pname, name)
    return fn(*bound.args, **bound.kwargs)


def _bind(fn, sig, args, kwargs, name):
    try:
        return sig.bind(*args, **kwargs)
    except TypeError as e:
        required = sum(p.default is inspect.Parameter.empty for p in sig.parameters.values())
        got = len(args) + len(kwargs)
        raise ConfigError(f"{name} expects {required} arguments, got {got} ({e}); "
                          f"signature: {_signature_text(fn)}") from e


def _coerce(value, hint, pname: str, fname: str):
    where = f"{fname}({pname}={value!r})"
    if pname == "activation":
        return check_activation(value, where)
    if hint is int:
        try:
            f = float(value)
        except (TypeError, ValueError):
            f = None
        if f is None or not f.is_integer() or isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer; pass a whole number")
        return int(f)
    if hint is float:
        try:
            return float(value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: expected a number") from e
    return value
