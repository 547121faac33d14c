"""The run summary as a JSON file, written when the run ends (also after an error or Ctrl-C)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import SinkError
from ..fileio import atomic_write
from .base import Sink
from .registry import SinkKind, register_sink_kind


class SummarySink(Sink):
    def __init__(self, path: str):
        self.path = Path(path)
        self.display = f"summary:{path}"

    def write(self, result) -> None:
        pass  # the summary is built by the pipeline; this sink only stores it

    def close(self, summary=None) -> None:
        if summary is None:
            return
        try:
            atomic_write(self.path, (json.dumps(summary.as_dict(), indent=2) + "\n").encode())
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}") from None


register_sink_kind(SinkKind("summary", lambda spec: SummarySink(spec.target), suffixes=(".json",),
                              usage="summary:PATH"))
