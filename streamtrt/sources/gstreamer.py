"""Hardware decode through GStreamer (Jetson's ``nvv4l2decoder``), read with OpenCV's GStreamer
backend (JetPack's OpenCV is built with it; PyPI's opencv-python-headless is not)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional

import cv2

from ..errors import BackendUnavailableError, SourceError
from .base import Frame, FrameSource, SourceStats
from .file import probe_video
from .orientation import orient

_PARSERS = {"h264": "h264parse", "hevc": "h265parse", "h265": "h265parse"}
_DEMUXERS = {".mp4": "qtdemux", ".mov": "qtdemux", ".m4v": "qtdemux", ".mkv": "matroskademux",
             ".webm": "matroskademux", ".ts": "tsdemux", ".m2ts": "tsdemux"}


def decode_pipeline(path: str, codec: str, decoder: str = "nvv4l2decoder") -> str:
    """The GStreamer pipeline that decodes ``path`` to BGR frames for an OpenCV appsink."""
    suffix = Path(path).suffix.lower()
    demux = _DEMUXERS.get(suffix)
    parse = _PARSERS.get(codec)
    if demux is None or parse is None:
        raise SourceError(f"{path}: GStreamer decode supports H.264/H.265 in mp4/mkv/ts, not {codec} in {suffix}")
    convert = "nvvidconv ! video/x-raw,format=BGRx ! videoconvert" if decoder.startswith("nv") else "videoconvert"
    return (f"filesrc location={shlex.quote(path)} ! {demux} ! {parse} ! {decoder} ! {convert} ! "
            "video/x-raw,format=BGR ! appsink drop=false sync=false")


@lru_cache(maxsize=1)
def opencv_has_gstreamer() -> bool:
    info = cv2.getBuildInformation()
    return any("GStreamer" in line and "YES" in line for line in info.splitlines())


@lru_cache(maxsize=4)
def gst_element_available(name: str) -> bool:
    tool = shutil.which("gst-inspect-1.0")
    if tool is None:
        return False
    return subprocess.run([tool, name], capture_output=True, timeout=10).returncode == 0


def gstreamer_available() -> Optional[str]:
    """``None`` when hardware decode through GStreamer works here, else why not."""
    if not opencv_has_gstreamer():
        return "OpenCV was built without GStreamer (use JetPack's OpenCV)"
    if not gst_element_available("nvv4l2decoder"):
        return "the GStreamer element nvv4l2decoder is missing"
    return None


class GStreamerFileSource(FrameSource):
    """Frames of a video file decoded by ``nvv4l2decoder``; timestamps from the frame rate."""

    def __init__(self, path: str, display: str, stream_id: str = "0", orientation: str = "auto"):
        why = gstreamer_available()
        if why:
            raise BackendUnavailableError(f"runtime.decoder gstreamer: {why}")
        self.info = probe_video(Path(path), display, stream_id, orientation)
        self.pipeline = decode_pipeline(path, self.info.codec or "")
        self.display = display
        self.stats = SourceStats()
        self._cap = None

    def __iter__(self) -> Iterator[Frame]:
        self._cap = cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)
        if not self._cap.isOpened():
            raise SourceError(f"{self.display}: the GStreamer pipeline did not start")
        fps = self.info.fps
        index = 0
        try:
            while True:
                ok, image = self._cap.read()
                if not ok:
                    break
                self.stats.decoded += 1
                image = orient(image, self.info.rotation, self.info.mirror)  # the display matrix
                yield Frame(image=image, index=index, timestamp=index / fps if fps else None)
                index += 1
        finally:
            self.close()
        if self.info.frame_count and not self.info.frame_count_estimated:
            self.stats.bad_frames = max(0, self.info.frame_count - self.stats.decoded)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
