"""LOOM's optimizer API on a Network (nn/optimizer.go): SetOptimizer, ApplyGradients and
the ApplyGradients* conveniences, for step-mode loops that update between ticks.

Unlike LOOM, every parameter of every layer kind is updated (LOOM's optimizers touch only
top-level Dense/Conv2D kernels and biases), gradients are zeroed after each update
(loomdist's backward passes accumulate), and the conveniences compare optimizer kinds, not
LOOM's display names, so a momentum RMSprop or a Nesterov SGD keeps its state across calls
(LOOM makes a fresh one every call). docs/differences.md lists these.
"""

from __future__ import annotations

from .errors import ConfigError
from .optim import OptimConfig, Optimizer


class OptimizerAPI:
    """Mixed into Network: needs `parameters()`, `gradients()`, `zero_grad()`."""

    _optimizer: Optimizer | None = None

    def set_optimizer(self, optimizer) -> None:
        """LOOM's SetOptimizer: an optim.Optimizer (or OptimConfig) that apply_gradients
        uses from now on; None goes back to plain SGD."""
        if optimizer is not None and not isinstance(optimizer, (Optimizer, OptimConfig)):
            raise ConfigError(f"set_optimizer: expected an optim.Optimizer, an OptimConfig or "
                              f"None, got {type(optimizer).__name__}; e.g. "
                              f"net.set_optimizer(OptimConfig('adamw'))")
        self._optimizer = Optimizer(optimizer) if isinstance(optimizer, OptimConfig) \
            else optimizer

    def get_optimizer(self):
        """LOOM's GetOptimizer: the optimizer set_optimizer stored, or None."""
        return self._optimizer

    def reset_optimizer(self) -> None:
        """LOOM's ResetOptimizer: clear the optimizer's moment buffers and step count."""
        if self._optimizer is not None:
            self._optimizer.state = {"t": 0, "slots": {}}

    def apply_gradients(self, lr: float) -> None:
        """LOOM's ApplyGradients: the optimizer's step (plain SGD without one) on every
        accumulated gradient of every layer, then the gradients are zeroed."""
        opt = self._optimizer or Optimizer(OptimConfig("sgd"))
        opt.step(self.parameters(), self.gradients(), lr)
        self.zero_grad()

    def apply_gradients_adamw(self, lr: float, beta1: float = 0.9, beta2: float = 0.999,
                              weight_decay: float = 0.01) -> None:
        """LOOM's ApplyGradientsAdamW (epsilon 1e-8): an AdamW is made only when no AdamW
        is set; once one is, these hyper-parameters are ignored (as in LOOM)."""
        self._ensure_optimizer("adamw", beta1=beta1, beta2=beta2, epsilon=1e-8,
                               weight_decay=weight_decay)
        self.apply_gradients(lr)

    def apply_gradients_rmsprop(self, lr: float, alpha: float = 0.99, epsilon: float = 1e-8,
                                momentum: float = 0.0) -> None:
        """LOOM's ApplyGradientsRMSprop (see apply_gradients_adamw; unlike LOOM, a momentum
        RMSprop keeps its state across calls)."""
        self._ensure_optimizer("rmsprop", alpha=alpha, epsilon=epsilon, rms_momentum=momentum)
        self.apply_gradients(lr)

    def apply_gradients_sgd_momentum(self, lr: float, momentum: float = 0.9,
                                     dampening: float = 0.0, nesterov: bool = False) -> None:
        """LOOM's ApplyGradientsSGDMomentum (see apply_gradients_adamw; unlike LOOM, a
        Nesterov one keeps its state across calls)."""
        self._ensure_optimizer("momentum", momentum=momentum, dampening=dampening,
                               nesterov=nesterov)
        self.apply_gradients(lr)

    def _ensure_optimizer(self, name: str, **hyper) -> None:
        opt = self._optimizer
        if opt is None or opt.cfg.name != name:
            self.set_optimizer(OptimConfig(name, **hyper))
