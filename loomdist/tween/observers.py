"""LOOM's layer observers (nn/observer.go): console, recording, channel and HTTP.

An observer is any object with `on_forward(event)` and `on_backward(event)` (LayerObserver);
attach it with `net.attach_observer(obs, layers=None, model_id="")`.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError, ModelFormatError
from ..io import gojson
from .events import LayerEvent

RECORD_VALUES = 20  # RecordingObserver keeps the first 20 Input / Output values
HTTP_TIMEOUT_S = 0.1  # LOOM's HTTPObserver client timeout


@runtime_checkable
class LayerObserver(Protocol):
    """Receives LOOM layer events (LOOM's LayerObserver interface)."""

    def on_forward(self, event: LayerEvent) -> None: ...

    def on_backward(self, event: LayerEvent) -> None: ...


def attach(net, observer, layers=None, model_id: str = "") -> None:
    """Add `observer` to `net` for `layers` (None = every layer).

    Raises:
        ConfigError: the observer lacks on_forward/on_backward, or a layer is outside the grid.
    """
    if not isinstance(observer, LayerObserver):
        raise ConfigError(f"attach_observer: {type(observer).__name__} has no on_forward / "
                          f"on_backward; pass a LayerObserver (e.g. ConsoleObserver())")
    picked = None if layers is None else frozenset(_index(net, x) for x in layers)
    net._observers = [*net._observers, (observer, picked, str(model_id))]


def _index(net, layer) -> int:
    if isinstance(layer, tuple):
        return net.index(*layer)
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if 0 <= layer < net.total_layers:
            return int(layer)
    raise ConfigError(f"attach_observer: layer {layer!r} is outside the grid "
                      f"({net.total_layers} layers); pass 0 <= index < {net.total_layers} or "
                      f"a (row, col, layer) tuple")


def go_value(v) -> str:
    """Go's %v of one float32: shortest digits, %e form when the exponent is < -4 or >= 6."""
    x = np.float32(v)
    if not np.isfinite(x):
        return "NaN" if np.isnan(x) else ("+Inf" if x > 0 else "-Inf")
    sci = np.format_float_scientific(x, unique=True, trim="-")
    mant, exp = sci.split("e")
    e = int(exp)
    if e < -4 or e >= 6:
        return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    return np.format_float_positional(x, unique=True, trim="-")


class ConsoleObserver:
    """LOOM's ConsoleObserver: one line per event; Verbose adds the output (<= 20 values)."""

    def __init__(self, verbose: bool = False, stream=None):
        self.verbose, self.stream = verbose, stream

    def _print(self, text: str) -> None:
        (self.stream or sys.stdout).write(text)

    @staticmethod
    def _head(event: LayerEvent, tag: str) -> str:
        prefix = f"[{event.model_id}] " if event.model_id else ""
        return (f"{prefix}[{tag}] Grid[{event.grid_row},{event.grid_col},{event.cell_layer}] "
                f"({event.stats.layer_type}): ")

    def on_forward(self, event: LayerEvent) -> None:
        s = event.stats
        self._print(self._head(event, "FWD") + f"avg={s.avg_activation:.4f} "
                    f"max={s.max_activation:.4f} active={s.active_neurons}/{s.total_neurons}\n")
        if self.verbose and event.output is not None and len(event.output) <= 20:
            self._print("       Output: [" + " ".join(go_value(v) for v in event.output) + "]\n")

    def on_backward(self, event: LayerEvent) -> None:
        s = event.stats
        self._print(self._head(event, "BWD") + f"grad_avg={s.avg_activation:.4f} "
                    f"grad_max={s.max_activation:.4f}\n")


class RecordingObserver:
    """LOOM's RecordingObserver: every event, Input/Output cut to their first 20 values."""

    def __init__(self, model_id: str = ""):
        self.model_id = model_id
        self.reset()

    def reset(self) -> None:
        """Clear the events and restart the clock."""
        self.events: list[LayerEvent] = []
        self.start, self._t0 = datetime.now().astimezone(), time.monotonic()

    def _record(self, event: LayerEvent) -> None:
        cut = [None if a is None else np.array(a[:RECORD_VALUES], np.float32)
               for a in (event.input, event.output)]
        self.events.append(replace(event, input=cut[0], output=cut[1]))

    on_forward = on_backward = _record

    def get_recording(self) -> dict:
        """LOOM's RecordedActivity: model_id, recorded_at, duration_seconds, total_events,
        events (JSON-ready dict; see `to_json`)."""
        return {"model_id": self.model_id, "recorded_at": rfc3339(self.start),
                "duration_seconds": time.monotonic() - self._t0,
                "total_events": len(self.events), "events": [e.to_dict() for e in self.events]}

    def to_json(self, indent: bool = True) -> str:
        """The recording as Go's MarshalIndent (json.Marshal with indent=False) writes it.

        Raises:
            ConfigError: an event holds NaN or Inf (Go's json.Marshal fails on them too).
        """
        try:
            return gojson.dumps(self.get_recording(), indent="  " if indent else None)
        except ModelFormatError as e:
            raise ConfigError(f"RecordingObserver.to_json: an event holds a value JSON cannot "
                              f"represent ({e}); find the diverging layer in .events") from e


def rfc3339(t: datetime) -> str:
    """Go's time.RFC3339 ("2006-01-02T15:04:05Z07:00"): "Z" for UTC, else +hh:mm."""
    text = t.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ChannelObserver:
    """LOOM's ChannelObserver: a bounded queue.Queue `events`; drops events when full."""

    def __init__(self, buffer_size: int):
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
            raise ConfigError(f"ChannelObserver: buffer_size must be an integer >= 1 (got "
                              f"{buffer_size!r}); Python queues have no unbuffered form")
        self.events: queue.Queue = queue.Queue(maxsize=buffer_size)
        self.dropped = 0

    def _send(self, event: LayerEvent) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    on_forward = on_backward = _send


class HTTPObserver:
    """LOOM's HTTPObserver: POSTs each event (Input/Output = null) as JSON, fire and forget.

    Each POST runs in a daemon thread with a 100 ms timeout; every error is ignored.
    """

    def __init__(self, url: str, timeout: float = HTTP_TIMEOUT_S):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"HTTPObserver: url {url!r} is not an http(s) URL; pass e.g. "
                              f"'http://localhost:8080/events'")
        self.url, self.timeout = url, timeout

    def _send(self, event: LayerEvent) -> None:
        try:
            body = gojson.dumps(replace(event, input=None, output=None).to_dict()).encode()
        except ModelFormatError:  # NaN/Inf stats: Go's Marshal fails and LOOM drops the event
            return
        threading.Thread(target=self._post, args=(body,), daemon=True).start()

    def _post(self, body: bytes) -> None:
        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
        except Exception:  # noqa: BLE001 - LOOM ignores every error of its fire-and-forget POST
            pass

    on_forward = on_backward = _send
