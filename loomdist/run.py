"""A training run end to end: config file -> network + data -> Trainer -> run directory.

    runs/<run-id>/
      config.json          resolved configuration
      history.parquet      one row per epoch: loss, lr, grad norm, validation, time
      predictions.parquet  one row per evaluated sample and evaluation
      buckets.parquet      deviation-bucket counts per evaluation
      checkpoints/<step>/  per-cell weights + optimizer state, manifest last
      model.json           final model in LOOM's JSON bundle format
      plots/*.png          loss curve, deviation distribution, bucket heatmap
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import BUILTIN, Dataset, check_fits, load_data
from .errors import ConfigError, DataError
from .io.loom_json import write_atomic
from .train import Trainer
from .train_config import TrainingConfig, TrainingResult


@dataclass(frozen=True)
class RunConfig:
    """network: a LOOM network definition (grid fields + "layers" cfgs, optional "seed") or
    {"model": path, "id": model_id}; data: {"source", "test_fraction", "label", "test"}."""

    network: dict
    data: dict
    training: TrainingConfig = field(default_factory=TrainingConfig)
    run_dir: str = "runs"
    run_id: str = ""

    @classmethod
    def from_file(cls, path, overrides: dict | None = None) -> RunConfig:
        """Read TOML or JSON; `overrides` replace training fields (CLI options)."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"train: no config file at {p}; pass the path of a .toml or "
                              f".json config (see examples/digits.toml)")
        text = p.read_text()
        try:
            if p.suffix == ".toml":
                try:
                    import tomllib
                except ImportError:  # Python 3.10
                    import tomli as tomllib
                raw = tomllib.loads(text)
            else:
                raw = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"{p}: cannot parse ({e}); fix the file's syntax") from e
        return cls.from_dict(raw, overrides, base=p.parent)

    @classmethod
    def from_dict(cls, raw: dict, overrides: dict | None = None, base: Path = Path(".")):
        problems = [f"missing [{k}]" for k in ("network", "data") if k not in raw]
        problems += [f"unknown [{k}]" for k in sorted(set(raw) - {"network", "data",
                                                                   "training", "run"})]
        if problems:
            raise ConfigError(f"config: {', '.join(problems)}; a config needs [network] and "
                              f"[data] tables (optional [training], [run]), see "
                              f"examples/digits.toml")
        training = TrainingConfig.from_dict({**raw.get("training", {}), **(overrides or {})})
        net = dict(raw["network"])
        if "model" in net:
            net["model"] = str((base / net["model"]).resolve())
        data = dict(raw["data"])
        if "source" in data and str(data["source"]) not in BUILTIN:
            data["source"] = str((base / data["source"]).resolve())
        run = raw.get("run", {})
        return cls(net, data, training, run.get("dir", "runs"), run.get("id", ""))

    def to_dict(self) -> dict:
        return {"network": self.network, "data": self.data, "training": self.training.to_dict(),
                "run": {"dir": self.run_dir, "id": self.run_id}}


def build_network(spec: dict):
    """A Network from a LOOM network definition, or loaded from {"model": path, "id": ...}."""
    from .io.loom_json import load_model
    from .io.loom_parse import spec_from_config
    from .network import Network
    if "model" in spec:
        return load_model(spec["model"], spec.get("id", "model"))
    layers = spec.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConfigError("network: needs a non-empty 'layers' list of LOOM layer configs, or "
                          "model = 'path.json'")
    grid = [spec.get(k, d) for k, d in (("grid_rows", 1), ("grid_cols", 1),
                                        ("layers_per_cell", len(layers)))]
    net = Network(0, *grid, batch_size=spec.get("batch_size", 1))
    if len(layers) != net.total_layers:
        raise ConfigError(f"network: {len(layers)} layers for a {grid[0]}x{grid[1]}x{grid[2]} "
                          f"grid; give exactly {net.total_layers}")
    rng = np.random.default_rng(spec.get("seed", 0))
    for i, lc in enumerate(layers):
        net.set_layer(*net.coords(i), spec_from_config(lc, f"network.layers[{i}]"), rng=rng)
    return net


def load_split(data: dict) -> tuple[Dataset, Dataset]:
    """(train, test) from the data table: a separate `test` source or a seeded split."""
    train = load_data(data.get("source", ""), label=data.get("label", "label"))
    if "test" in data:
        return train, load_data(data["test"], label=data.get("label", "label"))
    return train.split(float(data.get("test_fraction", 0.2)), int(data.get("split_seed", 0)))


@dataclass
class RunResult:
    run_dir: Path
    result: TrainingResult
    test_accuracy: float | None
    test_score: float
    seconds: float


def run_training(cfg: RunConfig, resume: bool = False, on_step=None,
                 ray_options=None) -> RunResult:
    """Train as configured, writing the run directory; returns where and how well.

    ray_options: a driver.RayOptions to train on Ray actors (None: this process)."""
    from . import runlog
    t0 = time.perf_counter()
    net = build_network(cfg.network)
    train, test = load_split(cfg.data)
    outputs = net.out_features(train.x.shape[1])
    check_fits(train, net.in_features(), outputs)
    check_fits(test, net.in_features(), outputs)
    run_id = cfg.run_id or time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(cfg.run_dir) / run_id
    if run_dir.exists() and not resume and any(run_dir.iterdir()):
        raise ConfigError(f"train: run directory {run_dir} exists; pass --resume to continue "
                          f"it or choose another --run-id")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2).encode())
    log = runlog.RunLog(run_dir, run_id, net, test, cfg.training)
    if ray_options is None:
        trainer = Trainer(net, cfg.training, run_dir, on_step=on_step, on_epoch=log.on_epoch)
        result = trainer.fit(train.x, train.targets(outputs), resume=resume)
    else:
        result = _fit_on_ray(ray_options, net, cfg, train, outputs, resume,
                             dict(run_dir=run_dir, on_step=on_step, on_epoch=log.on_epoch))
    log.finish(result)
    net.save_model(run_dir / "model.json", run_id)
    return RunResult(run_dir, result, log.last_accuracy, log.last_score,
                     time.perf_counter() - t0)


def _fit_on_ray(options, net, cfg, train, outputs, resume, kw):
    with options.trainer(net, cfg.training, **kw) as trainer:
        return trainer.fit(train.x, train.targets(outputs), resume=resume)


__all__ = ["RunConfig", "RunResult", "run_training", "build_network", "load_split",
           "DataError"]
