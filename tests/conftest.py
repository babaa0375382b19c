"""Fixtures shared by the test modules (tests/actors/conftest.py adds the Ray session)."""

from __future__ import annotations

import pytest


@pytest.fixture
def dense_need_dx(monkeypatch) -> list:
    """[(input features, need_dx)] of every dense.backward_input call during the test
    (dense.backward calls it too, with need_dx=True)."""
    from loomdist.layers import dense
    asked, real = [], dense.backward_input

    def spy(spec, params, cache, dy, need_dx=True):
        asked.append((spec.input_height, need_dx))
        return real(spec, params, cache, dy, need_dx=need_dx)
    monkeypatch.setattr(dense, "backward_input", spy)
    return asked
