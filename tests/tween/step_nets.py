"""Small networks around each tests/cases.py case, and the tick function step_backward
differentiates (shared by the step-mode tests)."""

from __future__ import annotations

import numpy as np

import loomdist
from loomdist.engine import walk_forward
from loomdist.layers import LAYERS


def net_around(case, seed: int = 0):
    """1x3 grid, one layer per cell: dense(2 -> case input), the case, dense(-> 3)."""
    d = LAYERS["dense"].Spec
    out = case.spec.out_features(case.in_features)
    specs = [d(2, case.in_features, "tanh"), case.spec, d(out, 3, "tanh")]
    return grid_net(specs, (1, 3, 1), case.batch, seed)


def residual_net(seed: int = 0, batch: int = 2):
    """Every residual kind in a row, so the cross-layer residual crosses several layers."""
    L, d = LAYERS, LAYERS["dense"].Spec
    specs = [d(3, 8, "tanh"), L["multi_head_attention"].Spec(4, 2), L["layer_norm"].Spec(8),
             L["swiglu"].Spec(4, 3), L["rms_norm"].Spec(4), L["multi_head_attention"].Spec(4, 1),
             d(8, 2, "sigmoid")]
    return grid_net(specs + [d(2, 2, "linear")], (2, 2, 2), batch, seed)


def grid_net(specs, grid, batch: int, seed: int):
    net = loomdist.Network(0, *grid, batch_size=batch)
    rng = np.random.default_rng(seed)
    for i, s in enumerate(specs):
        net.set_layer(*net.coords(i), s, rng=rng)
        for _, p in net.layers[i].params.items():  # move off LOOM's 1/0 norm init
            p += rng.normal(0, 0.1, p.shape).astype(p.dtype)
    return net


def inputs(net, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(net.batch_size * net.layers[0].spec.input_height)
            for _ in range(n)]


class TickFunction:
    """<dy, output> of the last tick as a function of every parameter and buffer 0.

    Layer i reads the buffer it read in the tick, plus the change (against the tick as
    computed) of what layer i - 1 produces when parameters or buffer 0 are perturbed; with
    the engine's residual, the residual it read changes the same way. Its exact gradient
    is what StepState.step_backward returns.
    """

    def __init__(self, state, data, res, dy):
        self.net, self.loom = state.net, state.loom_residuals
        self.data, self.res, self.dy = data, res, dy
        self.base = None
        self.base = self._run()

    def _run(self):
        outs, prev = [], None
        for i, slot in enumerate(self.net.layers):
            h, r = self.data[i], self.res[i]
            if prev is not None and self.base is not None:
                h = h + (prev[0] - self.base[i - 1][0])
                if not self.loom and r is not None and prev[1] is not None:
                    r = r + (prev[1] - self.base[i - 1][1])
            w = walk_forward([slot], h, r)
            prev = (w.output, w.residual_out)
            outs.append(prev)
        return outs

    def __call__(self) -> float:
        return float(np.sum(self._run()[-1][0] * self.dy))


def per_sample(net, x):
    """net.forward one sample per row, flat out: step mode's semantics (not LOOM's flat
    buffer, where MHA and Softmax see every sample at once; docs/differences.md)."""
    return net.forward(np.reshape(x, (net.batch_size, -1))).reshape(-1)
