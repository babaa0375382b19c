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
        "softmax": lambda: [
            Case("softmax_standard", S("standard"), 3, 6),
            Case("softmax_grid", S("grid", rows=3, cols=4), 2, 12),
            Case("softmax_hierarchical", S("hierarchical", levels=(2, 3, 2)), 2, 12),
            Case("softmax_temperature", S("temperature", 0.5), 2, 5),
            Case("softmax_gumbel", S("gumbel", 2.0, gumbel_noise=True, noise_seed=3), 2, 5),
            Case("softmax_masked", S("masked", mask=(True, False, True, True, False)), 2, 5),
            Case("softmax_sparse", S("sparse"), 3, 6),
            Case("softmax_entmax", S("entmax", entmax_alpha=1.5), 3, 6),
            Case("softmax_adaptive", S("adaptive", 0.7, adaptive_clusters=((0, 2), (3, 4, 5)),
                                       extended=True), 2, 7),
            Case("softmax_adaptive_plain", S("adaptive"), 2, 4),
            Case("softmax_mixture", S("mixture", mixture_weights=(0.2, 0.5, 0.3),
                                      extended=True), 2, 12),
        ],
        "parallel": _parallel_cases,
    }
    return table[kind]()


def _parallel_cases() -> list:
    P, L = LAYERS["parallel"].Spec, LAYERS
    d = L["dense"].Spec
    three = (d(6, 4, "tanh"), d(6, 4, "sigmoid"), L["softmax"].Spec("grid", rows=2, cols=3))
    cases = [Case(f"parallel_{m}", P(three[:2] + (d(6, 4, "leaky_relu"),), m), 2, 6)
             for m in ("add", "avg")]
    cases += [
        Case("parallel_concat", P((d(6, 4, "tanh"), d(6, 3, "softplus")), "concat"), 2, 6),
        Case("parallel_scatter_2d", P(three, "grid_scatter", 2, 2, 1,
                                      ((0, 1, 1, 0), (1, 0, 0, 0), (2, 1, 0, 0))), 2, 6),
        Case("parallel_scatter_3d", P(three[:2], "grid_scatter", 1, 2, 2,
                                      ((0, 0, 1, 1), (1, 0, 0, 0))), 2, 6),
        Case("parallel_nested", P((P((d(6, 3, "tanh"), d(6, 3, "relu")), "add"),
                                   P((d(6, 2, "sigmoid"), L["softmax"].Spec()), "concat")),
                                  "concat"), 2, 6),
    ]
    if all(k in L for k in ("lstm", "multi_head_attention", "rnn")):
        hetero = (L["lstm"].Spec(4, 4, 2), L["multi_head_attention"].Spec(4, 2, 2),
                  L["rnn"].Spec(4, 4, 2), d(8, 8, "tanh"), L["layer_norm"].Spec(8),
                  L["swiglu"].Spec(4, 3))
        cases.append(Case("parallel_heterogeneous", P(hetero, "add"), 2, 8))
    return cases


CASES = [c for kind in ("dense", "conv2d", "multi_head_attention", "layer_norm", "rms_norm",
                        "swiglu", "rnn", "lstm", "softmax", "parallel") for c in _cases_for(kind)]
