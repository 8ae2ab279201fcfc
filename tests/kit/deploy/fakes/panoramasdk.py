"""A stand-in for the AWS Panorama application SDK (``panoramasdk``), for tests off the appliance.

It offers what a code node uses: ``node`` with ``inputs.<name>.get()``,
``outputs.<name>.put(...)`` and ``call(inputs, model_node)``, and media objects with ``image``,
``stream_id``, ``add_rect`` and ``add_label``. A test describes the graph's side first::

    import panoramasdk
    panoramasdk.load_graph(
        video_in=[[panoramasdk.media(frame, "camera_node_0")], ...],   # one list per get()
        parameters={"threshold": 0.3, "refresh_rate": 1, "device_id": "pano-1"},
        models={"model_node": lambda inputs: (raw_output,)},
    )

Unlike the real SDK, ``video_in.get()`` raises :class:`GraphExhausted` when the scripted
batches run out, and everything put on an output is kept in ``outputs.<name>.sent``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np


class GraphExhausted(RuntimeError):
    """The scripted video batches are used up."""


class media:  # lower case: the SDK's own spelling
    """One frame of one camera stream."""

    def __init__(self, image: np.ndarray, stream_id: str = "camera_node_0"):
        self.image = image
        self.stream_id = stream_id
        self.rects: list[tuple[float, float, float, float]] = []
        self.labels: list[tuple[str, float, float]] = []

    def add_rect(self, left: float, top: float, right: float, bottom: float) -> None:
        for value in (left, top, right, bottom):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"add_rect takes normalised coordinates in [0, 1], got {value}")
        self.rects.append((left, top, right, bottom))

    def add_label(self, text: str, x: float, y: float) -> None:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"add_label takes normalised coordinates in [0, 1], got {(x, y)}")
        self.labels.append((str(text), x, y))


class _Port:
    def __init__(self, name: str, values: Iterable[Any] | None = None, constant: Any = None):
        self.name = name
        self._values = list(values) if values is not None else None
        self._constant = constant
        self.sent: list[Any] = []

    def get(self) -> Any:
        if self._values is None:
            return self._constant
        if not self._values:
            raise GraphExhausted(f"input {self.name!r} has no more scripted batches")
        return self._values.pop(0)

    def put(self, value: Any) -> None:
        self.sent.append(value)


class _Ports:
    def __init__(self, ports: Mapping[str, _Port]):
        self.__dict__.update(ports)


_GRAPH: dict[str, Any] = {"video_in": [], "parameters": {}, "models": {}}


def load_graph(
    *,
    video_in: Iterable[list[media]],
    parameters: Mapping[str, Any] | None = None,
    models: Mapping[str, Callable[[dict[str, np.ndarray]], tuple]] | None = None,
) -> None:
    """Script what the next ``node`` sees: its video batches, parameters and model nodes."""
    _GRAPH["video_in"] = list(video_in)
    _GRAPH["parameters"] = dict(parameters or {})
    _GRAPH["models"] = dict(models or {})


class node:  # lower case: the SDK's own spelling
    """The base class of a code node."""

    def __init__(self) -> None:
        ports = {"video_in": _Port("video_in", _GRAPH["video_in"])}
        for name, value in _GRAPH["parameters"].items():
            ports[name] = _Port(name, constant=value)
        self.inputs = _Ports(ports)
        self.outputs = _Ports({"video_out": _Port("video_out")})
        self.calls: list[str] = []

    def call(self, inputs: dict[str, np.ndarray], model_node: str) -> tuple:
        if model_node not in _GRAPH["models"]:
            raise KeyError(f"no model node {model_node!r} in the graph")
        self.calls.append(model_node)
        return _GRAPH["models"][model_node](inputs)
