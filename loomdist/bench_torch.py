"""The same benchmark modules in PyTorch (float32, CPU), for `bench layers --vs torch`."""

from __future__ import annotations


def has_twin(cfg) -> bool:
    """Whether a torch twin exists (sparsemax/entmax/masked have no torch builtin)."""
    return cfg.name in TWINS


def _dense(torch, cfg):
    nn, s = torch.nn, cfg.spec
    layers = []
    for _ in range(cfg.layers):
        layers += [nn.Linear(s.input_height, s.output_height), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers), (cfg.batch, cfg.in_features)


def _conv(torch, cfg):
    nn, s = torch.nn, cfg.spec
    conv = nn.Conv2d(s.input_channels, s.filters, s.kernel_size, s.stride, s.padding)
    shape = (cfg.batch, s.input_channels, s.input_height, s.input_width)
    return nn.Sequential(conv, nn.LeakyReLU(0.1)), shape


def _mha(torch, cfg):
    s = cfg.spec
    seq = cfg.in_features // s.d_model
    return _Attention(torch, s.d_model, s.num_heads, seq), (cfg.batch, seq, s.d_model)


def _recurrent(torch, cfg):
    s = cfg.spec
    cls = torch.nn.RNN if cfg.kind == "rnn" else torch.nn.LSTM
    seq = cfg.in_features // s.input_size
    return _FirstOutput(cls(s.input_size, s.hidden_size, batch_first=True)), \
        (cfg.batch, seq, s.input_size)


def _softmax(torch, cfg):
    s = cfg.spec
    cols = s.cols if s.variant == "grid" else cfg.in_features
    inv_t = 1.0 / (s.temperature or 1.0)
    return _Fn(lambda x: torch.softmax(x.view(-1, cols) * inv_t, -1).view(x.shape)), \
        (cfg.batch, cfg.in_features)


def _parallel(torch, cfg):
    nn = torch.nn
    acts = {"tanh": nn.Tanh(), "relu": nn.ReLU(), "sigmoid": nn.Sigmoid(),
            "leaky_relu": nn.LeakyReLU(0.1)}
    branches = nn.ModuleList(nn.Sequential(nn.Linear(b.input_height, b.output_height),
                                           acts[b.activation]) for b in cfg.spec.branches)
    fn = _Fn(lambda x: torch.cat([b(x).reshape(-1) for b in branches]).view(x.shape[0], -1))
    fn.parameters = branches.parameters
    return fn, (cfg.batch, cfg.in_features)


TWINS = {"dense": _dense, "conv2d": _conv, "multi_head_attention": _mha, "rnn": _recurrent,
         "lstm": _recurrent, "softmax_standard": _softmax, "softmax_grid": _softmax,
         "softmax_temperature": _softmax, "parallel_4branch": _parallel}


def _modules(torch, cfg):
    return TWINS[cfg.name](torch, cfg)


class _Fn:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)

    def parameters(self):
        return []


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

    from .bench import median_ms
    return median_ms(fwd, repeats, warmup), median_ms(both, repeats, warmup)
