"""CSV: one row per detection (frames without detections leave no row), written as it goes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

from ..errors import SinkError
from .base import Sink
from .registry import SinkKind, register_sink_kind

COLUMNS = ["stream_id", "frame_index", "timestamp", "class_id", "class_name", "score", "x1", "y1", "x2", "y2",
           "tracker_id", "track_state", "pts", "time_base", "source_file"]


class CsvSink(Sink):
    def __init__(self, path: str):
        self.path = Path(path)
        self.display = f"csv:{path}"
        self._file = None
        self._writer = None

    def open(self, fps: Optional[float]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._writer = csv.writer(self._file)
        self._writer.writerow(COLUMNS)

    def write(self, result) -> None:
        for d in result.detections.to_records():
            self._writer.writerow([result.stream_id, result.frame_index,
                                   "" if result.timestamp is None else f"{result.timestamp:.6f}", d["class_id"],
                                   d["class_name"], d["score"], *d["bbox"], d.get("tracker_id") or "",
                                   d.get("track_state", ""),
                                   "" if result.pts is None else result.pts,
                                   "" if result.time_base is None else str(result.time_base),
                                   result.source_file or ""])
        self._file.flush()

    def close(self, summary=None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


register_sink_kind(SinkKind("csv", lambda spec: CsvSink(spec.target), suffixes=(".csv",), usage="csv:PATH"))
