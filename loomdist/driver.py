"""DistributedTrainer: walks a pipeline schedule over CellActors on Ray, owns timeouts and
failures. The same training as train.Trainer (epoch order, LR schedule, LOOM's loss
normalisation, global-norm clip), with the update inside the actors that own the weights.

One mini-batch (B rows), R replicas, M micro-batches, K stages:

    rows --split R--> replica r --split M--> micro-batch m (b rows, scale b / B)
    tick table (schedule.py) -> cell[r][s].forward(m, x_ref, res_ref) -> (y_ref, res_ref)
                                cell[r][K-1].forward_loss(m, ..., target, scale) -> loss
                                cell[r][s].backward(m, dy_ref, dres_ref) -> (dx_ref, ...)
                                cell[r][s].weight_grads(m)  (zbh1's idle ticks)
    every owner: grad_sq_norm(*replica grads) -> driver: clip scale -> apply(lr, scale)

Activations and gradients move actor to actor as ObjectRefs; the driver only waits for
scalars (losses, squared norms) and, when asked, weights.

Faults: every `checkpoint_every` steps the cells write their npz files and the driver
trainer.json (train.Trainer's fields) and the manifest, last. When an actor dies or a wait
times out, fit kills every actor, starts new ones, loads the last complete checkpoint (or the
starting weights) into them and replays from its step (recovery.py), at most max_restarts
times. Checkpoints are keyed by grid coordinates, so `fit(resume=True)` continues one written
by any plan, or by train.Trainer, and train.Trainer continues one written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import ray
from ray.exceptions import (
    NodeDiedError,
    ObjectLostError,
    RayActorError,
    RayError,
    WorkerCrashedError,
)

from .actors.branch import BranchActor
from .actors.cell import CellActor
from .actors.pinning import pin_actors
from .actors.raycluster import check_address, connect
from .actors.transport import RayTransport
from .errors import CellFailedError, ConfigError, ShapeError
from .io.checkpoint import (
    begin_checkpoint,
    finish_checkpoint,
    latest_checkpoint,
    read_trainer_state,
    verify_checkpoint,
)
from .layers import module_of
from .losses import target_like
from .plan import Plan
from .recovery import ActorLost, Fault, fresh_state, gave_up
from .schedule import schedule_by_name
from .train import fit_loop, fused_softmax

SETTING = "DistributedTrainer(timeout_s=...) / --timeout-s"
# Errors after which a restart can help (a dead actor, worker, node or object; a wait that
# ran out); anything else (a bug, bad data) fails at once.
LOST = (RayActorError, WorkerCrashedError, ObjectLostError, NodeDiedError, TimeoutError)


class DistributedTrainer:
    """Trainer.fit on Ray actors.

    Args:
        net: the Network (its weights are the starting point; `network()` writes the trained
            ones back into it).
        config: TrainingConfig.
        plan: Plan (default: one actor per cell).
        schedule: "gpipe", "1f1b" or "zbh1" (1F1B that computes deferred weight gradients
            in idle ticks; see schedule.py).
        microbatches: M, micro-batches per replica per mini-batch.
        address: Ray address ("auto", "host:port"); None starts a local Ray for this trainer
            unless this process is already connected.
        timeout_s: limit of every wait for actors.
        run_dir, on_step, on_epoch: as Trainer (checkpoints, progress, validation). Actors
            write checkpoint files into run_dir, so on a cluster it must be a shared path.
        max_restarts: how often fit restarts the actors after one died or timed out.
        fault: a recovery.Fault to inject (tests); its counter goes to run_dir/faults.
        defer_weight_grads: stages compute only dL/dx per micro-batch and each weight
            gradient once per mini-batch, with one GEMM over all micro-batches (layers whose
            module has backward_input / weight_grads); False: per micro-batch, accumulated.
    Raises:
        ConfigError: bad plan, schedule, micro-batch count, max_restarts or fault,
            unreachable address, too few CPUs or GPUs (Plan.num_gpus per cell actor), or no
            wgpu adapter for cells on wgpu (Plan.cell_backend), before any actor starts.
    """

    def __init__(self, net, config, plan: Plan | None = None, schedule: str = "gpipe",
                 microbatches: int = 1, address: str | None = None, timeout_s: float = 600.0,
                 run_dir=None, on_step=None, on_epoch=None, max_restarts: int = 3,
                 fault: Fault | None = None, defer_weight_grads: bool = True):
        self.net, self.cfg, self.plan = net, config, plan or Plan.cells(net)
        self.defer = bool(defer_weight_grads)
        self.schedule, self.micro = schedule_by_name(schedule), microbatches
        self.run_dir = Path(run_dir).resolve() if run_dir is not None else None
        self.on_step, self.on_epoch, self.step_no = on_step, on_epoch, 0
        self.transport, self.max_restarts = RayTransport(timeout_s, SETTING), max_restarts
        self.fault = self._check(address, fault)
        # restart point while no checkpoint exists: the weights the actors start from
        self._initial, self._restore = {k: w.copy() for k, w in net.parameters()}, None
        self._started = connect(address)
        try:
            self._per = self._cpus_per_actor()
            self._check_gpus()
            self._start_actors(self._per)
        except BaseException:
            self.shutdown()
            raise

    # ------------------------------------------------------------ set-up
    def _check(self, address, fault):
        """Validate the settings; returns the fault with its counter directory filled in."""
        self.plan.check(self.net)
        r = self.max_restarts
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ConfigError(f"DistributedTrainer: max_restarts must be an integer >= 0 (got "
                              f"{r!r})")
        m = self.micro
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ConfigError(f"DistributedTrainer: microbatches must be an integer >= 1 (got "
                              f"{m!r})")
        mixing = [i for i, s in enumerate(self.net.layers)
                  if getattr(module_of(s.spec), "mixes_batch", lambda _: False)(s.spec)]
        if mixing and m * self.plan.replicas > 1:
            raise ConfigError(f"DistributedTrainer: layers {mixing} mix samples of a batch "
                              f"(parallel concat's flat layout), so splitting mini-batches "
                              f"changes results; use microbatches=1 and replicas=1")
        check_address(address)
        if fault is None or fault.state_dir is not None:
            return fault
        if self.run_dir is None:
            raise ConfigError("DistributedTrainer: a Fault needs a state_dir or a run_dir for "
                              "its counter file")
        return replace(fault, state_dir=str(self.run_dir / "faults"))

    def _cpus_per_actor(self) -> float:
        have = float(ray.cluster_resources().get("CPU", 0))
        n = self.plan.actor_count(self.net)
        per = self.plan.num_cpus or math.floor(have / n * 1e4) / 1e4
        if per <= 0 or n * per > have + 1e-9:
            raise ConfigError(f"DistributedTrainer: {n} actors x {per:g} CPUs need "
                              f"{n * per:g} CPUs, the Ray cluster has {have:g}; use fewer "
                              f"stages or replicas, a smaller Plan.num_cpus, or a larger "
                              f"cluster")
        return per

    def _check_gpus(self) -> None:
        """Raise ConfigError when the cell actors' GPUs exceed the cluster's, or when their
        math is on wgpu and this machine has no wgpu adapter."""
        plan = self.plan
        n = len(plan.stages) * plan.replicas
        need, have = n * plan.num_gpus, float(ray.cluster_resources().get("GPU", 0))
        if need > have + 1e-9:
            fix = (f"use --gpus-per-actor (Plan.num_gpus) of at most {have / n:g}, fewer "
                   f"stages or replicas, or a cluster with more GPUs" if have else
                   "start Ray where the GPUs are (ray start --num-gpus N), or use "
                   "--gpus-per-actor 0 --cell-backend wgpu (Plan num_gpus=0, backend='wgpu') "
                   "to run the cells on wgpu without reserving GPUs")
            raise ConfigError(f"DistributedTrainer: {n} cell actors x {plan.num_gpus:g} GPUs "
                              f"need {need:g} GPUs, the Ray cluster has {have:g}; {fix}")
        if plan.cell_backend == "wgpu":
            from .kernels.gpu import device
            try:
                device.get_device()
            except ConfigError as e:
                raise ConfigError(f"DistributedTrainer: the cells' backend is wgpu, but {e}"
                                  ) from e

    def _start_actors(self, per: float) -> None:
        net, plan, optim = self.net, self.plan, self.cfg.optim_config()
        threads, last = max(1, int(per)), len(plan.stages) - 1
        loss = (self.cfg.loss_type, fused_softmax(net, self.cfg))
        self.cells, self.owners, self.branch_handles = [], [], []
        # cells: [replica][stage]; owners: [replica][(cell, (row, col))] (branch actors are
        # reached through their cell)
        for _ in range(plan.replicas):
            cells, owners = [], []
            for s in range(len(plan.stages)):
                idx, rc = plan.stage_layers(net, s), plan.stages[s][0]
                branches = {i: self._branches(i, per, threads, optim)
                            for i in idx if i in plan.branch_actors}
                self.branch_handles += [h for g in branches.values() for h, _ in g]
                cell = CellActor.options(num_cpus=per, num_gpus=plan.num_gpus).remote(
                    [(i, net.coords(i), _host(net.layers[i])) for i in idx], optim,
                    loss if s == last else None, branches, self.transport, self.fault,
                    self.defer, plan.cell_backend, threads=threads)
                cells.append(cell)
                owners.append((cell, rc))
            self.cells.append(cells)
            self.owners.append(owners)
        self._wait([(c, "ping", ()) for cells in self.cells for c in cells], "actor start")
        handles = [c for cells in self.cells for c in cells] + self.branch_handles
        self.pinned = pin_actors(handles, per, self._wait_refs, plan.pin_cpus,
                                 getattr(self, "_killed", ()))
        self._processes = (self._wait_refs([h.process.remote() for h in handles],
                                           "actor processes")
                           if any(c is not None for c in self.pinned) else [])

    def _branches(self, i, per, threads, optim) -> list:
        n = len(self.net.layers[i].spec.branches)
        groups = [g.tolist() for g in np.array_split(np.arange(n), self.plan.branch_groups)
                  if len(g)]
        return [(BranchActor.options(num_cpus=per).remote(
            self.net.coords(i), _host(self.net.layers[i]), g, optim, self.defer,
            threads=threads), g)
                for g in groups]

    # ------------------------------------------------------------ training
    def fit(self, x: np.ndarray, targets: np.ndarray, resume: bool = False):
        """Train on x (n, features) against targets (n, outputs), as Trainer.fit does.

        resume: continue from run_dir's last complete checkpoint (written by this class or
        by train.Trainer, with any plan). A dead or silent actor restarts the actors from
        the last checkpoint and replays (on_step and on_epoch are called again for the
        replayed steps and epochs).
        Raises:
            CellFailedError: a cell failed for a reason a restart cannot fix, or
                max_restarts restarts did not get past a failure.
        """
        s, restarts = self._start_state(resume), 0
        while True:
            try:
                if s is None:
                    s = self._restart()
                return self._fit(x, targets, s)
            except ActorLost as lost:
                if restarts >= self.max_restarts:
                    raise gave_up(lost, restarts) from lost
                restarts, s = restarts + 1, None

    def _fit(self, x, targets, s: dict):
        """train.fit_loop from state `s` (its trainer.json fields), on the actors."""
        self.step_no = s["step"]
        on_epoch = None if self.on_epoch is None else self._on_epoch
        ckpt = None if self.run_dir is None else self.checkpoint
        result = fit_loop(self.cfg, x, targets, s, self.step, ckpt, self.on_step, on_epoch)
        self.network()
        return result

    def _on_epoch(self, record: dict):
        self.network()  # validation reads net's weights
        return self.on_epoch(record)

    def step(self, x: np.ndarray, target: np.ndarray, lr: float) -> tuple[float, float]:
        """One mini-batch: pipeline every replica, combine, clip, update. (loss, norm)."""
        x = np.asarray(x, np.float32)
        if x.ndim != 2:
            raise ShapeError(f"DistributedTrainer.step: x has shape {x.shape}; pass a "
                             f"(samples, features) array")
        outputs = self.net.out_features(self.net.in_features() or x.shape[1])
        target = target_like(np.asarray(target, np.float32), (len(x), outputs),
                             "DistributedTrainer.step")
        self.step_no += 1
        self._calls = []
        self._submit_all("begin_step", self.step_no)
        rows = [r for r in np.array_split(np.arange(len(x)), self.plan.replicas) if len(r)]
        losses, unread = [], []  # unread: calls whose result no later call takes (errors)
        for r, part in enumerate(rows):
            replica_losses, replica_unread = self._pipeline(self.cells[r], x, target, part,
                                                            len(x))
            losses += replica_losses
            unread += replica_unread
        norm = math.sqrt(sum(self._wait_refs(self._reduce(len(rows)), "gradient norm")))
        self._wait_refs(unread, "backward")
        clip = self.cfg.gradient_clip
        scale = clip / norm if clip > 0 and norm > clip else 1.0
        self._submit_all("apply", lr, scale)
        loss = float(sum(self._wait_refs(losses, "loss")))
        self._wait_refs(self._submit_all("ping"), "update")
        return loss, norm

    def _pipeline(self, cells, x, target, rows, total) -> tuple[list, list]:
        """Submit one replica's schedule; returns its loss refs (one per micro-batch) and the
        refs no later call consumes (stage 0's backwards, weight-gradient ticks: the driver
        waits on them so that their errors surface)."""
        mbs = [m for m in np.array_split(rows, self.micro) if len(m)]
        k, put = len(cells), self.transport.put
        xs, ts = [put(x[m]) for m in mbs], [put(target[m]) for m in mbs]
        acts, grads, losses, unread = {}, {}, [], []
        for t in self.schedule(k, len(mbs)):
            s, b = t.stage, t.micro_batch
            if t.op == "fwd":
                args = (xs[b], None) if s == 0 else acts.pop((s - 1, b))
                if s == k - 1:
                    losses.append(self._call(cells[s], "forward_loss", b, *args, ts[b],
                                             len(mbs[b]) / total))
                else:
                    acts[(s, b)] = self._call(cells[s], "forward", b, *args, returns=2)
            elif t.op == "bwd":
                args = (None, None) if s == k - 1 else grads.pop((s + 1, b))
                if s == 0:  # nothing takes dL/dx of the network's input: not returned
                    unread.append(self._call(cells[s], "backward", b, *args, False))
                else:
                    grads[(s, b)] = self._call(cells[s], "backward", b, *args, returns=2)
            else:  # "wgt": deferred weight gradients of micro-batch b (ZB-H1's idle ticks)
                unread.append(self._call(cells[s], "weight_grads", b))
        return losses, unread

    def _reduce(self, active: int) -> list:
        """Every owner sums the gradients of the `active` replicas (those that got rows) and
        returns its squared norm; the refs of replica 0 (every replica holds the same sums,
        so all stay identical)."""
        if len(self.owners) == 1:
            return [self._call(h, "grad_sq_norm") for h, _ in self.owners[0]]
        out = []
        for copies in zip(*self.owners):
            g = [self._call(h, "grads") for h, _ in copies[:active]]
            out += [self._call(h, "grad_sq_norm", *g) for h, _ in copies][:1]
        return out

    # -------------------------------------------------------- calls, waits
    def _call(self, handle, method, *args, returns=1):
        ref = self.transport.call(handle, method, *args, returns=returns)
        for r in ref if returns > 1 else [ref]:
            self._calls.append((r, self._where(handle)))
        return ref

    def _where(self, handle):
        return {id(h): rc for owners in self.owners for h, rc in owners}.get(id(handle),
                                                                              (-1, -1))

    def _submit_all(self, method, *args) -> list:
        return [self._call(h, method, *args) for owners in self.owners for h, _ in owners]

    def _wait(self, calls, what):
        self._calls = []
        return self._wait_refs([self._call(h, m, *a) for h, m, a in calls], what)

    def _wait_refs(self, refs, what):
        try:
            return self.transport.get(refs, what)
        except TimeoutError as e:
            raise self._timeout(e) from e
        except RayError as e:
            raise self._failure(e) from e

    def _failure(self, err) -> CellFailedError:
        """The first failed call in submission order (upstream of the others) names the cell;
        ActorLost (recoverable) when an actor, worker, node or object was lost."""
        for ref, (r, c) in getattr(self, "_calls", []):
            ready, _ = ray.wait([ref], timeout=0)
            if ready:
                try:
                    ray.get(ref, timeout=0)
                except RayError as e:
                    return _failed(r, c, self.step_no, e)
        return _failed(-1, -1, self.step_no, err)

    def _timeout(self, err: TimeoutError) -> ActorLost:
        """The first call in submission order without a result names the cell."""
        for ref, (r, c) in getattr(self, "_calls", []):
            if not ray.wait([ref], timeout=0)[0]:
                return ActorLost(r, c, self.step_no, str(err))
        return ActorLost(-1, -1, self.step_no, str(err))

    # --------------------------------------------------- weights, checkpoints
    def network(self):
        """Pull the trained weights from the actors into `net` (returned)."""
        self._calls = []
        for state in self._wait_refs([self._call(c, "full_state") for c in self.cells[0]],
                                     "weights"):
            for key, (w, _) in state.items():
                self.net.param(key)[...] = w
        return self.net

    def gradients(self) -> dict:
        """{(row, col, layer, name): gradient} used by the last update (combined, clipped)."""
        self._calls = []
        out: dict = {}
        for g in self._wait_refs([self._call(h, "grads") for h, _ in self.owners[0]],
                                 "gradients"):
            out.update(g)
        return out

    def checkpoint(self, state: dict | None = None) -> Path:
        """Checkpoint in io.checkpoint's format: cells write their npz files, the driver
        writes trainer.json (`state`, train.Trainer's fields, plus optimizer_t) and the
        manifest last, then renames into place. Returns the checkpoint directory."""
        tmp, final = begin_checkpoint(self.run_dir, self.step_no)
        self._calls = []
        files, ts = {}, []
        for digests, t in self._wait_refs([self._call(c, "checkpoint", str(tmp))
                                           for c in self.cells[0]], "checkpoint"):
            files.update(digests)
            ts.append(t)
        state = dict(state or {"step": self.step_no}, optimizer_t=ts[0])
        self._restore = finish_checkpoint(tmp, final, self.step_no, files, state)
        return self._restore

    # ------------------------------------------------------------ recovery
    def _start_state(self, resume: bool) -> dict:
        """trainer.json's state to start fit from: run_dir's last checkpoint, loaded into the
        actors, when resuming and one exists; else step 0."""
        self._restore = None
        path = latest_checkpoint(self.run_dir) if resume and self.run_dir else None
        return self._load(path) if path is not None else fresh_state()

    def _load(self, path: Path) -> dict:
        """Load checkpoint `path` into every actor (all replicas); returns its trainer state."""
        verify_checkpoint(path)
        state = read_trainer_state(path)
        t = state.pop("optimizer_t", state["step"])
        self._wait([(c, "load", (str(path), t)) for cells in self.cells for c in cells],
                   "checkpoint load")
        self._restore = path
        return state

    def _restart(self) -> dict:
        """New actors from the last checkpoint of this fit (or the starting weights)."""
        self._kill_actors()
        if self._restore is None:
            for key, w in self._initial.items():
                self.net.param(key)[...] = w
        self._start_actors(self._per)
        return self._load(self._restore) if self._restore is not None else fresh_state()

    def _kill_actors(self) -> None:
        for h in [c for cells in getattr(self, "cells", []) for c in cells] + \
                getattr(self, "branch_handles", []):
            ray.kill(h)
        # their pinned CPUs are free for the next actors even while the processes exit
        self._killed = tuple(getattr(self, "_processes", ()))
        self.cells, self.owners, self.branch_handles = [], [], []

    def shutdown(self) -> None:
        """Kill this trainer's actors; stop Ray if this trainer started it."""
        self._kill_actors()
        if getattr(self, "_started", False):
            ray.shutdown()
            self._started = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


@dataclass(frozen=True)
class RayOptions:
    """The Ray backend's settings (CLI: --address --plan --stages --microbatches --replicas
    --schedule --branch-actors --timeout-s --max-restarts --gpus-per-actor --cell-backend
    --pin-cpus)."""

    address: str | None = None   # None: a local Ray for the run; "auto": the running cluster
    plan: str = "cells"          # "cells" (one actor per cell) | "balanced" (measured cost)
    stages: int = 0              # balanced: pipeline stages (0: min(2, cells))
    microbatches: int = 1        # per replica per mini-batch
    replicas: int = 1            # data-parallel copies of the pipeline
    schedule: str = "gpipe"      # "gpipe" | "1f1b" | "zbh1"
    branch_actors: bool = False  # every Parallel layer's branches on BranchActors
    timeout_s: float = 600.0     # limit of every wait for actors
    max_restarts: int = 3        # actor restarts (from the last checkpoint) before giving up
    gpus_per_actor: float = 0.0  # Ray GPUs per cell actor (Plan.num_gpus); > 0: cells on wgpu
    cell_backend: str | None = None  # the cells' math: "cpu" | "wgpu" | None (by the GPUs)
    pin_cpus: str | None = "process"  # Plan.pin_cpus: "process" | "thread" | None (the OS)

    def make_plan(self, net) -> Plan:
        from .plan import grid_cells, parallel_layers
        kw = dict(replicas=self.replicas, num_gpus=self.gpus_per_actor,
                  backend=self.cell_backend, pin_cpus=self.pin_cpus,
                  branch_actors=tuple(parallel_layers(net)) if self.branch_actors else ())
        if self.plan == "cells":
            return Plan.cells(net, **kw)
        if self.plan == "balanced":
            return Plan.balanced(net, self.stages or min(2, len(grid_cells(net))), **kw)
        raise ConfigError(f"RayOptions: unknown plan {self.plan!r}; use 'cells' or 'balanced'")

    def trainer(self, net, config, **kw) -> DistributedTrainer:
        """A DistributedTrainer for `net` with these settings (kw: run_dir, on_step, ...)."""
        return DistributedTrainer(net, config, self.make_plan(net), self.schedule,
                                  self.microbatches, self.address, self.timeout_s,
                                  max_restarts=self.max_restarts, **kw)


def _host(slot):
    """A plain CPU Layer for an actor (a Network on wgpu holds GpuLayers, which stay here)."""
    return slot.host() if hasattr(slot, "host") else slot


def _failed(row, col, step, err) -> CellFailedError:
    lost = isinstance(err, LOST) or isinstance(getattr(err, "cause", None), LOST)
    return (ActorLost if lost else CellFailedError)(row, col, step, _cause(err))


def _cause(err) -> str:
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__
