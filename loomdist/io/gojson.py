"""A JSON encoder that writes what Go's encoding/json writes (float32 numbers, HTML escapes).

LOOM writes bundles with json.MarshalIndent(v, "", "  ") and weight payloads with json.Marshal;
numbers are Go's shortest float32 round-trip form. Matching it byte for byte means a model
loaded and saved by loomdist is the same file LOOM would write.
"""

from __future__ import annotations

import json
import math

import numpy as np

from ..errors import ModelFormatError


def go_float32(v) -> str:
    """Go's json encoding of a float32 value: shortest digits, 'e' form below 1e-6 or >= 1e21."""
    f = np.float32(v)
    if not np.isfinite(f):
        raise ModelFormatError(f"model file: value {float(f)!r} cannot be written as JSON; "
                               f"LOOM's format has no NaN/Inf (check the weights for divergence)")
    a = abs(f)  # compared in float32, as Go does for bits == 32
    if a != 0 and (a < np.float32(1e-6) or a >= np.float32(1e21)):
        s = np.format_float_scientific(f, unique=True, trim="-", exp_digits=2)
        mant, exp = s.split("e")
        sign, digits = exp[0], exp[1:]
        if sign == "-" and len(digits) == 2 and digits[0] == "0":
            digits = digits[1:]  # Go rewrites e-07 as e-7 (but keeps e+21)
        return f"{mant}e{sign}{digits}"
    s = np.format_float_positional(f, unique=True, trim="-")
    return "-0" if s == "-0" else s


def _string(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    return (out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def dumps(obj, indent: str | None = None) -> str:
    """Serialise dicts (in insertion order), lists, arrays, str, bool, int, float, None."""
    parts: list[str] = []
    _encode(obj, indent, 0, parts)
    return "".join(parts)


def _encode(obj, indent, level, out: list) -> None:
    if isinstance(obj, dict):
        _container(list(obj.items()), "{", "}", indent, level, out, keyed=True)
    elif isinstance(obj, np.ndarray):
        out.append(_array(obj, indent, level))
    elif isinstance(obj, (list, tuple)):
        _container(list(obj), "[", "]", indent, level, out, keyed=False)
    elif isinstance(obj, str):
        out.append(_string(obj))
    elif obj is None:
        out.append("null")
    elif isinstance(obj, (bool, np.bool_)):
        out.append("true" if obj else "false")
    elif isinstance(obj, (int, np.integer)):
        out.append(str(int(obj)))
    elif isinstance(obj, (float, np.floating)):
        out.append(go_float32(obj))
    else:
        raise TypeError(f"gojson: cannot encode {type(obj).__name__}")


def _container(items, open_, close, indent, level, out, keyed) -> None:
    if not items:
        out.append(open_ + close)
        return
    out.append(open_)
    pad = None if indent is None else "\n" + indent * (level + 1)
    for n, item in enumerate(items):
        if n:
            out.append(",")
        if pad:
            out.append(pad)
        if keyed:
            out.append(_string(item[0]) + (": " if indent is not None else ":"))
            item = item[1]
        _encode(item, indent, level + 1, out)
    if pad:
        out.append("\n" + indent * level)
    out.append(close)


def _array(a: np.ndarray, indent, level) -> str:
    values = [go_float32(v) for v in np.asarray(a, dtype=np.float32).ravel().tolist()]
    if not values:
        return "[]"
    if indent is None:
        return "[" + ",".join(values) + "]"
    pad = "\n" + indent * (level + 1)
    return "[" + ",".join(pad + v for v in values) + "\n" + indent * level + "]"


def is_finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
