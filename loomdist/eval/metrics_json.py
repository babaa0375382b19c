"""LOOM's SaveMetrics / LoadMetrics JSON, byte for byte (Go's encoding/json float64 form)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io.loom_json import write_atomic
from .metrics import BUCKET_ORDER, DeviationBucket, DeviationMetrics, PredictionResult

_BIG = 1e9  # LOOM's sanitizeFloat: +Inf -> 1e9, -Inf -> -1e9, NaN -> 0
_TOP_KEYS = ("total_samples", "score", "avg_deviation", "failures", "buckets", "results")
_BUCKET_KEYS = ("range_min", "range_max", "count", "samples")
_RESULT_KEYS = ("sample_index", "expected", "actual", "deviation", "bucket")


def go_float64(x: float) -> str:
    """Go's json encoding of a float64: shortest round-trip digits, 'f' form for
    1e-6 <= |x| < 1e21 (whole values without ".0"), else 'e' form with e-07 -> e-7."""
    x = float(x)
    if not math.isfinite(x):
        raise DataError(f"save_metrics: value {x!r} cannot be written as JSON; Go's "
                        f"encoding/json rejects NaN/Inf too (check the expected/actual data)")
    a = abs(x)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        s = np.format_float_scientific(x, unique=True, trim="-", exp_digits=2)
        mant, exp = s.split("e")
        if exp[0] == "-" and len(exp) == 3 and exp[1] == "0":
            exp = "-" + exp[2]
        return f"{mant}e{exp}"
    return np.format_float_positional(x, unique=True, trim="-")


def sanitize(v: float) -> float:
    """LOOM's sanitizeFloat."""
    if math.isnan(v):
        return 0.0
    if math.isinf(v):
        return _BIG if v > 0 else -_BIG
    return v


def metrics_document(m: DeviationMetrics) -> dict:
    """The object SaveMetrics marshals, keys in LOOM's order, buckets sorted as Go sorts."""
    buckets = {k: {"range_min": sanitize(b.range_min), "range_max": sanitize(b.range_max),
                   "count": b.count, "samples": list(b.samples)}
               for k, b in sorted(m.buckets.items(), key=lambda kv: kv[0].encode())}
    results = [{"sample_index": r.sample_index, "expected": r.expected, "actual": r.actual,
                "deviation": sanitize(r.deviation), "bucket": r.bucket} for r in m.results]
    return {"total_samples": m.total_samples, "score": m.score,
            "avg_deviation": sanitize(m.average_deviation), "failures": m.failures,
            "buckets": buckets, "results": results}


def metrics_to_json(m: DeviationMetrics) -> str:
    """json.MarshalIndent(doc, "", "  ") as Go writes it (no trailing newline)."""
    out: list[str] = []
    _encode(metrics_document(m), 0, out)
    return "".join(out)


def _encode(obj, level: int, out: list) -> None:
    if isinstance(obj, dict):
        _container([(_string(k) + ": ", v) for k, v in obj.items()], "{}", level, out)
    elif isinstance(obj, list):
        _container([("", v) for v in obj], "[]", level, out)
    elif isinstance(obj, str):
        out.append(_string(obj))
    elif isinstance(obj, bool) or obj is None:
        raise TypeError(f"metrics_json: unexpected {obj!r}")
    elif isinstance(obj, (int, np.integer)):
        out.append(str(int(obj)))
    else:
        out.append(go_float64(obj))


def _container(items: list, brackets: str, level: int, out: list) -> None:
    if not items:
        out.append(brackets)
        return
    pad = "\n" + "  " * (level + 1)
    out.append(brackets[0])
    for n, (prefix, value) in enumerate(items):
        out.append(("," if n else "") + pad + prefix)
        _encode(value, level + 1, out)
    out.append("\n" + "  " * level + brackets[1])


def _string(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)  # Go also escapes <, >, & and U+2028/9
    return (out.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def save_metrics(m: DeviationMetrics, path) -> Path:
    """Write LOOM's SaveMetrics bytes to `path` atomically (temp + rename), mode 0644.

    Raises DataError when a result holds NaN/Inf expected/actual (LOOM's SaveMetrics fails
    with "failed to marshal metrics" there too); nothing is written then.
    """
    path = Path(path)
    data = metrics_to_json(m).encode()
    write_atomic(path, data)
    os.chmod(path, 0o644)  # mkstemp creates 0600; LOOM's os.WriteFile asks for 0644
    return path


def load_metrics(path) -> DeviationMetrics:
    """LOOM's LoadMetrics: read a SaveMetrics file ('100%+' keeps range_max 1e9).

    Raises:
        DataError: the file cannot be read, is not JSON, or lacks/mistypes a field.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"load_metrics: failed to read metrics file {path} ({e}); pass the "
                        f"path of a file written by SaveMetrics/save_metrics") from e
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise DataError(f"load_metrics: failed to unmarshal metrics in {path} ({e}); the "
                        f"file is not SaveMetrics JSON") from e
    return metrics_from_document(doc, str(path))


def _reject_constant(name: str):
    raise ValueError(f"invalid JSON literal {name}")


def metrics_from_document(doc, where: str = "metrics") -> DeviationMetrics:
    """DeviationMetrics from a parsed SaveMetrics object (validated field by field)."""
    _need_keys(doc, _TOP_KEYS, where)
    buckets_doc = doc["buckets"]
    if not isinstance(buckets_doc, dict):
        _bad(where, "buckets", buckets_doc, "an object of buckets")
    names = [k for k in BUCKET_ORDER if k in buckets_doc]
    names += [k for k in buckets_doc if k not in BUCKET_ORDER]
    results = doc["results"]
    if not isinstance(results, list):
        _bad(where, "results", results, "an array of results")
    return DeviationMetrics(
        buckets={k: _bucket(buckets_doc[k], f"{where}: buckets[{k!r}]") for k in names},
        score=_num(doc["score"], where, "score"),
        total_samples=_int(doc["total_samples"], where, "total_samples"),
        failures=_int(doc["failures"], where, "failures"),
        results=[_result(r, f"{where}: results[{i}]") for i, r in enumerate(results)],
        average_deviation=_num(doc["avg_deviation"], where, "avg_deviation"))


def _bucket(d, where: str) -> DeviationBucket:
    _need_keys(d, _BUCKET_KEYS, where)
    samples = d["samples"] if d["samples"] is not None else []
    if not isinstance(samples, list):
        _bad(where, "samples", samples, "an array of sample indices")
    return DeviationBucket(_num(d["range_min"], where, "range_min"),
                           _num(d["range_max"], where, "range_max"),
                           _int(d["count"], where, "count"),
                           [_int(s, where, "samples[]") for s in samples])


def _result(d, where: str) -> PredictionResult:
    _need_keys(d, _RESULT_KEYS, where)
    if not isinstance(d["bucket"], str):
        _bad(where, "bucket", d["bucket"], "a bucket name string")
    return PredictionResult(_int(d["sample_index"], where, "sample_index"),
                            _num(d["expected"], where, "expected"),
                            _num(d["actual"], where, "actual"),
                            _num(d["deviation"], where, "deviation"), d["bucket"])


def _need_keys(d, keys: tuple, where: str) -> None:
    if not isinstance(d, dict):
        raise DataError(f"load_metrics: {where} is {type(d).__name__}, not an object; pass "
                        f"SaveMetrics JSON")
    missing = [k for k in keys if k not in d]
    if missing:
        raise DataError(f"load_metrics: {where} lacks {missing} (has {sorted(d)}); pass "
                        f"SaveMetrics JSON, which always writes {list(keys)}")


def _num(v, where: str, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        _bad(where, key, v, "a finite number")
    return float(v)


def _int(v, where: str, key: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        _bad(where, key, v, "an integer")
    return v


def _bad(where: str, key: str, value, what: str):
    raise DataError(f"load_metrics: {where}: {key} is {value!r}, expected {what}; the file "
                    f"is not SaveMetrics JSON (or was edited)")
