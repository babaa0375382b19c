"""Console tables in the layout of LOOM's Test 16-19 programs (box drawing, Go formats)."""

from __future__ import annotations

import numpy as np

LABELS = {"NormalBP": "NormalBP", "StepBP": "Step+BP", "Tween": "Tween",
          "TweenChain": "TweenChain", "StepTweenChain": "StepTweenChain",
          "NormTween": "NormTween", "StepTween": "StepTween", "BatchTween": "BatchTween",
          "StepBatch": "StepBatch"}


def _cells(acc) -> str:
    return "".join(f" {a:2.0f}%║" for a in acc)


def timeline(title: str, runs, n_windows: int) -> list[str]:
    """ACCURACY OVER TIME table: one row per run, one cell per 1 s window."""
    bar = "═══════════════════"
    head = "║ Mode              ║" + "".join(f"{w + 1:2d}s ║" for w in range(n_windows))
    lines = [f"╔{bar}{'═════' * n_windows}╗", f"║ {title:<{18 + 5 * n_windows - 2}} ║",
             "╠" + bar + "╦════" * n_windows + "╣", head,
             "╠" + bar + "╬════" * n_windows + "╣"]
    for r in runs:
        lines.append(f"║ {LABELS.get(r.mode_name, r.mode_name):<17} ║" + _cells(r.accuracy))
    lines.append("╚" + bar + "╩════" * n_windows + "╝")
    return lines


def adaptation_summary(title: str, runs, over_all: bool) -> list[str]:
    """ADAPTATION SUMMARY: total outputs, before->after each change, average accuracy."""
    lines = ["╔" + "═" * 99 + "╗", f"║ {title:<97} ║",
             "║ Mode              ║ Total Outputs   ║ 1st Change Adapt      ║ 2nd Change Adapt  "
             "    ║ Avg Acc      ║"]
    for r in runs:
        parts = []
        for c in r.task_changes[:2]:
            rec = c["recovery_windows"]
            delay = f"{rec}s" if rec >= 0 else "N/A"
            parts.append(f"{c['pre_accuracy']:5.0f}%→{c['post_accuracy']:5.0f}% ({delay:>3})")
        while len(parts) < 2:
            parts.append("N/A".ljust(21))
        lines.append(f"║ {LABELS.get(r.mode_name, r.mode_name):<17} ║ {r.total_outputs:13d}   "
                     f"║ {parts[0]:<21} ║ {parts[1]:<21} ║   "
                     f"{r.avg_accuracy(over_all):5.1f}%    ║")
    lines.append("╚" + "═" * 99 + "╝")
    return lines


def comparison(title: str, rows: list[dict]) -> list[str]:
    """Side by side with LOOM's published numbers: ours (+- std) | LOOM (+- std) | delta."""
    lines = [f"── {title} " + "─" * max(0, 86 - len(title)),
             f"{'config':<11} {'mode':<15} {'metric':<16} {'ours':>16} {'LOOM':>16} "
             f"{'delta':>7} {'runs':>5}"]
    for r in rows:
        ours = _pm(r["ours"], r.get("ours_std"))
        loom = _pm(r["loom"], r.get("loom_std"))
        delta = ("" if r["loom"] is None or r["ours"] is None
                 else f"{r['ours'] - r['loom']:+7.1f}")
        lines.append(f"{r['config']:<11} {LABELS.get(r['mode'], r['mode']):<15} "
                     f"{r['metric']:<16} {ours:>16} {loom:>16} {delta:>7} {r['runs']:>5}")
    return lines


def _pm(v, std) -> str:
    if v is None:
        return "—"
    return f"{v:.1f}" if std is None else f"{v:.1f} (±{std:.1f})"


def sparta_table(stats: dict) -> list[str]:
    """Test 19's final table: NormalBP, StepBP, STC mean (± population std), best mode."""
    lines = ["╔" + "═" * 92 + "╗",
             f"║ {'Config':<12}║ {'NormalBP':<18}║ {'StepBP':<18}║ {'StepTweenChain':<18}║ "
             f"{'Best':<16}║"]
    for config, modes in stats.items():
        cells = [_pm(*modes[m]) if m in modes else "—"
                 for m in ("NormalBP", "StepBP", "StepTweenChain")]
        best = max(modes, key=lambda m: modes[m][0])
        lines.append(f"║ {config:<12}║ {cells[0]:<18}║ {cells[1]:<18}║ {cells[2]:<18}║ "
                     f"{LABELS.get(best, best):<16}║")
    lines.append("╚" + "═" * 92 + "╝")
    return lines


def test16_summary(title: str, results) -> list[str]:
    """Per network: accuracy and time-to-90 % of each mode, and LOOM's DetermineBest."""
    lines = [f"── {title} " + "─" * 60,
             f"{'mode':<15} {'accuracy':>9} {'loss':>9} {'steps':>9} {'t->90%':>8}"]
    for r in results:
        t90 = "N/A" if r.time_to_target_s is None else f"{r.time_to_target_s:.1f}s"
        loss = "nan" if r.loss is None or np.isnan(r.loss) else f"{r.loss:.4f}"
        lines.append(f"{LABELS.get(r.mode, r.mode):<15} {r.accuracy:8.1f}% {loss:>9} "
                     f"{r.steps:>9d} {t90:>8}")
    return lines
