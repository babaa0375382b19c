"""A fast step tick for StepStates whose layers are all Dense (StepState.fast_tick hook).

The generic tick walks each layer through engine.walk_forward and keeps the walks for
step_backward; for a run of Dense layers in LOOM's residual mode the walk reduces to the
Dense module's `x @ W`, bias + activation, and the residual memory is left as it is. This
tick does exactly that per layer (the same numpy/Numba calls, so the buffers are bit for bit
the generic tick's) and keeps no walks: it is for modes that never call step_backward
(StepTweenChain). `for_state` returns None when some layer cannot take it.
"""

from __future__ import annotations

import numpy as np

from ..activations import ACTIVATIONS
from ..kernels.cpu.elementwise import _bias_act
from .kinds import kind_of, rule_for


def _fusable(slot, dtype) -> bool:
    if not getattr(rule_for(kind_of(slot)), "FUSED_DENSE", False):
        return False
    W, b = slot.params.get("kernel"), slot.params.get("biases")
    return (W is not None and b is not None and W.ndim == 2 and b.shape == (W.shape[1],)
            and W.dtype == dtype and b.dtype == dtype)


class DenseTick:
    """Callable tick over `slots`: tick(data) replaces data[1:] and returns True, or returns
    False (nothing done) when the network's layers or parameter arrays were replaced."""

    def __init__(self, slots):
        self.objs = [(s, s.params, s.params["kernel"], s.params["biases"]) for s in slots]
        self.fw = [(W, b, ACTIVATIONS[s.spec.activation]) for s, _, W, b in self.objs]

    def fits(self) -> bool:
        """Whether every layer still has the parameter arrays the tick was built on."""
        for s, p, W, b in self.objs:
            if s.params is not p or p.get("kernel") is not W or p.get("biases") is not b:
                return False
        return True

    @classmethod
    def for_state(cls, state):
        """The tick of StepState `state`, or None (not LOOM residuals, or a non-Dense layer)."""
        slots = state.layers
        if not state.loom_residuals or not all(_fusable(s, state.net.dtype) for s in slots):
            return None
        return cls(slots)

    def __call__(self, data: list) -> bool:
        if not self.fits():
            return False
        new = []
        for x, (W, b, a) in zip(data, self.fw):
            z = x @ W
            y = np.empty_like(z)
            _bias_act(z, b, a, y)
            new.append(y)
        data[1:] = new
        return True
