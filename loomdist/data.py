"""Datasets: numpy arrays, .npz, Parquet/Arrow/CSV files, built-in digits, LOOM's tasks.

Everything is validated before training starts; a DataError names the source, the problem
and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

BUILTIN = ("digits", "loom_test16")


@dataclass
class Dataset:
    """x: (n, features) float32; y: (n,) int class labels or (n, outputs) float targets."""

    x: np.ndarray
    y: np.ndarray
    name: str = "data"

    @property
    def is_classification(self) -> bool:
        return self.y.ndim == 1

    def targets(self, outputs: int) -> np.ndarray:
        """Float targets (n, outputs): one-hot for labels."""
        if not self.is_classification:
            return self.y
        return np.eye(outputs, dtype=np.float32)[self.y]

    def split(self, test_fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Seeded stratification-free split into (train, test)."""
        if not 0 < test_fraction < 1:
            raise DataError(f"{self.name}: test_fraction must be in (0, 1) (got {test_fraction})")
        order = np.random.default_rng(seed).permutation(len(self.x))
        k = int(round(len(order) * (1 - test_fraction)))
        a, b = order[:k], order[k:]
        return (Dataset(self.x[a], self.y[a], f"{self.name}[train]"),
                Dataset(self.x[b], self.y[b], f"{self.name}[test]"))


def from_arrays(x, y, name: str = "arrays") -> Dataset:
    """Validate arrays into a Dataset (labels when y is 1-D integer, else float targets)."""
    x = _numeric(x, f"{name}: inputs")
    y_arr = np.asarray(y)
    if y_arr.ndim == 1 and y_arr.dtype.kind in "iub":
        y_arr = y_arr.astype(np.int64)
    else:
        y_arr = _numeric(y_arr, f"{name}: targets")
        if y_arr.ndim == 1:
            y_arr = y_arr[:, None]
    if x.ndim != 2:
        raise DataError(f"{name}: inputs must be 2-D (samples, features), got shape {x.shape}; "
                        f"flatten each sample")
    if len(x) == 0:
        raise DataError(f"{name}: no samples; the dataset is empty")
    if len(x) != len(y_arr):
        raise DataError(f"{name}: {len(x)} inputs but {len(y_arr)} targets; they must pair up")
    if y_arr.dtype == np.int64 and y_arr.min() < 0:
        raise DataError(f"{name}: negative class label {int(y_arr.min())}; labels are 0..K-1")
    return Dataset(x, y_arr, name)


def _numeric(a, where: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{where}: dtype {arr.dtype} is not numeric; convert to float32")
    arr = arr.astype(np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise DataError(f"{where}: {int(bad.sum())} NaN/Inf values (first at index {i}); clean "
                        f"or drop those samples")
    return arr


def check_fits(data: Dataset, in_features: int | None, outputs: int) -> None:
    """Raise DataError when the data does not fit the network (before training starts)."""
    if in_features is not None and data.x.shape[1] != in_features:
        raise DataError(f"{data.name}: samples have {data.x.shape[1]} features, the network's "
                        f"first layer expects {in_features}; reshape the data or fix the "
                        f"first layer's input size")
    if data.is_classification and int(data.y.max()) >= outputs:
        raise DataError(f"{data.name}: label {int(data.y.max())} is out of range for a network "
                        f"with {outputs} outputs (labels must be 0..{outputs - 1}); check the "
                        f"label column or widen the output layer")
    if not data.is_classification and data.y.shape[1] != outputs:
        raise DataError(f"{data.name}: targets have {data.y.shape[1]} values per sample, the "
                        f"network outputs {outputs}; make them match")


def load_data(source, label: str = "label", name: str | None = None) -> Dataset:
    """A Dataset from a built-in name, a file (.npz/.parquet/.arrow/.feather/.csv) or arrays.

    Files: .npz holds `x` and `y` (or `inputs`/`targets`); tables hold a `label` column (or
    the name given) and numeric feature columns.
    """
    if isinstance(source, Dataset):
        return source
    if isinstance(source, tuple):
        return from_arrays(*source, name=name or "arrays")
    if isinstance(source, str) and source in BUILTIN:
        return builtin(source)
    path = Path(source)
    if not path.exists():
        raise DataError(f"data: no file or built-in dataset {str(source)!r}; built-ins are "
                        f"{list(BUILTIN)}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _npz(path)
    if suffix in (".parquet", ".arrow", ".feather", ".ipc", ".csv"):
        return _table(path, label)
    raise DataError(f"data: {path.name} has an unsupported extension; use .npz, .parquet, "
                    f".arrow/.feather or .csv")


def _npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            for xk, yk in (("x", "y"), ("inputs", "targets"), ("X", "y")):
                if {xk, yk} <= keys:
                    return from_arrays(z[xk], z[yk], path.name)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npz ({e})") from e
    raise DataError(f"{path}: expected arrays 'x' and 'y' (or 'inputs'/'targets'), found "
                    f"{sorted(keys)}")


def _table(path: Path, label: str) -> Dataset:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.feather as feather
    import pyarrow.parquet as pq
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path)
        elif path.suffix == ".csv":
            table = pcsv.read_csv(path)
        else:
            table = feather.read_table(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise DataError(f"{path}: cannot read the table ({e})") from e
    if label not in table.column_names:
        raise DataError(f"{path}: no label column {label!r}; columns are {table.column_names} "
                        f"(pass label=...)")
    feats = [c for c in table.column_names if c != label]
    if not feats:
        raise DataError(f"{path}: no feature columns besides {label!r}")
    x = np.column_stack([table[c].to_numpy(zero_copy_only=False) for c in feats])
    return from_arrays(x, table[label].to_numpy(zero_copy_only=False), path.name)


def builtin(name: str) -> Dataset:
    """digits: scikit-learn's 8x8 digits (1797 samples, pixels / 16, NCHW 1x8x8).
    loom_test16: LOOM's Test 16 task (500 samples, 8 features, 3 classes, seeded)."""
    if name == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        return from_arrays(d.data / 16.0, d.target, "digits")
    if name == "loom_test16":
        return loom_test16(8)
    raise DataError(f"data: unknown built-in {name!r}; built-ins are {list(BUILTIN)}")


def loom_test16(n_features: int = 8, n: int = 500, seed: int = 0) -> Dataset:
    """LOOM's generateTrainingData(n, 3): quadrant parity task with 10% label noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, n_features)).astype(np.float32)
    q = (x[:, 0] * x[:, 1] > 0).astype(int) + 2 * (x[:, 2] * x[:, 3] > 0)
    q = np.where(x[:, 4:].sum(axis=1) > 0, (q + 1) % 4, q)
    y = q % 3
    noisy = rng.random(n) < 0.1
    y[noisy] = rng.integers(0, 3, int(noisy.sum()))
    return from_arrays(x, y, "loom_test16")
