"""JSON text the way Go's encoding/json writes it (LOOM's telemetry files and HTTP bodies).

Differences from `json.dumps` that matter for byte-identical files:
- numbers: float32 values (numpy float32 scalars and arrays) use Go's shortest float32 form,
  Python floats Go's shortest float64 form: positional ("1", "0.5") unless |v| < 1e-6 or
  >= 1e21, then exponent form with no padded exponent ("1e-7", "1.5e+21");
- strings keep non-ASCII characters and escape <, >, & as \\u003c, \\u003e, \\u0026;
- compact output has no spaces; indented output is MarshalIndent(v, "", "  ").
NaN and Inf have no JSON form in Go (Marshal fails); they are written as NaN / Infinity.
"""

from __future__ import annotations

import json
import math

import numpy as np

_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
         "\u2029": "\\u2029"}


def go_float(v) -> str:
    """Go's encoding of one float: float32 bits for numpy float32, float64 otherwise."""
    x = v if isinstance(v, np.floating) else np.float64(v)
    if not math.isfinite(float(x)):
        return "NaN" if math.isnan(float(x)) else ("Infinity" if x > 0 else "-Infinity")
    a = abs(float(x))
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return np.format_float_scientific(x, unique=True, trim="-", exp_digits=1)
    return np.format_float_positional(x, unique=True, trim="-")


def go_string(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    return "".join(_HTML.get(c, c) for c in out)


def dumps(obj, indent: bool = False) -> str:
    """`obj` (dicts keep their key order) as Go's Marshal (or MarshalIndent "", "  ")."""
    parts: list[str] = []
    _write(obj, parts, "\n" if indent else None)
    return "".join(parts)


def _write(obj, out: list, nl: str | None) -> None:
    if obj is None:
        out.append("null")
    elif isinstance(obj, (bool, np.bool_)):
        out.append("true" if obj else "false")
    elif isinstance(obj, (int, np.integer)):
        out.append(str(int(obj)))
    elif isinstance(obj, (float, np.floating)):
        out.append(go_float(obj))
    elif isinstance(obj, str):
        out.append(go_string(obj))
    elif isinstance(obj, dict):
        _container(list(obj.items()), "{}", out, nl, keyed=True)
    elif isinstance(obj, np.ndarray):
        _container(list(obj.reshape(-1)), "[]", out, nl)
    elif isinstance(obj, (list, tuple)):
        _container(list(obj), "[]", out, nl)
    else:
        raise TypeError(f"gojson.dumps: cannot encode {type(obj).__name__}; pass dicts, lists, "
                        f"strings, numbers, booleans, None or numpy arrays")


def _container(items: list, brackets: str, out: list, nl: str | None, keyed=False) -> None:
    if not items:
        out.append(brackets)
        return
    inner = None if nl is None else nl + "  "
    out.append(brackets[0])
    for k, item in enumerate(items):
        out.append("," if k else "")
        if inner is not None:
            out.append(inner)
        if keyed:
            out.append(go_string(str(item[0])) + (":" if nl is None else ": "))
            item = item[1]
        _write(item, out, inner)
    out.append((nl or "") + brackets[1])
