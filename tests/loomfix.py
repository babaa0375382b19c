"""Read LOOM's recorded fixtures (../shared/fixtures/loom) without going through loomdist.io."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest

# A copy of ../shared/fixtures/loom lives in the repo; LOOM_FIXTURES points elsewhere.
FIXTURES = Path(os.environ.get("LOOM_FIXTURES",
                               Path(__file__).resolve().parent / "fixtures" / "loom"))


def f32(values) -> np.ndarray:
    """JSON numbers (Go's shortest float32 form) -> exact float32 bits."""
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def fixture_names(prefix: str = "") -> list[str]:
    return sorted(p.name[:-len(".model.json")] for p in FIXTURES.glob(f"{prefix}*.model.json"))


def load(name: str):
    """Returns (layer cfgs, per-layer weight dicts, fixture data dict)."""
    path = FIXTURES / f"{name}.json"
    if not path.exists():
        pytest.skip(f"fixture {name} not found under {FIXTURES}")
    data = json.loads(path.read_text())
    bundle = json.loads((FIXTURES / data["model_file"]).read_text())
    model = bundle["models"][0]
    weights = json.loads(base64.b64decode(model["weights"]["data"]))
    return model["cfg"]["layers"], weights["layers"], data


def perturbed_params(module, spec, seed: int = 7, dtype=np.float64, spread: float = 0.3):
    """The module's initial parameters plus N(0, spread) noise (no zero biases), as `dtype`."""
    rng = np.random.default_rng(seed)
    return {k: (v + rng.normal(0, spread, v.shape)).astype(dtype)
            for k, v in module.init(spec, rng).items()}


def fixture_layer(module, name: str):
    """(cfg, spec, float32 params, data) of a one-layer fixture, built without loomdist.io."""
    cfgs, weights, data = load(name)
    spec = module.from_config(cfgs[0])
    shapes = module.param_shapes(spec)
    params = {k: f32(weights[0][k]).reshape(shapes[k]) for k in module.WEIGHT_KEYS}
    return cfgs[0], spec, params, data


# LOOM's BackwardCPU is a true gradient for these kinds only (loom-layers.md; the fixtures'
# README): Dense, Conv2D, and softmax variants whose backward formula (the plain softmax JVP,
# per row for grid, without a 1/T factor) is their Jacobian; Parallel built from them.
_EXACT_SOFTMAX = ("standard", "temperature", "masked", "grid")


def exact_gradients(name: str) -> bool:
    """Whether LOOM's recorded gradients of fixture `name` are true gradients."""
    cfgs, _, _ = load(name)
    todo = list(cfgs)
    while todo:
        c = todo.pop()
        kind = c["type"]
        if kind == "parallel":
            todo += c.get("branches") or []
        elif kind == "softmax":
            if (c.get("softmax_variant") or "standard") not in _EXACT_SOFTMAX \
                    or c.get("temperature", 1) not in (0, 1):
                return False
        elif kind not in ("dense", "conv2d"):
            return False
    return True
