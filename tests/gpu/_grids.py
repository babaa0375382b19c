"""Small mixed grids of the GPU kinds for the network-level GPU tests."""

from __future__ import annotations

import numpy as np

from loomdist.layers import LAYERS
from loomdist.network import Network

D, LN, RMS = LAYERS["dense"].Spec, LAYERS["layer_norm"].Spec, LAYERS["rms_norm"].Spec
SW, P = LAYERS["swiglu"].Spec, LAYERS["parallel"].Spec


def mixed_specs() -> list:
    """2x2x2 = 8 layers: every GPU kind, LOOM's residuals (rms_norm -> swiglu -> layer_norm),
    and a nested parallel with a grid_scatter inside a concat."""
    scatter = P((D(8, 3, "tanh"), D(8, 5, "softplus")), "grid_scatter", 1, 2, 1,
                ((0, 0, 1, 0), (1, 0, 0, 0)))
    return [D(6, 8, "tanh"), RMS(4), SW(8, 5), LN(8),
            P((D(8, 8, "sigmoid"), D(8, 8, "leaky_relu")), "avg"),
            P((scatter, D(8, 8, "relu")), "concat"), SW(4, 3), D(16, 3, "linear")]


def mixed_network(backend: str = "cpu", batch: int = 4) -> Network:
    net = Network(0, 2, 2, 2, batch_size=batch, backend=backend)
    for i, spec in enumerate(mixed_specs()):
        net.set_layer(*net.coords(i), spec, rng=i)
    return net


def batch(seed: int = 0, n: int = 4):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 6)).astype(np.float32),
            rng.standard_normal((n, 3)).astype(np.float32))
