"""The training modes LOOM's benchmarks compare (spec 4.13), selectable by name.

Common interface (one object per run, owning its network):

    y = mode.output(x)     # the forward the decision uses: ForwardCPU, or one step tick
    mode.learn(x, c)       # the label of the sample just output (online modes train now)
    mode.flush()           # burst modes (BURST = True) train on what they collected
    y = mode.eval_output(x)  # Test 16 evaluation: ForwardCPU, or L + 2 ticks on x

`make_mode(name, net, out_size, family)` builds a mode with LOOM's parameters for the Test 16
family ("t16") or the Tests 17-19 family ("adapt"). As in LOOM's code, StepTween == TChain and
Tween == TweenChain (UseChainRule defaults to true, spec 7 #12).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .bp import bp_train, keep_loom_apply_grads
from .config import default_tween_config
from .fasttick import DenseTick
from .mathx import F32
from .state import TweenState


def one_hot(c: int, n: int) -> np.ndarray:
    t = np.zeros(n, F32)
    t[c] = 1
    return t


def new_step_state(net):
    """LOOM's InitStepState (self-residual memory as LOOM's StepForward)."""
    from .step import StepState
    return StepState(net)


class Mode:
    """Base: ForwardCPU output, no learning."""

    BURST = False
    STEPPING = False

    def __init__(self, net, out_size: int):
        self.net, self.out_size = net, out_size
        self.buffer: list = []

    def output(self, x) -> np.ndarray:
        return self.net.forward(np.asarray(x, F32))

    def eval_output(self, x) -> np.ndarray:
        return self.output(x)

    def learn(self, x, c: int) -> None:
        return None

    def flush(self) -> None:
        return None


class Stepping(Mode):
    """Decisions from the step pipeline (output lags L - 1 ticks behind the input)."""

    STEPPING = True

    def __init__(self, net, out_size: int):
        super().__init__(net, out_size)
        self.state = new_step_state(net)

    def output(self, x) -> np.ndarray:
        self.state.set_input(np.asarray(x, F32))
        self.state.step_forward()
        return self.state.output()

    def eval_output(self, x) -> np.ndarray:
        for _ in range(self.net.total_layers + 2):
            y = self.output(x)
        return y


class NormalBP(Mode):
    """Burst backprop: LOOM's Train(collected samples, Epochs, LR, clip, mse)."""

    BURST = True

    def __init__(self, net, out_size, lr=0.02, epochs=1, clip=0.0):
        super().__init__(net, out_size)
        self.lr, self.epochs, self.clip = lr, epochs, clip
        self.last_loss = float("nan")

    def learn(self, x, c):
        self.buffer.append((np.asarray(x, F32), int(c)))

    def train_on(self, samples) -> None:
        xs = [s[0] for s in samples]
        ts = [one_hot(s[1], self.out_size) for s in samples]
        self.last_loss = bp_train(self.net, xs, ts, self.epochs, self.lr, self.clip)

    def flush(self):
        if self.buffer:
            self.train_on(self.buffer)
            self.buffer = []


class _TweenMixin:
    def _tween_init(self, rate, chain=True):
        cfg = default_tween_config(self.net.total_layers)
        self.ts = TweenState(self.net, cfg if chain else None)
        self.rate = rate
        self.last_loss = float("nan")


class Tween(_TweenMixin, Mode):
    """Burst tweening (Tests 17-19): TweenStep on each collected sample, in order."""

    BURST = True

    def __init__(self, net, out_size, rate=0.02):
        super().__init__(net, out_size)
        self._tween_init(rate)

    def learn(self, x, c):
        self.buffer.append((np.asarray(x, F32), int(c)))

    def flush(self):
        for x, c in self.buffer:
            self.last_loss = self.ts.tween_step(self.net, x, c, self.out_size, self.rate)
        self.buffer = []


class TweenChain(Tween):
    """Tween with UseChainRule set explicitly (identical code: it is LOOM's default)."""


class NormTween(_TweenMixin, Mode):
    """Test 16: TweenStep on every presented sample (ForwardCPU decisions)."""

    def __init__(self, net, out_size, rate=0.15):
        super().__init__(net, out_size)
        self._tween_init(rate)

    def learn(self, x, c):
        self.last_loss = self.ts.tween_step(self.net, x, int(c), self.out_size, self.rate)


class BatchTween(_TweenMixin, Mode):
    """TweenStepAccumulate per sample; TweenBatchApply once `batch` samples are in."""

    def __init__(self, net, out_size, rate=0.15, batch=32):
        super().__init__(net, out_size)
        self._tween_init(rate)
        self.batch = batch

    def learn(self, x, c):
        self.last_loss = self.ts.tween_step_accumulate(self.net, x, int(c), self.out_size)
        if self.ts.batch_count >= self.batch:
            self.ts.tween_batch_apply(self.net, self.rate)


class StepBatch(Stepping, BatchTween):
    """Test 16: a step tick every sample plus BatchTween's accumulate/apply."""

    def __init__(self, net, out_size, rate=0.15, batch=32):
        BatchTween.__init__(self, net, out_size, rate, batch)
        self.state = new_step_state(net)


class StepTweenChain(_TweenMixin, Stepping):
    """Step-pipeline decisions; TweenStep(current sample) every `tween_every` outputs."""

    def __init__(self, net, out_size, rate=0.02, tween_every=1):
        super().__init__(net, out_size)
        self._tween_init(rate)
        self.tween_every, self.count = tween_every, 0
        self.state.fast_tick = DenseTick.for_state(self.state)  # None: the generic tick

    def learn(self, x, c):
        self.count += 1
        if self.count % self.tween_every == 0:
            self.last_loss = self.ts.tween_step(self.net, x, int(c), self.out_size,
                                                self.rate)


class StepTween(StepTweenChain):
    """LOOM's "legacy" StepTween: the same code as TChain (chain rule is the default)."""


class StepBP(Stepping):
    """Step+BP: StepBackward(out - target) with gradient attention, ApplyGradients(lr).

    delay=True (Test 16): targets go through a TargetDelay of length L and the LR decays
    lr = max(lr_min, lr * lr_decay) every step; Tests 17-19 use the current target."""

    def __init__(self, net, out_size, lr=0.02, delay=False, lr_decay=1.0, lr_min=0.0):
        super().__init__(net, out_size)
        from .step import TargetDelay
        self.lr, self.lr_decay, self.lr_min = lr, lr_decay, lr_min
        self.delay = TargetDelay(net.total_layers) if delay else None
        self._y = None

    def output(self, x):
        self._y = super().output(x)
        return self._y

    def learn(self, x, c):
        t = one_hot(int(c), self.out_size)
        if self.delay is not None:
            t = self.delay.push(t)
        if t is not None and self._y is not None:
            grad = np.zeros_like(self._y)
            m = min(grad.size, t.size)
            grad[:m] = self._y[:m] - t[:m]
            self.state.step_backward(grad, grad_scaling=True)
            keep_loom_apply_grads(self.net)
            self.state.apply_gradients(self.lr)
        self.lr = max(self.lr_min, self.lr * self.lr_decay)


MODES = {"NormalBP": NormalBP, "NormTween": NormTween, "StepBP": StepBP,
         "StepTween": StepTween, "StepTweenChain": StepTweenChain, "BatchTween": BatchTween,
         "StepBatch": StepBatch, "Tween": Tween, "TweenChain": TweenChain}
ALIASES = {"Step+BP": "StepBP", "STC": "StepTweenChain", "TChain": "StepTweenChain",
           "NormalTween": "NormTween"}
# LOOM's per-test parameters (spec 4.13).
PRESETS = {
    "t16": {"NormalBP": dict(lr=0.02, epochs=5, clip=1.0), "NormTween": dict(rate=0.15),
            "StepBP": dict(lr=0.02, delay=True, lr_decay=0.9999, lr_min=0.001),
            "StepTween": dict(rate=0.15, tween_every=5),
            "StepTweenChain": dict(rate=0.15, tween_every=5),
            "BatchTween": dict(rate=0.15, batch=32), "StepBatch": dict(rate=0.15, batch=32)},
    "adapt": {"NormalBP": dict(lr=0.02, epochs=1, clip=0.0), "StepBP": dict(lr=0.02),
              "Tween": dict(rate=0.02), "TweenChain": dict(rate=0.02),
              "StepTweenChain": dict(rate=0.02, tween_every=1)},
}
TEST16_MODES = ("NormalBP", "NormTween", "StepBP", "StepTween", "StepTweenChain",
                "BatchTween", "StepBatch")
ADAPT_MODES = ("NormalBP", "StepBP", "Tween", "TweenChain", "StepTweenChain")


def mode_name(name: str) -> str:
    """Canonical mode name for a name or alias; ConfigError when unknown."""
    key = ALIASES.get(name, name)
    if key not in MODES:
        raise ConfigError(f"tween mode: unknown mode {name!r}; use one of "
                          f"{sorted(MODES) + sorted(ALIASES)}")
    return key


def make_mode(name: str, net, out_size: int, family: str = "adapt", **overrides) -> Mode:
    """Mode `name` on `net` with LOOM's parameters of `family` ("t16" or "adapt")."""
    key = mode_name(name)
    if family not in PRESETS:
        raise ConfigError(f"make_mode: unknown family {family!r}; use 't16' or 'adapt'")
    kwargs = {**PRESETS[family].get(key, {}), **overrides}
    return MODES[key](net, out_size, **kwargs)
