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

__all__ = [
    # telemetry
    "blueprint", "ModelTelemetry", "LayerTelemetry", "LayerEvent", "LayerStats",
    "compute_stats", "LayerObserver", "ConsoleObserver", "RecordingObserver",
    "ChannelObserver", "HTTPObserver", "ActivityRecorder", "read_recording", "replay",
]
