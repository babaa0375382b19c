"""`loomdist tween assess`: LOOM's Test 16-19 benchmark protocols (loomdist.tween.assess)."""

from __future__ import annotations

import click

from .tween.assess.clock import CLOCKS, LOOM_T17_OUTPUTS_PER_SEC
from .tween.assess.t16 import DEFAULT_OPS


def _csv(value: str | None, cast=str) -> tuple:
    return tuple(cast(v.strip()) for v in value.split(",") if v.strip()) if value else ()


def register(main, console, guard) -> None:
    """Add the `tween` group to the main CLI."""

    @main.group("tween")
    def tween_group():
        """Neural tweening: LOOM's step/tween modes and benchmark protocols."""

    @tween_group.command("assess")
    @click.option("--test", "test", type=click.Choice(["16", "17", "18", "19"]), required=True,
                  help="LOOM's benchmark: 16 seven modes, 17 adaptation, 18 architectures, "
                  "19 SPARTA (many seeds).")
    @click.option("--clock", type=click.Choice(CLOCKS), default="deterministic",
                  show_default=True, help="deterministic: fixed outputs per window (seeded, "
                  "repeatable); wall: wall-clock windows as LOOM.")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--out", type=click.Path(file_okay=False), default=None,
                  help="Directory for *.parquet, summary.json and accuracy.png.")
    @click.option("--outputs-per-sec", type=int, default=LOOM_T17_OUTPUTS_PER_SEC,
                  show_default=True, help="Deterministic clock rate (LOOM's Test 17 STC).")
    @click.option("--modes", default=None, help="Comma list of modes (default: the test's).")
    @click.option("--nets", default=None, help="Comma list of networks (Tests 16/18/19).")
    @click.option("--depths", default=None, help="Comma list of depths (Tests 16/18/19).")
    @click.option("--runs", type=int, default=10, show_default=True,
                  help="Test 19: seeds per (config, mode).")
    @click.option("--ops", type=int, default=DEFAULT_OPS, show_default=True,
                  help="Test 16 deterministic budget: sample operations per mode.")
    def assess_cmd(test, clock, seed, out, outputs_per_sec, modes, nets, depths, runs, ops):
        """Run one of LOOM's Tests 16-19 and compare with LOOM's published numbers."""
        from .tween.assess.run import AssessConfig, assess
        cfg = guard(lambda: AssessConfig(int(test), clock, seed, out, outputs_per_sec,
                                         _csv(modes), _csv(nets), _csv(depths, int), runs,
                                         ops))
        guard(lambda: assess(cfg, log=click.echo))
