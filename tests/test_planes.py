"""The math plane never imports ray or click; only kernels/gpu imports wgpu (ast walk)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "loomdist"
ORCHESTRATION = {"actors", "driver.py", "cli.py", "cli_train.py", "schedule.py",
                 "cli_telemetry.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _files():
    return [p for p in PKG.rglob("*.py")]


def test_math_plane_imports_no_ray_or_click():
    bad = []
    for p in _files():
        rel = p.relative_to(PKG)
        if rel.parts[0] in ORCHESTRATION:
            continue
        used = _imports(p)
        if "ray" in used or "click" in used:
            bad.append((str(rel), sorted(used & {"ray", "click"})))
    assert not bad


def test_only_gpu_kernels_import_wgpu():
    bad = [str(p.relative_to(PKG)) for p in _files()
           if "wgpu" in _imports(p) and "gpu" not in p.relative_to(PKG).parts]
    assert not bad


def test_walk_sees_the_package():
    assert len(_files()) > 10
