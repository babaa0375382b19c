"""Atomic checkpoints keyed by grid coordinates: one .npz per cell, manifest written last.

    checkpoints/
      00000120/                  a complete checkpoint (its manifest.json exists)
        cell_0_0.npz             parameters + optimizer slots of cell (0, 0)
        trainer.json             step, epoch, position, histories, optimizer step count
        manifest.json            files and sha256, written last
      .tmp-00000160/             an interrupted write: never read, removed on the next save

A checkpoint directory is renamed into place only after its manifest is written, so a crash
at any point leaves either no checkpoint for that step or a complete one. Cell files are
written by whoever owns the cell (this process, or the Ray actors of driver.py), so the
pieces are public: `begin_checkpoint`, `write_cell`, `finish_checkpoint`; and for loading,
`verify_checkpoint`, `read_cell`, `read_trainer_state`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import ConfigError

MANIFEST = "manifest.json"
TRAINER = "trainer.json"
MAX_SLOTS = 4


def _before_write(name: str) -> None:
    """Hook called before each file write (tests inject crashes here)."""


def _cells(net) -> dict:
    cells: dict = {}
    for (r, c, lay, name), _ in net.parameters():
        cells.setdefault((r, c), []).append((lay, name))
    return cells


def cell_file(rc) -> str:
    """File name of cell (row, col) inside a checkpoint directory."""
    return f"cell_{rc[0]}_{rc[1]}.npz"


def save_checkpoint(root, step: int, net, optimizer, trainer_state: dict) -> Path:
    """Write checkpoint `step` under root/checkpoints; returns its directory."""
    tmp, final = begin_checkpoint(root, step)
    slots = optimizer.state["slots"] if optimizer is not None else {}
    digests = {}
    for (r, c), entries in _cells(net).items():
        state = {(lay, name): (net.param((r, c, lay, name)), slots.get((r, c, lay, name), ()))
                 for lay, name in entries}
        digests.update(write_cell(tmp, (r, c), state))
    t = optimizer.state["t"] if optimizer else 0
    return finish_checkpoint(tmp, final, step, digests, dict(trainer_state, optimizer_t=t))


def begin_checkpoint(root, step: int) -> tuple[Path, Path]:
    """Remove interrupted writes, make the temporary directory of checkpoint `step`.

    Returns (temporary directory to write cell files into, final directory)."""
    base = Path(root) / "checkpoints"
    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp, final = base / f".tmp-{step:08d}", base / f"{step:08d}"
    tmp.mkdir()
    return tmp, final


def write_cell(directory, rc, state: dict) -> dict:
    """Write cell (row, col)'s file into `directory`.

    state: {(layer, name): (parameter, [optimizer slots])}. Returns {file name: sha256}
    ({} when the cell has no parameters)."""
    arrays = {}
    for (lay, name), (w, slots) in state.items():
        arrays[f"{lay}/{name}"] = w
        for k, s in enumerate(slots):
            arrays[f"{lay}/{name}/slot{k}"] = s
    if not arrays:
        return {}
    data, name = npz_bytes(arrays), cell_file(rc)
    _before_write(name)
    write_bytes(Path(directory) / name, data)
    return {name: hashlib.sha256(data).hexdigest()}


def finish_checkpoint(tmp: Path, final: Path, step: int, digests: dict, state: dict) -> Path:
    """Write trainer.json and the manifest (last), then rename `tmp` to `final`."""
    data = json.dumps(state, indent=1).encode()
    _before_write(TRAINER)
    write_bytes(tmp / TRAINER, data)
    files = dict(digests, **{TRAINER: hashlib.sha256(data).hexdigest()})
    _before_write(MANIFEST)
    write_bytes(tmp / MANIFEST, json.dumps({"step": step, "files": files}, indent=1).encode())
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    return final


def npz_bytes(arrays: dict) -> bytes:
    """{name: array} as the bytes of an .npz file (uncompressed)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` and fsync it (inside a temporary checkpoint directory)."""
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
    verify_checkpoint(path)
    for rc, entries in _cells(net).items():
        for (lay, name), (w, slots) in read_cell(path, rc, entries).items():
            net.param((*rc, lay, name))[...] = w
            if optimizer is not None and slots:
                optimizer.state["slots"][(*rc, lay, name)] = slots
    state = read_trainer_state(path)
    if optimizer is not None:
        optimizer.state["t"] = state.get("optimizer_t", 0)
    return state


def verify_checkpoint(path) -> dict:
    """Check that every file of checkpoint `path` matches its manifest; returns the manifest.

    Raises ConfigError when the manifest is missing or unreadable, or a file is corrupt."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"checkpoint {path}: no readable manifest ({e}); it is incomplete") from e
    for name, digest in manifest["files"].items():
        try:
            data = (path / name).read_bytes()
        except OSError as e:
            raise ConfigError(f"checkpoint {path}: cannot read {name} ({e}); the checkpoint is "
                              f"incomplete, resume from an earlier one") from e
        if hashlib.sha256(data).hexdigest() != digest:
            raise ConfigError(f"checkpoint {path}: {name} does not match its manifest hash; "
                              f"the checkpoint is corrupt, resume from an earlier one")
    return manifest


def read_trainer_state(path) -> dict:
    """trainer.json of checkpoint `path` (step, epoch, batch, loss_sum, history, ...)."""
    return json.loads((Path(path) / TRAINER).read_text())


def read_cell(path, rc, entries) -> dict:
    """{(layer, name): (parameter, [optimizer slots])} of cell `rc` for `entries`
    [(layer, name)] from checkpoint `path` (fresh, writable arrays).

    Raises ConfigError when the file or an entry is missing (a different grid or layout)."""
    file = Path(path) / cell_file(rc)
    if not file.is_file():
        raise ConfigError(f"checkpoint: {file.name} missing; the checkpoint was written for a "
                          f"different grid")
    out = {}
    with np.load(file) as z:
        for lay, name in entries:
            tag = f"{lay}/{name}"
            if tag not in z:
                raise ConfigError(f"checkpoint {file}: no {tag}; different network layout")
            out[(lay, name)] = (z[tag], [z[f"{tag}/slot{k}"] for k in range(MAX_SLOTS)
                                         if f"{tag}/slot{k}" in z])
    return out
