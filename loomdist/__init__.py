"""loomdist: exact, fast, distributed LOOM-style grid neural networks."""

from .errors import (
                     CellFailedError,
                     ConfigError,
                     DataError,
                     LoomdistError,
                     LoomFallbackWarning,
                     ModelFormatError,
                     ShapeError,
                     UnsupportedLayerError,
)
from .io.loom_json import (
                     bundle_to_string,
                     load_bundle,
                     load_bundle_from_string,
                     load_model,
                     load_model_from_string,
                     save_bundle,
)
from .layers import LAYERS
from .network import Network
from .train import Trainer
from .train_config import TrainingConfig, TrainingResult

__version__ = "0.1.0"

__all__ = [
    "Network", "LAYERS", "load_model", "load_model_from_string", "load_bundle",
    "load_bundle_from_string", "save_bundle", "bundle_to_string",
    "Trainer", "TrainingConfig", "TrainingResult",
    "LoomdistError", "ShapeError", "ConfigError", "ModelFormatError", "DataError",
    "UnsupportedLayerError", "CellFailedError", "LoomFallbackWarning", "__version__",
]
