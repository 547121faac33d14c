"""GStreamer through OpenCV's GStreamer backend (JetPack's OpenCV is built with it; PyPI's
opencv-python-headless is not): hardware decode of files (Jetson's ``nvv4l2decoder``), and the
live kinds ``gst://PIPELINE`` and ``csi://N``."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import threading
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional
from urllib.parse import urlsplit

import cv2
import numpy as np

from ..config import LiveConfig, SourceConfig
from ..errors import BackendUnavailableError, SourceError, UnsupportedSourceError
from .base import Frame, FrameSource, SourceStats
from .file import probe_video
from .live import SupervisedSource, input_uri
from .orientation import orient
from .registry import SourceKind, register_source_kind
from .supervisor import StallError
from .uri import SourceURI, redact

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


class GStreamerLiveSource(SupervisedSource):
    """``gst://PIPELINE`` (ending in an appsink, added if missing) and ``csi://N`` (Jetson's
    nvarguscamerasrc), read through OpenCV's GStreamer backend with a stall watchdog."""

    def pipeline(self) -> str:
        if self.uri.kind == "csi":
            w, h = self.sc.options.get("width", "1920"), self.sc.options.get("height", "1080")
            fps = self.sc.options.get("framerate", "30")
            return (f"nvarguscamerasrc sensor-id={self.uri.location} ! video/x-raw(memory:NVMM),width={w},"
                    f"height={h},framerate={fps}/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! "
                    "video/x-raw,format=BGR ! appsink drop=true max-buffers=2 sync=false")
        text = self.uri.location
        return text if "appsink" in text else text + " ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=2"

    def _frames(self) -> Iterator[np.ndarray]:
        if not opencv_has_gstreamer():
            raise UnsupportedSourceError(
                f"{self.display}: this OpenCV build has no GStreamer support (use the system OpenCV, "
                "e.g. JetPack's python3-opencv)")
        cap = cv2.VideoCapture(self.pipeline(), cv2.CAP_GSTREAMER)
        try:
            if not cap.isOpened():
                raise RuntimeError("GStreamer pipeline did not start")
            fps = cap.get(cv2.CAP_PROP_FPS)
            if fps and 1 <= fps <= 240:
                self.info.fps = float(fps)
            result: list = []
            while True:
                reader = threading.Thread(target=lambda: result.append(cap.read()), daemon=True)
                reader.start()
                reader.join(self.live_config.stall_timeout_s)
                if reader.is_alive():
                    raise StallError(f"no frame for {self.live_config.stall_timeout_s:g} s (stall)")
                ok, image = result.pop()
                if not ok:
                    return
                self.info.height, self.info.width = image.shape[:2]
                yield image
        finally:
            cap.release()


def open_gstreamer_live(uri: SourceURI, stream_id: str, *, threads: Optional[int] = None,
                        options: SourceConfig, live: LiveConfig, nvdec_device: Optional[int] = None) -> GStreamerLiveSource:
    """The :data:`~.registry.SourceKind.open` of ``gst://`` and ``csi://`` (``threads`` and
    ``nvdec_device`` unused: the pipeline itself says how it decodes)."""
    return GStreamerLiveSource(uri, stream_id, options, live)


def _csi_uri(scheme: str, rest: str, raw: str) -> SourceURI:
    parts = urlsplit(raw)
    sensor = parts.netloc or parts.path.lstrip("/") or "0"
    if not sensor.isdigit():
        raise SourceError(f"{redact(raw)}: csi:// expects a sensor index, e.g. csi://0")
    return SourceURI("csi", sensor, raw)


register_source_kind(SourceKind("csi", open_gstreamer_live, schemes=("csi",), live=True,
                                options=frozenset({"options"}), parse=_csi_uri))
register_source_kind(SourceKind("gstreamer", open_gstreamer_live, schemes=("gst", "gstreamer"), live=True,
                                parse=input_uri("gstreamer")))
