"""Every case in tests/cases.py: backward equals float64 finite differences and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from loomdist.gradcheck import check_layer
from loomdist.layers import LAYERS, module_of
from tests.cases import CASES


def test_cases_cover_registry():
    assert set(LAYERS) <= {c.kind for c in CASES}, "a registered layer kind has no case"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_finite_differences(case):
    module = module_of(case.spec)
    rng = np.random.default_rng(7)
    params = {k: v + rng.normal(0, 0.1, v.shape).astype(v.dtype)
              for k, v in module.init(case.spec, rng).items()}
    check_layer(module, case.spec, params, case.input(), atol=case.tol)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_output_shape_matches_out_features(case):
    module = module_of(case.spec)
    params = module.init(case.spec, np.random.default_rng(0))
    y, _ = module.forward(case.spec, params, case.input())
    assert y.shape == (case.batch, case.spec.out_features(case.in_features))
    assert y.dtype == np.float32
