"""`loomdist train / eval / report`: click commands over loomdist.run and loomdist.eval."""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path

import click

from .plan import PIN_CHOICES
from .schedule import SCHEDULES
from .train_config import TrainingConfig

_SKIP = ("validation_inputs", "validation_targets")


def training_options(fn):
    """One --option per TrainingConfig field (1:1), each defaulting to the config file's."""
    for f in reversed([f for f in fields(TrainingConfig) if f.name not in _SKIP]):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        if isinstance(default, bool):
            opt = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None,
                               help=f"TrainingConfig.{f.name} (default {default}).")
        else:
            opt = click.option(flag, f.name, type=type(default), default=None,
                               help=f"TrainingConfig.{f.name} (default {default!r}).")
        fn = opt(fn)
    return fn


def ray_options(fn):
    """The Ray backend's options (driver.RayOptions, 1:1)."""
    opts = [
        click.option("--backend", type=click.Choice(["local", "ray"]), default="ray",
                     show_default=True, help="ray: cell actors on Ray (a local Ray is started "
                     "when no --address is given); local: everything in this process."),
        click.option("--address", default=None,
                     help="Ray address (auto: the running cluster); default: a local Ray."),
        click.option("--plan", "plan", type=click.Choice(["cells", "balanced"]),
                     default="cells", show_default=True, help="One actor per cell, or "
                     "stages balanced by measured per-cell cost."),
        click.option("--stages", type=int, default=0, help="Stages of a balanced plan "
                     "(default min(2, cells))."),
        click.option("--microbatches", type=int, default=1, show_default=True),
        click.option("--replicas", type=int, default=1, show_default=True),
        click.option("--schedule", type=click.Choice(sorted(SCHEDULES)), default="gpipe",
                     show_default=True, help="Pipeline schedule; zbh1 is 1F1B that computes "
                     "deferred weight gradients in idle ticks."),
        click.option("--branch-actors", is_flag=True,
                     help="Run every Parallel layer's branches on BranchActors."),
        click.option("--timeout-s", type=float, default=600.0, show_default=True,
                     help="Limit of every wait for Ray actors."),
        click.option("--max-restarts", type=int, default=3, show_default=True,
                     help="Actor restarts (from the last checkpoint) before giving up."),
        click.option("--gpus-per-actor", type=float, default=0.0, show_default=True,
                     help="Ray GPUs per cell actor (below 1 shares a GPU); > 0 runs the "
                     "cells on the wgpu backend."),
        click.option("--cell-backend", type=click.Choice(["cpu", "wgpu"]), default=None,
                     help="The cells' math (default: wgpu when --gpus-per-actor > 0, else "
                     "cpu); wgpu without GPUs reserved uses whatever adapter each actor finds."),
        click.option("--pin-cpus", type=click.Choice(PIN_CHOICES),
                     default="process", show_default=True, help="Pin every actor with a "
                     "whole number of CPUs to its own CPUs: all its threads, its task thread "
                     "only, or none (the OS places them)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def make_ray_options(backend, **kw):
    """driver.RayOptions from the CLI's values, or None for --backend local."""
    from .plan import pin_mode
    kw["pin_cpus"] = pin_mode(kw.get("pin_cpus", "process"))
    if backend == "local":
        if kw.get("gpus_per_actor") or kw.get("cell_backend"):
            raise click.UsageError("--gpus-per-actor / --cell-backend place cell actors; use "
                                   "them with --backend ray")
        return None
    from .driver import RayOptions
    return RayOptions(**kw)


def register(main, console, guard):
    @main.command("train")
    @click.argument("config", type=click.Path(dir_okay=False))
    @click.option("--resume", is_flag=True, help="Continue from the run's last checkpoint.")
    @click.option("--run-dir", default=None, help="Parent directory of runs (default: runs).")
    @click.option("--run-id", default=None, help="Run name (default: a timestamp).")
    @ray_options
    @training_options
    def train_cmd(config, resume, run_dir, run_id, backend, address, plan, stages,
                  microbatches, replicas, schedule, branch_actors, timeout_s, max_restarts,
                  gpus_per_actor, cell_backend, pin_cpus, **overrides):
        """Train the network in CONFIG (TOML or JSON: [network], [data], [training], [run]).

        Every training field can be overridden by its option; the run directory gets
        config.json, Parquet tables, plots, checkpoints and a LOOM model.json.
        """
        from dataclasses import replace

        from rich.progress import Progress

        from .run import RunConfig, run_training
        given = {k: v for k, v in overrides.items() if v is not None}
        cfg = guard(lambda: RunConfig.from_file(config, given))
        cfg = replace(cfg, run_dir=run_dir or cfg.run_dir, run_id=run_id or cfg.run_id)
        ray_opts = make_ray_options(backend, address=address, plan=plan, stages=stages,
                                    microbatches=microbatches, replicas=replicas,
                                    schedule=schedule, branch_actors=branch_actors,
                                    timeout_s=timeout_s, max_restarts=max_restarts,
                                    gpus_per_actor=gpus_per_actor, cell_backend=cell_backend,
                                    pin_cpus=pin_cpus)
        if ray_opts is None:  # this process trains: keep freed memory, as the actors do
            from .memory import retain_freed_memory
            retain_freed_memory()
        con = console()
        with Progress(console=con, transient=True) as bar:
            task = bar.add_task("training", total=None)
            out = guard(lambda: run_training(
                cfg, resume=resume, ray_options=ray_opts, on_step=lambda s, loss: bar.update(
                    task, advance=1, description=f"step {s} loss {loss:.4f}")))
        r = out.result
        con.print(f"final loss {r.final_loss:.6f} (best {r.best_loss:.6f}), "
                  f"{r.avg_throughput:,.0f} samples/s, {out.seconds:.1f} s")
        if out.test_accuracy is not None:
            con.print(f"test accuracy {out.test_accuracy * 100:.2f}%, "
                      f"score {out.test_score:.2f}/100")
        con.print(f"run directory: {out.run_dir}")

    @main.command("eval")
    @click.argument("model", type=click.Path(dir_okay=False))
    @click.argument("data")
    @click.option("--id", "model_id", default=None, help="Model id in the bundle (default: the "
                                                         "only one).")
    @click.option("--label", default="label", show_default=True, help="Label column (tables).")
    @click.option("--json", "json_path", default=None, help="Write LOOM's metrics JSON here.")
    def eval_cmd(model, data, model_id, label, json_path):
        """Evaluate MODEL on DATA (file or built-in) with LOOM's DeviationMetrics."""
        from .data import load_data
        from .eval import evaluate_network
        from .io.loom_json import load_bundle
        nets = guard(lambda: load_bundle(model))
        if model_id is None and len(nets) != 1:
            raise click.UsageError(f"{model} holds {sorted(nets)}; pick one with --id")
        if model_id is not None and model_id not in nets:
            raise click.BadParameter(f"no model {model_id!r}; ids: {sorted(nets)}",
                                     param_hint="--id")
        net = nets[model_id] if model_id else next(iter(nets.values()))
        ds = guard(lambda: load_data(data, label=label))
        expected = ds.y if ds.is_classification else ds.y[:, 0]
        metrics = guard(lambda: evaluate_network(net, ds.x, expected.astype(float)))
        click.echo(metrics.summary())
        if ds.is_classification:
            pred = net.forward(ds.x).argmax(axis=1)
            click.echo(f"Accuracy: {(pred == ds.y).mean() * 100:.2f}%")
        if json_path:
            metrics.save_metrics(json_path)

    @main.command("report")
    @click.argument("run_dir", type=click.Path(file_okay=False))
    def report_cmd(run_dir):
        """Summarise RUN_DIR: history table, last evaluation, plots (written to plots/)."""
        from .runlog import report
        path = Path(run_dir)
        if not (path / "history.parquet").is_file():
            raise click.ClickException(f"{path}: no history.parquet; is this a run directory?")
        guard(lambda: report(path, console()))
