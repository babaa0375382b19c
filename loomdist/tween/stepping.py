"""LOOM's Network.TrainWithStepping (nn/training_utils.go): optimizer training in step mode.

Each step presents the data loader's sample, runs **one** tick (`StepState.step_forward`),
takes LOOM's MSE against the *current* target (no delay for the L - 1 ticks the output lags
behind the input, as in LOOM), backpropagates with `step_backward` (LOOM's gradient
attention on by default, `grad_scaling`), and every `grad_accum_steps` steps clips and
applies the optimizer, which is set on the network as LOOM's SetOptimizer does (the update is
`Network.apply_gradients`). Losses are averaged per `log_every` steps.

Differences from LOOM (docs/differences.md, step mode): gradients are summed over the
`grad_accum_steps` steps of one update (LOOM's StepBackward overwrites them, so only the last
step's gradient is applied), and the optimizer updates every parameter of every layer kind
(LOOM's optimizers touch only top-level Dense/Conv2D kernels and biases).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, DataError
from ..losses import loss_and_grad, target_like
from ..optim import OptimConfig, Schedule, clip_global_norm
from .step import StepState

OPTIMIZERS = ("sgd", "sgd_momentum", "adamw", "rmsprop")
SCHEDULES = ("constant", "linear", "cosine", "exponential", "step", "polynomial", "warmup")


@dataclass(frozen=True)
class SteppingConfig:
    """LOOM's SteppingTrainingConfig, snake_case; a 0 takes LOOM's default where it has one."""

    optimizer: str = ""            # "" -> "sgd"; sgd | sgd_momentum | adamw | rmsprop
    learning_rate: float = 0.0     # the schedule's base LR
    beta1: float = 0.0             # adamw: 0.9 when 0
    beta2: float = 0.0             # adamw: 0.999 when 0
    weight_decay: float = 0.0      # adamw: 0.01 when 0 (as LOOM, 0 cannot be asked for)
    momentum: float = 0.0          # sgd_momentum: 0.9 when 0; rmsprop: as given (0 = none)
    dampening: float = 0.0         # sgd_momentum
    nesterov: bool = False         # sgd_momentum
    alpha: float = 0.0             # rmsprop: 0.99 when 0
    epsilon: float = 0.0           # adamw, rmsprop: 1e-8 when 0
    lr_schedule: str = ""          # "" -> "constant"; see SCHEDULES
    warmup_steps: int = 0          # warmup
    total_steps: int = 0           # linear/cosine/polynomial horizon (not the run's length)
    min_lr: float = 0.0            # linear: 0.01 * LR when 0; warmup: its start LR
    decay_rate: float = 0.0        # exponential 0.96, step 0.1 when 0
    decay_steps: int = 0           # exponential: 1000 when 0
    step_size: int = 0             # step: 10000 when 0
    power: float = 0.0             # polynomial: 1.0 when 0
    grad_accum_steps: int = 0      # apply every N steps; 1 when 0
    grad_clip_value: float = 0.0   # global-norm clip before each update; 0 = off
    checkpoint_every: int = 0      # on_checkpoint(step + 1, net) every N steps; 0 = off
    log_every: int = 100           # average the loss over N steps; 100 when 0
    on_step: Callable | None = None        # (step + 1, lr, average loss) at each log point
    on_checkpoint: Callable | None = None  # (step + 1, net): saving is the caller's
    grad_scaling: bool = True      # LOOM's StepBackward gradient attention (always on there)
    loom_residuals: bool = True    # StepState's LOOM self-residual memory

    def __post_init__(self):
        name = self.optimizer or "sgd"
        if name not in OPTIMIZERS:
            raise ConfigError(f"train_with_stepping: unknown optimizer: {self.optimizer}; use "
                              f"one of {list(OPTIMIZERS)} (or '' for sgd)")
        if (self.lr_schedule or "constant") not in SCHEDULES:
            raise ConfigError(f"train_with_stepping: unknown scheduler: {self.lr_schedule}; "
                              f"use one of {list(SCHEDULES)} (or '' for constant)")
        if not self.learning_rate >= 0:
            raise ConfigError(f"train_with_stepping: learning_rate must be >= 0, got "
                              f"{self.learning_rate}")
        for f in ("grad_accum_steps", "checkpoint_every", "log_every", "total_steps",
                  "warmup_steps", "decay_steps", "step_size"):
            if int(getattr(self, f)) < 0:
                raise ConfigError(f"train_with_stepping: {f} must be >= 0 (0 takes LOOM's "
                                  f"default), got {getattr(self, f)}")

    def optim_config(self) -> OptimConfig:
        """loomdist's OptimConfig for LOOM's optimizer name, with LOOM's zero defaults."""
        eps = self.epsilon or 1e-8
        name = self.optimizer or "sgd"
        if name == "sgd_momentum":
            return OptimConfig("momentum", momentum=self.momentum or 0.9,
                               dampening=self.dampening, nesterov=self.nesterov)
        if name == "adamw":
            return OptimConfig("adamw", beta1=self.beta1 or 0.9, beta2=self.beta2 or 0.999,
                               epsilon=eps, weight_decay=self.weight_decay or 0.01)
        if name == "rmsprop":
            return OptimConfig("rmsprop", alpha=self.alpha or 0.99, epsilon=eps,
                               rms_momentum=self.momentum)
        return OptimConfig("sgd")

    def schedule(self) -> Schedule:
        return Schedule(self.lr_schedule or "constant", self.learning_rate, self.total_steps,
                        self.warmup_steps, self.min_lr, self.decay_rate, self.decay_steps,
                        self.step_size, self.power or 1.0)


@dataclass
class SteppingResult:
    """LOOM's SteppingTrainingResult, snake_case."""

    total_steps: int               # the argument, even when the loader stopped early
    final_loss: float              # the last logged average (0 when nothing was logged)
    loss_history: list = field(default_factory=list)  # one average per log point
    lr_history: list = field(default_factory=list)    # the LR at each log point
    total_time: float = 0.0        # seconds
    steps_per_second: float = 0.0  # total_steps / total_time


def train_with_stepping(net, config: SteppingConfig | None, data_loader,
                        total_steps: int) -> SteppingResult:
    """Run `total_steps` steps; `data_loader(step) -> (input, target, ok)` (ok=False ends).

    Raises:
        DataError: the loader has no data for step 0 (it sizes the step state, as in LOOM,
            so step 0 is fetched twice).
        ShapeError: a target's size differs from the network's output.
    """
    cfg = config or SteppingConfig()
    x0, _, ok = data_loader(0)
    if not ok or x0 is None or np.size(x0) == 0:
        raise DataError("train_with_stepping: data_loader returned no data for step 0; it "
                        "must return (input, target, True) for step 0")
    state = StepState(net, cfg.loom_residuals, input_size=int(np.size(x0)))
    net.set_optimizer(cfg.optim_config())  # LOOM's SetOptimizer: the net keeps it
    sched = cfg.schedule()
    accum, log_every = cfg.grad_accum_steps or 1, cfg.log_every or 100
    count, summed, losses, lrs = 0, 0.0, [], []
    net.zero_grad()
    start = time.perf_counter()
    for step in range(total_steps):
        x, target, ok = data_loader(step)
        if not ok:
            break
        if x is None:
            raise DataError(f"train_with_stepping: data_loader returned ok=True without an "
                            f"input for step {step}; return (input, target, True) or "
                            f"(None, None, False) to stop")
        lr = sched(step)
        summed += _tick(state, x, target, cfg.grad_scaling)
        count += 1
        if count >= accum:
            if cfg.grad_clip_value > 0:
                clip_global_norm([g for _, g in net.gradients()], cfg.grad_clip_value)
            net.apply_gradients(lr)  # the optimizer's step, then the gradients are zeroed
            count = 0
        if (step + 1) % log_every == 0:
            losses.append(summed / log_every)
            lrs.append(lr)
            summed = 0.0
            if cfg.on_step is not None:
                cfg.on_step(step + 1, lr, losses[-1])
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 \
                and cfg.on_checkpoint is not None:
            cfg.on_checkpoint(step + 1, net)
    seconds = time.perf_counter() - start
    return SteppingResult(total_steps, losses[-1] if losses else 0.0, losses, lrs, seconds,
                          total_steps / seconds if seconds > 0 else 0.0)


def _tick(state: StepState, x, target, grad_scaling: bool) -> float:
    """One tick and its backward against `target`; returns LOOM's MSE of the tick."""
    state.set_input(x)
    state.step_forward()
    out = np.ravel(state.output())
    loss, dy = loss_and_grad("mse", out, target_like(target, out.shape, "train_with_stepping"))
    state.step_backward(dy, grad_scaling=grad_scaling)
    return float(loss)
