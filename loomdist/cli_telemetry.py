"""`loomdist blueprint` and `loomdist telemetry record|replay|viz` (click over loomdist.tween)."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np


def _pick(nets: dict, model_id, model: str):
    if model_id is None:
        if len(nets) != 1:
            raise click.UsageError(f"{model} holds {sorted(nets)}; name one as MODEL_ID / --id")
        return next(iter(nets.items()))
    if model_id not in nets:
        raise click.BadParameter(f"no model {model_id!r} in {model}; ids: {sorted(nets)}",
                                 param_hint="MODEL_ID")
    return model_id, nets[model_id]


def _input_size(net) -> int:
    n = net.input_size or (net.in_features() or 0) * net.batch_size
    if not n:
        raise click.UsageError("the model's input size cannot be inferred (no input_size, and "
                               "its first layer accepts several); pass --input-size")
    return n


def _record(net, ticks: int, mode: str, backward: bool, seed: int, size: int, loom: bool):
    """Drive `net` for `ticks` ticks on seeded N(0, 1) inputs; backward of L = |y|^2 / 2."""
    rng = np.random.default_rng(seed)
    state = None
    if mode == "step":
        from .tween.step import StepState
        state = StepState(net, loom_residuals=loom, input_size=size)
    for _ in range(ticks):
        x = rng.standard_normal(size).astype(np.float32)
        if state is None:
            y = net.forward(x)
            if backward:
                net.backward(y)
        else:
            state.set_input(x)
            state.step_forward()
            if backward:
                state.step_backward(state.output())


def register(main, console, guard):
    @main.command("blueprint")
    @click.argument("model", type=click.Path(dir_okay=False))
    @click.argument("model_id", required=False)
    @click.option("--compact", is_flag=True, help="Go's json.Marshal form (one line).")
    @click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
                  help="Write the JSON here instead of printing it.")
    def blueprint_cmd(model, model_id, compact, out):
        """Print LOOM's blueprint (ExtractNetworkBlueprint) of MODEL as JSON."""
        from .io.loom_json import load_bundle
        mid, net = _pick(guard(lambda: load_bundle(model)), model_id, model)
        text = guard(lambda: net.blueprint(mid).to_json(indent=not compact))
        if out:
            Path(out).write_text(text + "\n", encoding="utf-8")
        else:
            click.echo(text)

    @main.group("telemetry")
    def telemetry():
        """Record layer activity to Parquet, replay it into observers, draw it."""

    @telemetry.command("record")
    @click.argument("model", type=click.Path(dir_okay=False))
    @click.argument("out", type=click.Path(dir_okay=False))
    @click.option("--id", "model_id", default=None, help="Model id in the bundle.")
    @click.option("--ticks", default=1000, show_default=True, type=click.IntRange(1))
    @click.option("--mode", type=click.Choice(["forward", "step"]), default="step",
                  show_default=True, help="Network.forward per tick, or StepState ticks.")
    @click.option("--backward/--no-backward", default=False, show_default=True,
                  help="Also backpropagate L = |output|^2 / 2 each tick.")
    @click.option("--values", default=0, show_default=True, type=click.IntRange(0),
                  help="Input/Output values kept per event (0: statistics only).")
    @click.option("--max-ticks", default=10_000, show_default=True, type=click.IntRange(1),
                  help="Ticks kept (the newest).")
    @click.option("--seed", default=0, show_default=True, type=int)
    @click.option("--input-size", default=0, type=click.IntRange(0),
                  help="Flat input length (default: inferred from the model).")
    @click.option("--loom-residuals/--engine-residuals", default=True, show_default=True,
                  help="Step mode's residual memory (see loomdist.tween.step).")
    def record_cmd(model, out, model_id, ticks, mode, backward, values, max_ticks, seed,
                   input_size, loom_residuals):
        """Run MODEL on seeded random inputs and write its activity to OUT (Parquet)."""
        from .io.loom_json import load_bundle
        from .tween.recorder import ActivityRecorder
        mid, net = _pick(guard(lambda: load_bundle(model)), model_id, model)
        rec = ActivityRecorder(max_ticks=max_ticks, max_values=values)
        net.attach_observer(rec, model_id=mid)
        size = input_size or _input_size(net)
        guard(lambda: _record(net, ticks, mode, backward, seed, size, loom_residuals))
        path = rec.write_parquet(out)
        console().print(f"recorded {len(rec)} events over {len(rec.ticks)} ticks -> {path}")

    @telemetry.command("replay")
    @click.argument("recording", type=click.Path(dir_okay=False))
    @click.option("--verbose", is_flag=True, help="ConsoleObserver(Verbose): print outputs.")
    @click.option("--quiet", is_flag=True, help="Print nothing per event.")
    @click.option("--json", "json_path", default=None,
                  help="Also write LOOM's RecordedActivity JSON (RecordingObserver) here.")
    def replay_cmd(recording, verbose, quiet, json_path):
        """Replay RECORDING into LOOM's ConsoleObserver (and a RecordingObserver)."""
        from .tween.observers import ConsoleObserver, RecordingObserver
        from .tween.recorder import read_recording, replay
        table = guard(lambda: read_recording(recording))
        ids = table.column("model_id").unique().to_pylist()
        observers = [] if quiet else [ConsoleObserver(verbose=verbose)]
        rec = RecordingObserver(ids[0] if len(ids) == 1 else "") if json_path else None
        n = replay(table, observers + ([rec] if rec else []))
        if rec is not None:
            Path(json_path).write_text(rec.to_json() + "\n", encoding="utf-8")
        click.echo(f"replayed {n} events", err=True)

    @telemetry.command("viz")
    @click.argument("recording", type=click.Path(dir_okay=False))
    @click.option("--png", default=None, help="Write the heatmap PNG here.")
    @click.option("--html", default=None, help="Write the self-contained HTML page here.")
    @click.option("--metric", type=click.Choice(["avg", "max", "min", "active"]),
                  default="avg", show_default=True)
    def viz_cmd(recording, png, html, metric):
        """Draw RECORDING's per-layer activity over ticks (PNG and/or HTML)."""
        from .tween.recorder import read_recording
        from .tween.viz import write_html, write_png
        if not png and not html:
            raise click.UsageError("nothing to write; pass --png FILE and/or --html FILE")
        table = guard(lambda: read_recording(recording))
        for path, write in ((png, write_png), (html, write_html)):
            if path:
                guard(lambda p=path, w=write: w(table, p, metric))
                console().print(f"wrote {path}")
