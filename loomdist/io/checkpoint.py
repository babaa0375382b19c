"""Atomic checkpoints keyed by grid coordinates: one .npz per cell, manifest written last.

    checkpoints/
      00000120/                  a complete checkpoint (its manifest.json exists)
        cell_0_0.npz             parameters + optimizer slots of cell (0, 0)
        trainer.json             step, epoch, position, histories, optimizer step count
        manifest.json            files and sha256, written last
      .tmp-00000160/             an interrupted write: never read, removed on the next save

A checkpoint directory is renamed into place only after its manifest is written, so a crash
at any point leaves either no checkpoint for that step or a complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import ConfigError

MANIFEST = "manifest.json"


def _before_write(name: str) -> None:
    """Hook called before each file write (tests inject crashes here)."""


def _cells(net) -> dict:
    cells: dict = {}
    for (r, c, lay, name), _ in net.parameters():
        cells.setdefault((r, c), []).append((lay, name))
    return cells


def save_checkpoint(root, step: int, net, optimizer, trainer_state: dict) -> Path:
    """Write checkpoint `step` under root/checkpoints; returns its directory."""
    base = Path(root) / "checkpoints"
    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp, final = base / f".tmp-{step:08d}", base / f"{step:08d}"
    tmp.mkdir()
    files = {}
    slots = optimizer.state["slots"] if optimizer is not None else {}
    for (r, c), entries in _cells(net).items():
        arrays = {}
        for lay, name in entries:
            key = (r, c, lay, name)
            arrays[f"{lay}/{name}"] = net.param(key)
            for k, s in enumerate(slots.get(key, ())):
                arrays[f"{lay}/{name}/slot{k}"] = s
        files[f"cell_{r}_{c}.npz"] = _npz_bytes(arrays)
    state = dict(trainer_state, optimizer_t=optimizer.state["t"] if optimizer else 0)
    files["trainer.json"] = json.dumps(state, indent=1).encode()
    for name, data in files.items():
        _before_write(name)
        _write(tmp / name, data)
    _before_write(MANIFEST)
    digests = {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    manifest = {"step": step, "files": digests}
    _write(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    return final


def _npz_bytes(arrays: dict) -> bytes:
    import io
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def list_checkpoints(root) -> list[Path]:
    """Complete checkpoints (with a manifest), oldest first."""
    base = Path(root) / "checkpoints"
    if not base.is_dir():
        return []
    done = [p for p in base.iterdir() if p.name.isdigit() and (p / MANIFEST).is_file()]
    return sorted(done, key=lambda p: int(p.name))


def latest_checkpoint(root) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def load_checkpoint(path, net, optimizer) -> dict:
    """Restore parameters and optimizer slots into `net`/`optimizer`; returns trainer state.

    Raises ConfigError when the checkpoint is incomplete, corrupt or for another grid.
    """
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"checkpoint {path}: no readable manifest ({e}); it is incomplete") from e
    for name, digest in manifest["files"].items():
        data = (path / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ConfigError(f"checkpoint {path}: {name} does not match its manifest hash; "
                              f"the checkpoint is corrupt, resume from an earlier one")
    for (r, c), entries in _cells(net).items():
        _load_cell(path / f"cell_{r}_{c}.npz", (r, c), entries, net, optimizer)
    state = json.loads((path / "trainer.json").read_text())
    if optimizer is not None:
        optimizer.state["t"] = state.get("optimizer_t", 0)
    return state


def _load_cell(file: Path, rc, entries, net, optimizer) -> None:
    if not file.is_file():
        raise ConfigError(f"checkpoint: {file.name} missing; the checkpoint was written for a "
                          f"different grid")
    with np.load(file) as z:
        for lay, name in entries:
            key = (*rc, lay, name)
            tag = f"{lay}/{name}"
            if tag not in z:
                raise ConfigError(f"checkpoint {file}: no {tag}; different network layout")
            net.param(key)[...] = z[tag]
            slots = [z[f"{tag}/slot{k}"] for k in range(4) if f"{tag}/slot{k}" in z]
            if optimizer is not None and slots:
                optimizer.state["slots"][key] = [s.copy() for s in slots]
