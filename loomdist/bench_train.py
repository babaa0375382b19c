"""Training throughput on the digits model (samples/s), optionally next to PyTorch."""

from __future__ import annotations

import statistics
import time

import numpy as np

from .threads import set_threads

# The network of examples/digits.toml (a test keeps the two identical).
DIGITS_NETWORK = {
    "batch_size": 1, "grid_rows": 2, "grid_cols": 1, "layers_per_cell": 2, "seed": 0,
    "layers": [
        {"type": "conv2d", "activation": "leaky_relu", "input_height": 8, "input_width": 8,
         "input_channels": 1, "filters": 16, "kernel_size": 3, "stride": 1, "padding": 1},
        {"type": "dense", "activation": "leaky_relu", "input_height": 1024,
         "output_height": 64},
        {"type": "dense", "activation": "leaky_relu", "input_height": 64, "output_height": 10},
        {"type": "softmax", "softmax_variant": "standard", "temperature": 1.0},
    ],
}


def _epochs_per_second(run_epoch, epochs: int) -> list[float]:
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        run_epoch()
        times.append(time.perf_counter() - t)
    return times


def bench_loomdist(x, y, batch: int, epochs: int) -> list[float]:
    from .optim import Optimizer
    from .run import build_network
    from .train import epoch_order, train_step
    from .train_config import TrainingConfig
    cfg = TrainingConfig(epochs=epochs, learning_rate=2e-3, optimizer="adam",
                         loss_type="cross_entropy", batch_size=batch)
    net, opt = build_network(DIGITS_NETWORK), Optimizer(cfg.optim_config())
    state = {"epoch": 0}

    def epoch():
        order = epoch_order(len(x), state["epoch"], cfg)
        for b in range(0, len(x), batch):
            idx = order[b:b + batch]
            train_step(net, opt, cfg, x[idx], y[idx], 2e-3)
        state["epoch"] += 1
    return _epochs_per_second(epoch, epochs)


def bench_torch(x, y, batch: int, epochs: int, threads: int) -> list[float]:
    import torch
    torch.set_num_threads(threads)
    nn = torch.nn
    model = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 16, 3, 1, 1),
                          nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(1024, 64),
                          nn.LeakyReLU(0.1), nn.Linear(64, 10), nn.LeakyReLU(0.1))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    tx, ty = torch.tensor(x), torch.tensor(y)
    state = {"epoch": 0}

    def epoch():
        order = np.random.default_rng([0, state["epoch"]]).permutation(len(x))
        for b in range(0, len(x), batch):
            idx = torch.as_tensor(order[b:b + batch])
            logp = torch.log_softmax(model(tx[idx]), dim=1)
            loss = -(ty[idx] * logp).sum() / ty[idx].numel()  # LOOM's normalisation
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        state["epoch"] += 1
    return _epochs_per_second(epoch, epochs)


def run(epochs: int = 4, batch: int = 32, vs_torch: bool = False,
        threads: int | None = None) -> dict:
    """Samples/s per epoch (the first epoch, with JIT, is reported apart)."""
    from .data import builtin
    n = set_threads(threads)
    data = builtin("digits")
    x, y = data.x, data.targets(10)
    ours = bench_loomdist(x, y, batch, epochs)
    report = {"benchmark": "train_digits", "threads": n, "batch": batch, "epochs": epochs,
              "samples": len(x), "loomdist_first_epoch_s": ours[0],
              "loomdist_samples_per_s": len(x) / statistics.median(ours[1:] or ours)}
    if vs_torch:
        theirs = bench_torch(x, y, batch, epochs, n)
        report["torch_samples_per_s"] = len(x) / statistics.median(theirs[1:] or theirs)
        report["ratio_time"] = report["torch_samples_per_s"] / report["loomdist_samples_per_s"]
    return report
