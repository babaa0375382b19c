"""Training configuration and result (LOOM's TrainingConfig vocabulary, plus optimizers)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .errors import ConfigError
from .losses import check_loss
from .optim import OptimConfig, Schedule


@dataclass(frozen=True)
class TrainingConfig:
    """Everything one training run needs; CLI options and config files map 1:1 onto it."""

    epochs: int = 10                 # passes over the training data
    learning_rate: float = 1e-3      # base LR (the schedule scales it)
    gradient_clip: float = 0.0       # global L2 norm; 0 = off
    loss_type: str = "mse"           # "mse" | "cross_entropy" (fused with a final softmax)
    evaluate_every_n: int = 0        # epochs between validations; 0: net.train never
                                     # validates (a CLI run still evaluates at the end)
    validation_inputs: object = field(default=None, compare=False, repr=False)
    validation_targets: object = field(default=None, compare=False, repr=False)
    verbose: bool = False            # LOOM-style console lines
    print_every_batch: int = 0       # verbose batch lines every N batches (0 = each, <0 never)
    optimizer: str = "sgd"           # sgd | momentum | adam | adamw | rmsprop
    momentum: float = 0.9
    dampening: float = 0.0
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    weight_decay: float = 0.0
    alpha: float = 0.99
    rms_momentum: float = 0.0
    lr_schedule: str = "constant"    # constant | linear | cosine | exponential | step |
    warmup_steps: int = 0            #   polynomial | warmup | warmup_cosine
    total_steps: int = 0             # schedule horizon; 0 = epochs * batches per epoch
    min_lr: float = 0.0
    decay_rate: float = 0.0
    decay_steps: int = 0
    step_size: int = 0
    power: float = 1.0
    batch_size: int = 32             # mini-batch size for Trainer.fit
    shuffle: bool = True             # reshuffle every epoch (seeded: order is reproducible)
    seed: int = 0
    checkpoint_every: int = 0        # steps between checkpoints (0 = only at the end)
    fuse_softmax_ce: bool = True     # cross-entropy straight from a final softmax's logits

    def __post_init__(self):
        object.__setattr__(self, "loss_type", check_loss(self.loss_type))
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"TrainingConfig: {name} must be an integer >= 1 (got {v!r})")
        for name in ("learning_rate", "gradient_clip"):
            if getattr(self, name) < 0:
                raise ConfigError(f"TrainingConfig: {name} must be >= 0 "
                                  f"(got {getattr(self, name)})")
        if self.evaluate_every_n < 0 or self.checkpoint_every < 0:
            raise ConfigError("TrainingConfig: evaluate_every_n and checkpoint_every must be "
                              ">= 0")
        self.optim_config()
        self.schedule(1)

    def optim_config(self) -> OptimConfig:
        names = {f.name for f in fields(OptimConfig)} - {"name"}
        return OptimConfig(self.optimizer, **{n: getattr(self, n) for n in names})

    def schedule(self, steps_per_epoch: int) -> Schedule:
        total = self.total_steps or self.epochs * steps_per_epoch
        return Schedule(self.lr_schedule, self.learning_rate, total, self.warmup_steps,
                        self.min_lr, self.decay_rate, self.decay_steps, self.step_size,
                        self.power)

    def to_dict(self) -> dict:
        """JSON-ready fields (validation data left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("validation_inputs", "validation_targets")}

    @classmethod
    def from_dict(cls, d: dict) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"training config: unknown field(s) {unknown}; known fields are "
                              f"{sorted(known - {'validation_inputs', 'validation_targets'})}")
        return cls(**d)


@dataclass
class TrainingResult:
    """What a training run returns (LOOM's TrainingResult, snake_case)."""

    final_loss: float
    best_loss: float
    total_time: float                 # seconds
    avg_throughput: float             # samples / second
    loss_history: list                # one mean loss per epoch
    eval_metrics: object = None       # the last validation DeviationMetrics, if any
    steps: int = 0
    history: list = field(default_factory=list)  # one dict per epoch (loss, lr, grad_norm, ...)
