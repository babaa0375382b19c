"""The same benchmark modules in PyTorch (float32, CPU), for `bench layers --vs torch`."""

from __future__ import annotations

import statistics
import time


def _modules(torch, cfg):
    nn = torch.nn
    if cfg.kind == "dense":
        layers = []
        for _ in range(cfg.layers):
            layers += [nn.Linear(cfg.args[0], cfg.args[1]), nn.LeakyReLU(0.1)]
        return nn.Sequential(*layers), (cfg.batch, cfg.in_features)
    if cfg.kind == "conv2d":
        h, w, c, f, k, s, p = cfg.args[:7]
        return (nn.Sequential(nn.Conv2d(c, f, k, s, p), nn.LeakyReLU(0.1)), (cfg.batch, c, h, w))
    if cfg.kind == "multi_head_attention":
        d, heads, seq = cfg.args
        return _Attention(torch, d, heads, seq), (cfg.batch, seq, d)
    if cfg.kind in ("rnn", "lstm"):
        i, h, seq = cfg.args
        cls = nn.RNN if cfg.kind == "rnn" else nn.LSTM
        return _FirstOutput(cls(i, h, batch_first=True)), (cfg.batch, seq, i)
    raise ValueError(f"bench_torch: no torch module for {cfg.kind}")


class _FirstOutput:
    def __init__(self, m):
        self.m = m

    def __call__(self, x):
        return self.m(x)[0]

    def parameters(self):
        return self.m.parameters()


class _Attention:
    """Q/K/V/O projections, RoPE (theta 1e6), causal SDPA: loomdist's MHA math."""

    def __init__(self, torch, d, heads, seq):
        nn = torch.nn
        self.torch, self.h, self.hd = torch, heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        inv = 1e6 ** (-torch.arange(0, self.hd // 2, dtype=torch.float32) * 2 / self.hd)
        ang = torch.arange(seq, dtype=torch.float32)[:, None] * inv[None, :]
        ang = torch.cat([ang, ang], dim=-1)
        self.cos, self.sin = ang.cos(), ang.sin()

    def parameters(self):
        return [p for m in (self.q, self.k, self.v, self.o) for p in m.parameters()]

    def _rope(self, t):
        t1, t2 = t[..., : self.hd // 2], t[..., self.hd // 2:]
        return t * self.cos + self.torch.cat([-t2, t1], dim=-1) * self.sin

    def __call__(self, x):
        b, s, d = x.shape
        split = lambda t: t.view(b, s, self.h, self.hd).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        a = self.torch.nn.functional.scaled_dot_product_attention(
            self._rope(q), self._rope(k), v, is_causal=True)
        return self.o(a.transpose(1, 2).reshape(b, s, d))


def bench_torch(cfg, repeats: int, warmup: int, threads: int) -> tuple[float, float]:
    """(forward ms, forward+backward ms) medians for the torch twin of `cfg`."""
    import torch
    torch.set_num_threads(threads)
    module, shape = _modules(torch, cfg)
    x = torch.randn(*shape, requires_grad=True)  # loomdist computes dL/dx too
    y = module(x)
    dy = torch.ones_like(y)

    def fwd():
        with torch.no_grad():
            module(x)

    params = list(module.parameters())

    def both():
        out = module(x)
        out.backward(dy)
        for p in [x, *params]:
            p.grad = None

    return _median(fwd, repeats, warmup), _median(both, repeats, warmup)


def _median(fn, repeats, warmup) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)
