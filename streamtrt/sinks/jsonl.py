"""JSON Lines: one object per frame, written and flushed as it arrives."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Optional

from ..errors import SinkError
from .base import Sink
from .registry import SinkKind, register_sink_kind


class JsonlSink(Sink):
    """Writes one line per frame (``streamtrt.frame/1``) and one per analytics event
    (``streamtrt.event/1``), to a file or to stdout for ``-``."""

    def __init__(self, path: str):
        self.path = path
        self.display = f"jsonl:{path}"
        self._file: Optional[IO[str]] = None
        self.records = 0

    def open(self, fps: Optional[float]) -> None:
        if self.path == "-":
            self._file = sys.stdout
            return
        target = Path(self.path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(target, "w", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def write(self, result) -> None:
        self._line(result.to_record())

    def write_event(self, event) -> None:
        self._line(event.to_record())

    def _line(self, record: dict) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._file.flush()
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.records += 1

    def close(self, summary=None) -> None:
        if self._file is not None and self._file is not sys.stdout:
            self._file.close()
        elif self._file is sys.stdout:
            sys.stdout.flush()
        self._file = None


register_sink_kind(SinkKind("jsonl", lambda spec: JsonlSink(spec.target), suffixes=(".jsonl", ".ndjson"),
                              usage="jsonl:PATH (jsonl:- is stdout)"))
