"""The text report of jobs/bench_pipeline.py: its table, per-stage lines and hop table, from
the JSON-ready report dict alone (so older reports print too; missing columns show "-")."""

from __future__ import annotations

DEFER = {True: "deferred (one GEMM per mini-batch)", False: "per micro-batch, accumulated"}
MEMORY = {True: "freed memory retained (loomdist.memory)",
          False: "malloc defaults (LOOMDIST_RETAIN_MEMORY=0, or not glibc)"}

HEAD = (f"{'sched':>5} {'K':>2} {'M':>3} {'cpu/act':>8} {'ms/step':>8} {'samples/s':>10} "
        f"{'x1':>6} {'xK1':>6} {'ceil':>5} {'bubble':>7} {'ideal':>6} {'loss':>6}")


def row(p: dict) -> str:
    """One point as a line under HEAD."""
    def f(v, spec):
        return format(v, spec) if v is not None else format("-", spec[:spec.index(".")] + "s")
    cpu = "shared" if p["cpus_per_actor"] is None else f"{p['cpus_per_actor']:g}"
    cpu += "*" if p["shared"] and p["cpus_per_actor"] is not None else ""
    sched = p.get("schedule", "")  # reports before 2026-12-02 have none
    return (f"{sched:>5} {p['stages']:>2} {p['micro']:>3} {cpu:>8} {p['step_ms']:>8.1f} "
            f"{p['samples_per_s']:>10.1f} {f(p.get('speedup'), '>6.2f')} "
            f"{f(p.get('speedup_same_m'), '>6.2f')} {f(p.get('ceiling'), '>5.2f')} "
            f"{f(p['bubble'], '>7.3f')} "
            f"{p['ideal_bubble']:>6.3f} {f(p.get('efficiency_loss'), '>6.3f')}")


def _drift(base: dict) -> str:
    if "step_ms_after" not in base:  # reports written before the second baseline run
        return ""
    runs = base.get("step_ms_runs", [])
    if len(runs) > 2:
        return (f"(mean of {len(runs)} runs around the rounds, {min(runs):.1f}-"
                f"{max(runs):.1f}; x1 per round against the two around it, median shown) ")
    return f"(mean of {base['step_ms_before']:.1f} before, {base['step_ms_after']:.1f} after) "


def _stage_lines(points: list) -> list[str]:
    """Per stage of each pipelined point: busy share, ms per call, where its idle time went,
    minor faults per step."""
    out = []
    for p in points:
        if p["stages"] > 1 and p.get("per_stage"):
            pace = (f"; pace {p['pace']:.3f}, spread {p['spread']:.2f}"
                    if p.get("pace") is not None else "")
            if p.get("stage_ceiling") is not None:
                pace += f"; x1 its stages allow as plain processes {p['stage_ceiling']:.2f}"
            out.append(f"{p.get('schedule', '')} K={p['stages']} M={p['micro']} per stage "
                       f"(busy share of the step, mean ms per call{pace}):")
            out += [f"  stage {s}: busy {st['busy']:.3f}  " + "  ".join(
                f"{op} {v:.1f}" for op, v in st["ms"].items()) + _gap_text(st)
                + _usage_text(p, s) for s, st in enumerate(p["per_stage"])]
    return out


def _usage_text(p: dict, s: int) -> str:
    nan = [float("nan")] * p["stages"]  # reports before these columns
    return (f"  | minor faults/step {p.get('faults_per_step', nan)[s]:.0f}, cpu "
            f"{p.get('cpu_ms_per_step', nan)[s]:.0f} ms/step, preempted "
            f"{p.get('preempted_per_step', nan)[s]:.0f}/step")


def _gap_text(st: dict) -> str:
    if "wait_ms" not in st:  # reports before 2026-12-02's fifth session
        return ""
    return (f"  | wait {st['wait_ms']:.0f}/step, hop {st['hop_ms']:.2f}, overhead "
            f"{st['overhead_ms']:.2f}/call, tail {st['tail_ms']:.0f}")


def table(report: dict) -> str:
    """The whole report as text: header lines, points, per-stage lines, hop table."""
    mach, cfg = report["machine"], report["config"]
    lines = [f"pipeline sweep: {cfg['cells']} cells x {cfg['layers_per_cell']} dense "
             f"{cfg['width']}->{cfg['width']}, batch {cfg['batch']}, {cfg['schedule']}, "
             f"{mach['cores']} cores ({mach['cpu_model']}), ray {mach['ray_version']}",
             f"weight gradients {DEFER[bool(cfg['defer_weight_grads'])]}; "
             f"{report.get('memory', 'memory: not recorded')}; "
             f"x1 = {report['baseline']['step_ms']:.1f} ms/step {_drift(report['baseline'])}"
             f"({report['baselines']['x1']}); xK1: {report['baselines']['xK1']}",
             HEAD] + [row(p) for p in report["points"]]
    lines += ["(* fewer CPUs than asked: K actors share the cluster)"]
    lines += _stage_lines(report["points"]) + ["",
              f"{'M':>3} {'rows':>5} {'KiB':>8} {'hop ms':>8} {'put ms':>8} {'get ms':>8}"]
    lines += [f"{h['micro']:>3} {h['rows']:>5} {h['kib']:>8.1f} {h['hop_ms']:>8.3f} "
              f"{h['put_ms']:>8.3f} {h['get_ms']:>8.3f}" for h in report["hops"]]
    lines.append(f"sweep took {report['elapsed_s']:.0f} s")
    return "\n".join(lines)
