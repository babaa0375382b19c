"""The training loop: one process, mini-batches, optimizers, schedules, checkpoints, resume.

`train_step` is the unit every path shares (LOOM-style `net.train`, `Trainer.fit`, and the
Ray actors later): forward, loss, backward, global-norm clip, optimizer update.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import train_console as console
from .errors import ShapeError
from .io.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .losses import fused_softmax_ce, loss_and_grad, target_like
from .optim import Optimizer, clip_global_norm
from .train_config import TrainingConfig, TrainingResult


def fused_softmax(net, cfg: TrainingConfig, n: int | None = None):
    """(temperature, cols) when the last layer is a softmax the CE loss can fuse with, for n
    logits per sample (None: what the network's declared input size leads to; unknown
    sizes fuse nothing)."""
    last = net.layers[-1]
    if not (cfg.fuse_softmax_ce and cfg.loss_type == "cross_entropy" and last is not None):
        return None
    hook = getattr(last.module, "ce_fusion", None)
    n = _last_input_features(net) if n is None else n
    return hook(last.spec, n) if hook and n else None


def _last_input_features(net) -> int | None:
    """Per-sample input size of the last layer, from the network's declared input."""
    n = net.in_features() or (net.input_size // net.batch_size if net.input_size else None)
    if n is None or any(slot is None for slot in net.layers):
        return None
    for i, slot in enumerate(net.layers[:-1]):
        n = slot.spec.out_features(n, net._where(i, slot))
    return n


def train_step(net, opt: Optimizer, cfg: TrainingConfig, x, target, lr: float):
    """One update on one mini-batch. Returns (loss, gradient norm before clipping)."""
    if getattr(net, "runner", None) is not None:  # wgpu: one submit, one readback per step
        return net.runner.train_step(opt, cfg, x, target, lr)
    out = net.forward(net.as_batch(x))  # training is per sample, also on LOOM's flat layout
    logits = net.layer_input(len(net.layers) - 1)
    fused = fused_softmax(net, cfg, logits.shape[-1])
    net.zero_grad()
    if fused is not None:
        t, cols = fused
        loss, _, dz = fused_softmax_ce(logits, target_like(target, logits.shape), t,
                                       cols or logits.shape[-1])
        net.backward(dz, skip_last=True, input_grad=False)
    else:
        loss, dy = loss_and_grad(cfg.loss_type, out, target_like(target, out.shape))
        net.backward(dy, input_grad=False)
    norm = clip_global_norm([g for _, g in net.gradients()], cfg.gradient_clip)
    opt.step(net.parameters(), net.gradients(), lr)
    return loss, norm


def train_batches(net, batches, cfg: TrainingConfig | None = None) -> TrainingResult:
    """LOOM's Network.Train: `batches` of (flat input, flat target), in order, no shuffling.

    With cfg.verbose it prints LOOM's console text (loomdist.train_console): the
    configuration block, a batch line per cfg.print_every_batch, an epoch line, gradient
    statistics every 5th epoch, validation results and the final block.
    """
    cfg = cfg or TrainingConfig()
    pairs = [(getattr(b, "input", None), getattr(b, "target", None)) if hasattr(b, "input")
             else tuple(b) for b in batches]
    if not pairs:
        raise ShapeError("train: no batches given; pass a list of (input, target) pairs")
    opt, sched = Optimizer(cfg.optim_config()), cfg.schedule(len(pairs))
    history, start, step, metrics = [], time.perf_counter(), 0, None
    samples = len(pairs) * net.batch_size
    say = _printer(cfg.verbose)
    backend = "GPU" if getattr(net, "runner", None) is not None else "CPU"
    say(console.config_block(cfg, len(pairs), samples, backend))
    for epoch in range(cfg.epochs):
        t0, losses = time.perf_counter(), []
        for b, (x, t) in enumerate(pairs):
            loss, norm = train_step(net, opt, cfg, np.asarray(x, np.float32),
                                    np.asarray(t, np.float32), sched(step))
            losses.append(loss)
            step += 1
            if console.prints_batch(cfg.print_every_batch, b):
                say(console.batch_line(epoch, cfg.epochs, b, len(pairs), loss))
        record = {"epoch": epoch, "step": step, "loss": float(np.mean(losses)),
                  "lr": sched(step - 1), "grad_norm": norm, "time_s": time.perf_counter() - t0}
        history.append(record)
        best = min(h["loss"] for h in history)
        say(console.epoch_line(epoch, cfg.epochs, record["loss"], best, record["time_s"],
                               samples))
        if (epoch + 1) % 5 == 0:
            say(console.gradient_stats(net))
        if _validate_now(cfg, epoch):
            metrics = net.evaluate(cfg.validation_inputs, cfg.validation_targets)
            record["val_score"] = metrics.score
            say(console.validation_lines(metrics))
    result = _result(history, time.perf_counter() - start, samples * cfg.epochs, step, metrics)
    say(console.final_block(result))
    return result


def _printer(verbose: bool):
    """Write LOOM's text as given (Go's Printf: no added newline), flushed for \\r lines."""
    if not verbose:
        return lambda text: None
    return lambda text: print(text, end="", flush=True)


def _validate_now(cfg: TrainingConfig, epoch: int) -> bool:
    """LOOM validates every evaluate_every_n epochs when both validation sets are non-empty."""
    return bool(cfg.evaluate_every_n and _non_empty(cfg.validation_inputs)
                and _non_empty(cfg.validation_targets)
                and (epoch + 1) % cfg.evaluate_every_n == 0)


def _non_empty(values) -> bool:
    return values is not None and len(values) > 0


def _result(history, seconds, samples, steps, metrics=None) -> TrainingResult:
    losses = [h["loss"] for h in history]
    return TrainingResult(final_loss=losses[-1], best_loss=min(losses), total_time=seconds,
                          avg_throughput=samples / seconds if seconds > 0 else 0.0,
                          loss_history=losses, eval_metrics=metrics, steps=steps,
                          history=history)


def epoch_order(n: int, epoch: int, cfg: TrainingConfig) -> np.ndarray:
    """Sample order of one epoch; depends only on (seed, epoch), so resume replays it."""
    if not cfg.shuffle:
        return np.arange(n)
    return np.random.default_rng([cfg.seed, epoch]).permutation(n)


def fit_loop(cfg: TrainingConfig, x, targets, s: dict, step, checkpoint=None, on_step=None,
             on_epoch=None) -> TrainingResult:
    """The epoch loop Trainer and DistributedTrainer share, from state `s` (trainer.json's
    fields: step, epoch, batch, loss_sum, history, elapsed; updated in place, so a caller
    that restarts after an exception knows where the loop was).

    Args:
        step: step(x_batch, target_batch, lr) -> (loss, grad norm): one update.
        checkpoint: checkpoint(state) writes one (state holds s's fields but metrics, plus
            elapsed); called every cfg.checkpoint_every steps and at the end. None: never.
        on_step, on_epoch: as Trainer's.
    """
    n, bs = len(x), cfg.batch_size
    per_epoch = -(-n // bs)
    sched = cfg.schedule(per_epoch)
    start = time.perf_counter() - s.get("elapsed", 0.0)
    for epoch in range(s["epoch"], cfg.epochs):
        order, t0 = epoch_order(n, epoch, cfg), time.perf_counter()
        for b in range(s["batch"], per_epoch):
            idx = order[b * bs:(b + 1) * bs]
            loss, norm = step(x[idx], targets[idx], sched(s["step"]))
            s.update(step=s["step"] + 1, batch=b + 1, loss_sum=s["loss_sum"] + loss,
                     grad_norm=norm)
            if on_step:
                on_step(s["step"], loss)
            _maybe_checkpoint(cfg, checkpoint, s, start, final=False)
        _end_epoch(s, epoch, per_epoch, sched, t0, on_epoch)
    _maybe_checkpoint(cfg, checkpoint, s, start, final=True)
    return _result(s["history"], time.perf_counter() - start, n * cfg.epochs, s["step"],
                   s.get("metrics"))


def _end_epoch(s: dict, epoch: int, per_epoch: int, sched, t0: float, on_epoch) -> None:
    record = {"epoch": epoch, "step": s["step"], "loss": s["loss_sum"] / per_epoch,
              "lr": sched(s["step"] - 1), "grad_norm": s.get("grad_norm", 0.0),
              "time_s": time.perf_counter() - t0}
    if on_epoch:
        extra = on_epoch(record) or {}
        s["metrics"] = extra.pop("_metrics", s.get("metrics"))
        record.update(extra)
    s["history"].append(record)
    s.update(epoch=epoch + 1, batch=0, loss_sum=0.0)


def _maybe_checkpoint(cfg: TrainingConfig, checkpoint, s: dict, start: float,
                      final: bool) -> None:
    every = cfg.checkpoint_every
    if checkpoint is None or not (final or (every and s["step"] % every == 0)):
        return
    state = {k: v for k, v in s.items() if k != "metrics"}
    state["elapsed"] = time.perf_counter() - start
    checkpoint(state)


class Trainer:
    """Mini-batch training of a Network on arrays, with checkpoints and exact resume.

    Args:
        net: the Network (trained in place).
        config: TrainingConfig.
        run_dir: where checkpoints go (None: no checkpoints).
        on_step: called as on_step(step, loss) after every update (progress bars, tests).
        on_epoch: called as on_epoch(record) with each epoch's history record; may return a
            dict merged into the record (validation metrics).
    """

    def __init__(self, net, config: TrainingConfig, run_dir=None, on_step=None, on_epoch=None):
        self.net, self.cfg = net, config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.opt = Optimizer(config.optim_config())
        self.on_step, self.on_epoch = on_step, on_epoch

    def fit(self, x: np.ndarray, targets: np.ndarray, resume: bool = False) -> TrainingResult:
        """Train on x (n, features) against targets (n, outputs); returns the result."""
        state = self._resume_state() if resume else None
        s = state or {"step": 0, "epoch": 0, "batch": 0, "loss_sum": 0.0, "history": []}
        return fit_loop(self.cfg, x, targets, s, self._step,
                        self._checkpoint if self.run_dir is not None else None,
                        self.on_step, self.on_epoch)

    def _step(self, x, target, lr: float):
        return train_step(self.net, self.opt, self.cfg, x, target, lr)

    def _checkpoint(self, state: dict) -> None:
        save_checkpoint(self.run_dir, state["step"], self.net, self.opt, state)

    def _resume_state(self):
        path = latest_checkpoint(self.run_dir) if self.run_dir else None
        if path is None:
            return None
        state = load_checkpoint(path, self.net, self.opt)
        state.pop("optimizer_t", None)
        return state
