"""One case per layer kind and variant; cross-cutting suites parametrize over CASES.

A test (test_cases_cover_registry) fails when a registered kind has no case here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loomdist.layers import LAYERS


@dataclass(frozen=True)
class Case:
    name: str
    spec: object
    batch: int
    in_features: int
    tol: float = 1e-6  # absolute tolerance of the float64 finite-difference check

    @property
    def kind(self) -> str:
        return self.spec.kind

    def input(self, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.standard_normal((self.batch, self.in_features)).astype(np.float32)


def _cases_for(kind: str) -> list:
    m = LAYERS.get(kind)
    if m is None:  # TEMPORARY while modules are being written (lead removes)
        return []
    S = m.Spec
    table = {  # lambdas: only the wanted kind's specs are built
        "dense": lambda: [Case(f"dense_{a}", S(5, 4, a), 3, 5)
                  for a in ("relu", "sigmoid", "tanh", "softplus", "leaky_relu", "linear")],
        "conv2d": lambda: [Case("conv2d_pad1", S(5, 5, 2, 3, 3, 1, 1, "leaky_relu"), 2, 50),
                   Case("conv2d_stride2", S(6, 5, 2, 2, 3, 2, 0, "tanh"), 2, 60)],
        "multi_head_attention": lambda: [Case("mha_2heads", S(8, 2, 4), 2, 32),
                                 Case("mha_1head", S(4, 1, 3), 1, 12)],
        "layer_norm": lambda: [Case("layer_norm", S(6), 3, 6)],
        "rms_norm": lambda: [Case("rms_norm", S(4), 2, 8)],
        "swiglu": lambda: [Case("swiglu", S(4, 6), 2, 8)],
        "rnn": lambda: [Case("rnn", S(3, 4, 3), 2, 9)],
        "lstm": lambda: [Case("lstm", S(3, 4, 3), 2, 9)],
    }
    return table[kind]()


CASES = [c for kind in ("dense", "conv2d", "multi_head_attention", "layer_norm", "rms_norm",
                        "swiglu", "rnn", "lstm") for c in _cases_for(kind)]
