"""Native MoE, proven: a grid softmax over expert rows is a soft mixture of experts.

The LOOM grid  Dense(d -> E*K) -> Softmax grid(E x K) -> Dense(E*K -> K)  computes exactly

    p_e(x) = softmax(x W_e + b_e)            each expert's distribution over K outputs
    y(x)   = sum_e p_e(x) C_e + c            the combiner mixes the expert outputs

written here by hand in numpy. The script checks outputs and gradients of both against each
other and against float64 finite differences, then trains the grid on a routing task.
Run: python examples/moe_proof.py
"""

from __future__ import annotations

import numpy as np

import loomdist
from loomdist.gradcheck import numeric_grad
from loomdist.layers import dense, softmax


def build_grid_moe(d: int, experts: int, k: int, seed: int = 0) -> loomdist.Network:
    """The LOOM-style network: 1x1 grid, 3 layers per cell."""
    net = loomdist.Network(0, 1, 1, 3, batch_size=1)
    rng = np.random.default_rng(seed)
    net.set_layer(0, 0, 0, dense.Spec(d, experts * k, "linear"), rng=rng)
    net.set_layer(0, 0, 1, softmax.init_grid_softmax_layer(experts, k))
    net.set_layer(0, 0, 2, dense.Spec(experts * k, k, "linear"), rng=rng)
    for key, arr in net.parameters():  # small non-zero biases break symmetry (LOOM's demo)
        if key[3] == "biases":
            arr[...] = 0.01
    return net


def expert_weights(net: loomdist.Network, experts: int, k: int):
    """Per-expert matrices W_e (d, K), b_e (K,) and combiner blocks C_e (K, K), c."""
    W, b = net.param((0, 0, 0, "kernel")), net.param((0, 0, 0, "biases"))
    C, c = net.param((0, 0, 2, "kernel")), net.param((0, 0, 2, "biases"))
    return ([W[:, e * k:(e + 1) * k] for e in range(experts)],
            [b[e * k:(e + 1) * k] for e in range(experts)],
            [C[e * k:(e + 1) * k] for e in range(experts)], c)


def manual_moe(net, x: np.ndarray, dy: np.ndarray, experts: int, k: int):
    """Hand-written soft MoE: returns (y, dL/dx, {W_e, b_e, C_e, c grads}) for loss <y, dy>."""
    Ws, bs, Cs, c = expert_weights(net, experts, k)
    ps = []
    for W, b in zip(Ws, bs):
        z = x @ W + b
        e = np.exp(z - z.max(axis=1, keepdims=True))
        ps.append(e / e.sum(axis=1, keepdims=True))
    y = sum(p @ C for p, C in zip(ps, Cs)) + c
    dx, grads = np.zeros_like(x), {"c": dy.sum(axis=0)}
    for e, (p, W, C) in enumerate(zip(ps, Ws, Cs)):
        grads[f"C{e}"] = p.T @ dy
        dp = dy @ C.T
        dz = p * (dp - np.sum(dp * p, axis=1, keepdims=True))
        grads[f"W{e}"], grads[f"b{e}"] = x.T @ dz, dz.sum(axis=0)
        dx += dz @ W.T
    return y, dx, grads


def grid_grads_as_experts(net, experts: int, k: int) -> dict:
    """The grid network's gradients, sliced into the same per-expert blocks."""
    gW, gb = net.grad((0, 0, 0, "kernel")), net.grad((0, 0, 0, "biases"))
    gC, gc = net.grad((0, 0, 2, "kernel")), net.grad((0, 0, 2, "biases"))
    out = {"c": gc}
    for e in range(experts):
        s = slice(e * k, (e + 1) * k)
        out.update({f"W{e}": gW[:, s], f"b{e}": gb[s], f"C{e}": gC[s]})
    return out


def compare(d: int = 6, experts: int = 4, k: int = 3, batch: int = 5, seed: int = 1) -> dict:
    """Max abs differences: grid vs manual (output, every gradient), and each vs float64 FD."""
    net = build_grid_moe(d, experts, k, seed).astype(np.float64)
    rng = np.random.default_rng(seed + 1)
    x, dy = rng.standard_normal((batch, d)), rng.standard_normal((batch, k))
    y_grid = net.forward(x)
    dx_grid = net.backward(dy)
    y_man, dx_man, g_man = manual_moe(net, x, dy, experts, k)
    g_grid = grid_grads_as_experts(net, experts, k)

    def loss():
        return float(np.sum(net.forward(x) * dy))

    fd = {"x": numeric_grad(loss, x)}
    for key, arr in list(net.parameters()):
        fd[key] = numeric_grad(loss, arr)
    fd_grid = max(np.abs(fd["x"] - dx_grid).max(),
                  *(np.abs(fd[key] - net.grad(key)).max() for key, _ in net.parameters()))
    fd_man = max(np.abs(fd["x"] - dx_man).max(),
                 *(np.abs(g_man[n] - grid_fd).max()
                   for n, grid_fd in grid_grads_from(fd, experts, k).items()))
    return {"output": float(np.abs(y_grid - y_man).max()),
            "gradient": float(max(np.abs(dx_grid - dx_man).max(),
                                  *(np.abs(g_grid[n] - g_man[n]).max() for n in g_man))),
            "fd_grid": float(fd_grid), "fd_manual": float(fd_man)}


def grid_grads_from(fd: dict, experts: int, k: int) -> dict:
    """Finite-difference gradients of the grid's parameters, sliced per expert."""
    out = {"c": fd[(0, 0, 2, "biases")]}
    for e in range(experts):
        s = slice(e * k, (e + 1) * k)
        out.update({f"W{e}": fd[(0, 0, 0, "kernel")][:, s], f"b{e}": fd[(0, 0, 0, "biases")][s],
                    f"C{e}": fd[(0, 0, 2, "kernel")][s]})
    return out


PATTERNS = np.array([[1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1]], np.float32)


def routing_data(n_per_class: int = 20, noise: float = 0.2, seed: int = 0):
    """Noisy copies of the 3 patterns; the class is the pattern index."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(PATTERNS)), n_per_class)
    x = PATTERNS[labels] + rng.normal(0, noise, (labels.size, PATTERNS.shape[1]))
    return x.astype(np.float32), labels


def train_routing(epochs: int = 300, lr: float = 0.1, experts: int = 4, seed: int = 0):
    """Full-batch SGD on MSE to one-hot targets. Returns (first loss, final loss, accuracy on
    the clean patterns, accuracy on fresh noisy samples, confidence in each pattern's class)."""
    k = PATTERNS.shape[0]
    x, labels = routing_data(seed=seed)
    targets = np.eye(k, dtype=np.float32)[labels]
    net = build_grid_moe(PATTERNS.shape[1], experts, k, seed)
    losses = []
    for _ in range(epochs):
        y = net.forward(x)
        losses.append(float(np.mean(np.sum((y - targets) ** 2, axis=1))))
        net.zero_grad()
        net.backward(2 * (y - targets) / len(x))
        for key, arr in net.parameters():
            arr -= lr * net.grad(key)
    clean = net.forward(PATTERNS)
    x_test, l_test = routing_data(seed=seed + 100)
    held_out = float(np.mean(net.forward(x_test).argmax(axis=1) == l_test))
    accuracy = float(np.mean(clean.argmax(axis=1) == np.arange(k)))
    return losses[0], losses[-1], accuracy, held_out, clean[np.arange(k), np.arange(k)]


def main() -> None:
    diffs = compare()
    first, last, acc, held_out, conf = train_routing()
    print("Native MoE: grid softmax (4 experts x 3 outputs) vs hand-written soft MoE")
    print(f"  Output match:   {diffs['output']:.2e}")
    print(f"  Gradient match: {diffs['gradient']:.2e}")
    print(f"  Finite difference check: < {max(diffs['fd_grid'], diffs['fd_manual']):.2e}")
    print(f"  Training: {(1 - last / first) * 100:.1f}% loss reduction "
          f"({first:.4f} -> {last:.4f})")
    print(f"  Accuracy: {acc * 100:.0f}% ({int(round(acc * 3))}/3 patterns), "
          f"{held_out * 100:.1f}% on fresh noisy samples")
    print("  Confidence: " + ", ".join(f"{c * 100:.1f}%" for c in conf))


if __name__ == "__main__":
    main()
