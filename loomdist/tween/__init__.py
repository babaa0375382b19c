"""Step mode, neural tweening and telemetry (pure math plane: no ray, no click)."""

from .blueprint import LayerTelemetry, ModelTelemetry, blueprint
from .events import LayerEvent, LayerStats, compute_stats
from .observers import (
    ChannelObserver,
    ConsoleObserver,
    HTTPObserver,
    LayerObserver,
    RecordingObserver,
)
from .recorder import ActivityRecorder, read_recording, replay
from .step import StepState, TargetDelay
from .stepping import SteppingConfig, SteppingResult, train_with_stepping

__all__ = [
    "StepState", "TargetDelay", "SteppingConfig", "SteppingResult", "train_with_stepping",
    # telemetry
    "blueprint", "ModelTelemetry", "LayerTelemetry", "LayerEvent", "LayerStats",
    "compute_stats", "LayerObserver", "ConsoleObserver", "RecordingObserver",
    "ChannelObserver", "HTTPObserver", "ActivityRecorder", "read_recording", "replay",
]
