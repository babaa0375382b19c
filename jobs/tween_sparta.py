"""Test 19 SPARTA: many seeds per (config, mode) of LOOM's adaptation benchmark, mean +- std.

    python jobs/tween_sparta.py --quick --json docs/benchmarks/tween-sparta-quick.json
    python jobs/tween_sparta.py --json bench-results/tween-sparta.json          # full

Full = LOOM's 15 configs (Dense, Conv2D, RNN, LSTM, Attn x depths 3, 5, 9) x the modes of
LOOM's SPARTA table (NormalBP, StepBP, StepTweenChain; --modes all adds Tween, TweenChain) x
--seeds seeds (default 10; LOOM ran 100), under the deterministic clock at LOOM's Test 17
rate (5200 outputs per 1 s window, 52 000 outputs per run), one process per core. Per (config,
mode) the JSON has mean / population std / min / max / median of the per-run average accuracy
and the post-change accuracies, the mean window accuracies, LOOM's published mean (std) next
to ours, and the measured outputs/s.

Runs split over several invocations (--nets / --depths, other machines) are combined with

    python jobs/tween_sparta.py --merge a.json b.json ... --json merged.json

which takes per (config, mode) the summary of the last file that has >= --seeds runs of it
and records that file's command and machine next to it.

Cost: a Dense-3L run (52 000 outputs) takes ~10 s of CPU on the 2-core VM; Attn, LSTM and
9-layer configs several times that: one seed of all 45 (config, mode) runs did not finish in
15 min on 2 workers, so the full run (450 runs) needs >= 20 min on 16 cores. Split it by
--nets to stay under a time limit (the JSON is rewritten after every run, so a killed run
keeps what finished), or lower --outputs-per-sec (1000: ~1/5 of the work, but fewer updates
per window than LOOM, so not LOOM's dynamics).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from loomdist.bench import machine_info, write_json
from loomdist.tween.assess import published as pub
from loomdist.tween.assess.adapt import PROTOCOLS, run_config
from loomdist.tween.assess.clock import LOOM_T17_OUTPUTS_PER_SEC, DeterministicClock
from loomdist.tween.modes import ADAPT_MODES

NETS = ("Dense", "Conv2D", "RNN", "LSTM", "Attn")
TABLE_MODES = ("NormalBP", "StepBP", "StepTweenChain")


def one_run(task: tuple) -> dict:
    """Worker: one (net, depth, mode, seed) run; a small dict back to the parent."""
    kind, depth, mode, seed, rate = task
    t0 = time.process_time()
    r = run_config(kind, depth, mode, PROTOCOLS[19], DeterministicClock(rate), seed)
    changes = r.task_changes + [{}] * 2
    return {"config": r.model_name, "mode": r.mode_name, "seed": seed,
            "avg_accuracy": r.avg_accuracy(False), "windows": r.accuracy.tolist(),
            "change1_post": changes[0].get("post_accuracy"),
            "change2_post": changes[1].get("post_accuracy"),
            "total_outputs": r.total_outputs, "cpu_s": time.process_time() - t0,
            "outputs_per_sec": r.outputs_per_sec}


def _init_worker() -> None:
    os.environ.setdefault("LOOMDIST_THREADS", "1")
    from loomdist.threads import set_threads
    set_threads(1)


def stats(values) -> dict:
    v = np.asarray([x for x in values if x is not None], np.float64)
    if v.size == 0:
        return {}
    return {"mean": float(v.mean()), "std_dev": float(v.std()), "min": float(v.min()),
            "max": float(v.max()), "median": float(np.median(v)), "n": int(v.size)}


def summarize(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(r["config"], {}).setdefault(r["mode"], []).append(r)
    summary = {}
    for config, modes in out.items():
        summary[config] = {}
        for mode, rs in modes.items():
            loom = pub.TEST19_MEAN_STD.get(config, {}).get(mode)
            summary[config][mode] = {
                "avg_accuracy": stats(r["avg_accuracy"] for r in rs),
                "change1_accuracy": stats(r["change1_post"] for r in rs),
                "change2_accuracy": stats(r["change2_post"] for r in rs),
                "window_accuracies": np.mean([r["windows"] for r in rs], axis=0).tolist(),
                "loom_mean_std": loom,
                "outputs_per_sec_mean": float(np.mean([r["outputs_per_sec"] for r in rs])),
                "cpu_s_mean": float(np.mean([r["cpu_s"] for r in rs]))}
    return summary


def print_table(summary: dict) -> None:
    print(f"{'config':<11} {'mode':<15} {'ours mean (±std)':>18} {'LOOM mean (±std)':>18} "
          f"{'runs':>5} {'out/s':>8}")
    for config, modes in summary.items():
        for mode, s in modes.items():
            a, loom = s["avg_accuracy"], s["loom_mean_std"]
            ref = "—" if loom is None else f"{loom[0]:.1f} (±{loom[1]:.1f})"
            print(f"{config:<11} {mode:<15} {a['mean']:>10.1f} (±{a['std_dev']:.1f}) "
                  f"{ref:>18} {a['n']:>5} {s['outputs_per_sec_mean']:>8.0f}")


def _document(a, rows: list, planned: int, wall: float) -> dict:
    return {"benchmark": "tween_sparta (LOOM Test 19)", "command": " ".join(sys.argv),
            "clock": "deterministic", "outputs_per_sec": a.outputs_per_sec, "seeds": a.seeds,
            "workers": a.workers, "wall_s": wall, "runs_done": len(rows),
            "runs_planned": planned, "machine": machine_info(),
            "loom_source": "spec 5.5 (docs/step_tween_assessment.md, 100 runs)",
            "summary": summarize(rows)}


def merge(paths: list, seeds: int) -> dict:
    """One document from several: per (config, mode) the last file's summary with >= seeds
    runs, in LOOM's table order, with its source file, command and machine."""
    found: dict = {}
    for path in paths:
        doc = json.loads(Path(path).read_text())
        for config, modes in doc.get("summary", {}).items():
            for mode, s in modes.items():
                if s.get("avg_accuracy", {}).get("n", 0) >= seeds:
                    found[(config, mode)] = (s, {"file": Path(path).name,
                                                 "command": doc.get("command"),
                                                 "machine": doc.get("machine")})
    order = [f"{n}-{d}L" for n in NETS for d in (3, 5, 9)]
    rank = {c: i for i, c in enumerate(order)}
    summary: dict = {}
    sources: dict = {}
    for (config, mode) in sorted(found, key=lambda k: (rank.get(k[0], len(rank)), k[0])):
        s, src = found[(config, mode)]
        summary.setdefault(config, {})[mode] = s
        sources.setdefault(config, {})[mode] = src
    missing = [f"{c} {m}" for c in order for m in TABLE_MODES if (c, m) not in found]
    return {"benchmark": "tween_sparta (LOOM Test 19), merged", "clock": "deterministic",
            "seeds": seeds, "merged_from": [Path(p).name for p in paths],
            "missing": missing, "loom_source": "spec 5.5 (docs/step_tween_assessment.md, "
            "100 runs)", "summary": summary, "sources": sources}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--depths", default="3,5,9")
    p.add_argument("--modes", default=",".join(TABLE_MODES), help="comma list or 'all'")
    p.add_argument("--outputs-per-sec", type=int, default=LOOM_T17_OUTPUTS_PER_SEC)
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--quick", action="store_true",
                   help="Dense-3L and Conv2D-3L, 3 seeds, 300 outputs/s (a smoke run)")
    p.add_argument("--json", default=None)
    p.add_argument("--merge", nargs="+", metavar="JSON",
                   help="combine these result files (no runs) into --json")
    a = p.parse_args(argv)
    if a.quick:
        a.nets, a.depths, a.seeds, a.outputs_per_sec = "Dense,Conv2D", "3", 3, 300
    a.modes = ",".join(ADAPT_MODES) if a.modes == "all" else a.modes
    return a


def main(argv=None) -> int:
    a = parse(argv)
    if a.merge:
        doc = merge(a.merge, a.seeds)
        print_table(doc["summary"])
        print(f"missing (config, mode) with >= {a.seeds} runs: "
              f"{', '.join(doc['missing']) or 'none'}")
        if a.json:
            write_json(doc, a.json)
        return 0 if not doc["missing"] else 1
    tasks = [(n, int(d), m, a.seed + k, a.outputs_per_sec) for n in a.nets.split(",")
             for d in a.depths.split(",") for m in a.modes.split(",") for k in range(a.seeds)]
    t0 = time.perf_counter()
    rows: list = []
    with ProcessPoolExecutor(max_workers=a.workers, initializer=_init_worker) as ex:
        for row in ex.map(one_run, tasks, chunksize=1):
            rows.append(row)
            if a.json:  # partial results survive a time limit
                write_json(_document(a, rows, len(tasks), time.perf_counter() - t0), a.json)
    wall = time.perf_counter() - t0
    print_table(summarize(rows))
    print(f"{len(tasks)} runs in {wall:.1f} s on {a.workers} workers")
    if a.json:
        write_json(_document(a, rows, len(tasks), wall), a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
