"""The annotated video: every frame with its boxes, labels and scores, at the input's fps."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2

from ..errors import SinkError
from .annotate import draw_analytics, draw_detections
from .base import Sink

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}
DEFAULT_FPS = 10.0  # for inputs without a frame rate (image folders)


class AnnotatedVideoSink(Sink):
    """Encodes annotated frames with OpenCV's FFmpeg writer; frames of another size are resized."""

    needs_images = True

    def __init__(self, path: str):
        self.path = Path(path)
        if self.path.suffix.lower() not in _FOURCC:
            raise SinkError(f"video sink {path}: unsupported container (use {', '.join(sorted(_FOURCC))})")
        self.fps = DEFAULT_FPS
        self._writer: Optional[cv2.VideoWriter] = None
        self._size: Optional[tuple[int, int]] = None
        self.frames = 0
        self.analytics_config = None  # set by the pipeline: lines and zones to draw

    def open(self, fps: Optional[float]) -> None:
        self.fps = fps or DEFAULT_FPS
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create {self.path.parent}: {exc.strerror or exc}") from None

    def write(self, result) -> None:
        if result.image is None:
            raise SinkError("video sink got a result without its frame")
        frame = draw_detections(result.image, result.detections)
        if self.analytics_config is not None and result.analytics is not None:
            draw_analytics(frame, self.analytics_config, result.analytics)
        if self._writer is None:
            self._size = (frame.shape[1], frame.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._writer = None
                raise SinkError(f"cannot open video writer for {self.path}")
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)
        self.frames += 1

    def close(self, summary=None) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
