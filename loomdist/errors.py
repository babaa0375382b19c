"""The few exception types loomdist raises; each subclasses a builtin."""


class LoomdistError(Exception):
    """Base class of every loomdist error (catch this to catch them all)."""


class ShapeError(LoomdistError, ValueError):
    """An array has the wrong length or shape for the layer or network it meets."""


class ConfigError(LoomdistError, ValueError):
    """A layer spec, network or run configuration is invalid."""


class ModelFormatError(LoomdistError, ValueError):
    """A model file or string is not a valid LOOM JSON bundle."""


class DataError(LoomdistError, ValueError):
    """Training or evaluation data is missing, malformed or does not fit the network."""


class UnsupportedLayerError(LoomdistError, NotImplementedError):
    """A layer type or feature that loomdist does not implement."""


class CellFailedError(LoomdistError, RuntimeError):
    """A grid cell's actor failed; carries the cell coordinates and the step."""

    def __init__(self, row: int, col: int, step: int, cause: str):
        self.row, self.col, self.step, self.cause = row, col, step, cause
        super().__init__(f"cell ({row}, {col}) failed at step {step}: {cause}")


class LoomFallbackWarning(UserWarning):
    """A layer config does not fit its input and loomdist computes what LOOM silently falls
    back to (a masked softmax whose mask has the wrong length runs as a plain softmax, ...)."""


__all__ = [
    "LoomdistError", "ShapeError", "ConfigError", "ModelFormatError", "DataError",
    "UnsupportedLayerError", "CellFailedError", "LoomFallbackWarning",
]
