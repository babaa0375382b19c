"""LOOM's backprop paths as the benchmarks use them: Train (NormalBP) and ApplyGradients'
parameter set (Step+BP), spec 1.1, 1.2, 5.6."""

from __future__ import annotations

import numpy as np

from .kinds import kind_of, rule_for

F32 = np.float32


def bp_train(net, xs, targets, epochs: int, lr: float, clip: float = 0.0) -> float:
    """LOOM's Train(single-sample batches, Epochs, LR, GradientClip, "mse") on `net`.

    Per sample: ForwardCPU, MSE gradient 2(o - t)/N, BackwardCPU, optional global-norm clip,
    UpdateWeights(lr), which only touches the parameters LOOM's UpdateWeights updates (Dense
    and MHA; rule BP_PARAMS). Returns the last epoch's mean loss.
    """
    avg = float("nan")
    for _ in range(epochs):
        total = 0.0
        for x, t in zip(xs, targets):
            o = net.forward(x)
            n = o.size
            m = min(n, t.size)
            d = np.zeros_like(o)
            d[:m] = o[:m] - t[:m]
            total += float((d.astype(np.float64) ** 2).sum() / n)
            net.zero_grad()
            net.backward(F32(2) * d / F32(n))
            if clip > 0:
                clip_all(net, clip)
            update_loom(net, lr)
        avg = total / max(1, len(xs))
    net.zero_grad()
    return avg


def clip_all(net, max_norm: float) -> None:
    """clipGradients: global L2 norm over every layer's gradients."""
    grads = [g for s in net.layers for g in s.grads.values()]
    norm = float(np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads)))
    if norm > max_norm:
        for g in grads:
            g *= F32(max_norm / norm)


def update_loom(net, lr: float) -> None:
    """UpdateWeights(lr): p -= lr g on each kind's BP_PARAMS only."""
    for slot in net.layers:
        for name in rule_for(kind_of(slot)).BP_PARAMS:
            g = slot.grads.get(name)
            if g is not None:
                slot.params[name] -= F32(lr) * g


def keep_loom_apply_grads(net) -> None:
    """Drop gradients LOOM's ApplyGradients would not apply (only Dense/Conv2D Kernel/Bias)."""
    for slot in net.layers:
        keep = rule_for(kind_of(slot)).APPLY_PARAMS
        slot.grads = {k: v for k, v in slot.grads.items() if k in keep}
