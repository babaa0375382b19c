"""The `loomdist` command line (click): parse options, call the library, print with rich."""

from __future__ import annotations

import sys

import click

from .errors import LoomdistError


def _console():
    from rich.console import Console
    return Console()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loomdist")
def main():
    """loomdist: exact, fast, distributed LOOM-style grid neural networks."""


@main.command("layers")
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
def layers_cmd(as_json: bool):
    """List registered layer kinds and their init functions."""
    import json

    from .layers import LAYERS
    from .registry import list_layer_init_functions
    rows = list_layer_init_functions()
    if as_json:
        click.echo(json.dumps({"layers": sorted(LAYERS), "init_functions": rows}, indent=2))
        return
    from rich.table import Table
    table = Table(title=f"{len(LAYERS)} layer kinds, {len(rows)} init functions")
    for col in ("LOOM name", "python name", "signature"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["loom_name"], r["name"], r["signature"])
    _console().print(table)
    click.echo("kinds: " + ", ".join(sorted(LAYERS)))


@main.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--id", "model_id", default=None, help="Model id inside the bundle (default: all).")
def inspect_cmd(model: str, model_id: str | None):
    """Show the grid, layers and parameter counts of a LOOM model file."""
    from rich.table import Table

    from .io.loom_json import load_bundle
    nets = _guard(lambda: load_bundle(model))
    if model_id is not None and model_id not in nets:
        raise click.BadParameter(f"no model {model_id!r} in {model}; ids: {sorted(nets)}",
                                 param_hint="--id")
    for mid, net in nets.items():
        if model_id is not None and mid != model_id:
            continue
        table = Table(title=f"{mid}: {net.grid_rows}x{net.grid_cols}x{net.layers_per_cell} "
                            f"grid, batch {net.batch_size}, {net.num_parameters():,} parameters")
        for col in ("index", "(row, col, layer)", "type", "config", "parameters"):
            table.add_column(col)
        for i, slot in enumerate(net.layers):
            cfg = {k: v for k, v in slot.module.to_config(slot.spec).items() if k != "type"}
            n = sum(a.size for a in slot.params.values())
            table.add_row(str(i), str(net.coords(i)), slot.spec.kind, _short(cfg), f"{n:,}")
        _console().print(table)


@main.group("bench")
def bench():
    """Benchmarks that write JSON."""


@bench.command("layers")
@click.option("--vs", "vs", type=click.Choice(["torch"]), default=None,
              help="Also time the same modules in PyTorch (needs the `oracle` extra).")
@click.option("--quick", is_flag=True, help="The README shapes at 1/8 of the batch.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the results here as JSON.")
@click.option("--only", multiple=True, help="Benchmark only these configs (repeatable).")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(1))
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(0))
@click.option("--threads", default=None, type=click.IntRange(1),
              help="Numba/BLAS/torch threads (default: all cores).")
@click.option("--backend", type=click.Choice(["cpu", "wgpu"]), default="cpu", show_default=True,
              help="wgpu: time the kinds that have GPU modules on the wgpu adapter.")
def bench_layers(vs, quick, json_path, only, repeats, warmup, threads, backend):
    """Forward and forward+backward time of each layer kind at LOOM's README configs."""
    from . import bench as B
    configs = B.readme_configs(quick)
    if only:
        unknown = sorted(set(only) - {c.name for c in configs})
        if unknown:
            raise click.BadParameter(f"unknown config(s) {unknown}; choose from "
                                     f"{[c.name for c in configs]}", param_hint="--only")
        configs = [c for c in configs if c.name in only]
    if vs == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            raise click.UsageError(
                "--vs torch needs PyTorch: pip install 'loomdist[oracle]'") from None
    console = _console()
    with console.status("benchmarking...") as status:
        def progress(r):
            status.update(f"done {r.name}")
            console.print(_bench_line(r), soft_wrap=True)
        report = B.run(configs, vs_torch=vs == "torch", repeats=repeats, warmup=warmup,
                       threads=threads, progress=progress, backend=backend)
    if json_path:
        B.write_json(report, json_path)
        console.print(f"wrote {json_path}")


@bench.command("train")
@click.option("--vs", "vs", type=click.Choice(["torch"]), default=None,
              help="Also train the same model in PyTorch.")
@click.option("--epochs", default=4, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
@click.option("--threads", default=None, type=click.IntRange(1))
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None)
def bench_train(vs, epochs, batch_size, threads, json_path):
    """Training throughput (samples/s) of the digits model (examples/digits.toml)."""
    import json

    from . import bench_train as BT
    from .bench import write_json
    report = BT.run(epochs, batch_size, vs == "torch", threads)
    click.echo(json.dumps(report, indent=2))
    if json_path:
        write_json(report, json_path)


def _bench_line(r) -> str:
    line = (f"{r.name:<20} b={r.batch:<4} fwd {r.forward_ms:8.2f} fwd+bwd {r.fwd_bwd_ms:8.2f} "
            f"first {r.first_call_ms:7.1f} ms")
    if r.torch_fwd_bwd_ms is not None:
        line += (f" | torch {r.torch_forward_ms:7.2f} / {r.torch_fwd_bwd_ms:7.2f} ms"
                 f" | ratio {r.ratio_fwd_bwd:4.2f}x")
    return line


def _short(cfg: dict) -> str:
    s = ", ".join(f"{k}={v}" for k, v in cfg.items())
    return s if len(s) < 70 else s[:67] + "..."


def _guard(fn):
    """Run fn; turn loomdist errors and missing files into clean click errors (exit 1)."""
    try:
        return fn()
    except (LoomdistError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e


def _register_training():
    from .cli_train import register
    register(main, _console, _guard)


_register_training()
__import__("loomdist.cli_tween").cli_tween.register(main, _console, _guard)


def _register_telemetry():
    from .cli_telemetry import register
    register(main, _console, _guard)


_register_telemetry()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
