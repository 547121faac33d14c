"""The annotated video: every frame with its boxes, labels and scores, at its own timestamp.

Encoded with PyAV (FFmpeg): H.264 (``yuv420p``, even dimensions, ``+faststart``) in MP4/MOV/MKV,
which browsers and common players open; MJPEG in AVI. Each frame keeps its presentation time
(variable frame rate is kept), so the output lasts as long as the input.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import cv2
import numpy as np

from ..config import IMAGES_VIDEO_FPS
from ..errors import SinkError, first_line
from .annotate import draw_analytics, draw_detections
from .base import Sink
from .registry import SinkKind, register_sink_kind

log = logging.getLogger("streamtrt")

FALLBACK_RATE = Fraction(IMAGES_VIDEO_FPS)
"""The video's rate where the source states none (:data:`streamtrt.config.IMAGES_VIDEO_FPS`, and why)."""

TIME_BASE = Fraction(1, 90000)
"""Timestamps are written in 1/90000 s (MPEG's clock): exact for 30000/1001, 25, 24000/1001 ...
(MPEG-4 Part 2 allows at most 65535 ticks a second: it gets 1/30000, exact for the same rates.)"""

H264_ENCODERS = ("libx264", "libopenh264")
"""H.264 encoders tried in order; without any, MPEG-4 Part 2 (with a warning: browsers do not play it)."""

CRF = 23  # x264's default quality: visually close to the input at a size in proportion to it
PRESET = "veryfast"

_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
_FASTSTART = {"mp4", "mov"}


def video_rate(fps: Optional[float]) -> Fraction:
    """The stream rate as a fraction: 29.97... -> 30000/1001, 12.5 -> 25/2; ``FALLBACK_RATE`` if unknown."""
    if not fps or fps <= 0:
        return FALLBACK_RATE
    return Fraction(fps).limit_denominator(1001)


def pick_encoder(candidates=H264_ENCODERS) -> str:
    """The first H.264 encoder this FFmpeg build has, else ``mpeg4`` (logged as a warning)."""
    available = av.codecs_available
    for name in candidates:
        if name in available:
            try:
                av.codec.Codec(name, "w")
                return name
            except Exception:  # listed as a decoder only
                continue
    log.warning("video sink: no H.264 encoder in this FFmpeg build (tried %s); writing MPEG-4 Part 2, "
                "which browsers do not play", ", ".join(candidates))
    return "mpeg4"


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """``frame`` (H, W, 3) with a black row/column added at the bottom/right where H/W is odd
    (4:2:0 chroma needs even sizes); pixels are never cropped or moved."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return cv2.copyMakeBorder(frame, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def fit_into(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` scaled to fit ``size`` (width, height) with its aspect kept, padded black (letterbox)."""
    w, h = size
    fh, fw = frame.shape[:2]
    scale = min(w / fw, h / fh)
    nw, nh = max(1, min(w, round(fw * scale))), max(1, min(h, round(fh * scale)))
    resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (h - nh) // 2, (w - nw) // 2
    return cv2.copyMakeBorder(resized, top, h - nh - top, left, w - nw - left, cv2.BORDER_CONSTANT, value=(0, 0, 0))


class AnnotatedVideoSink(Sink):
    """Encodes annotated frames with PyAV at their timestamps.

    The size is the first frame's (padded to even); a later frame of another size (a camera that
    reconnects at another resolution) is scaled to fit and letterboxed. A frame whose timestamp is
    not after the previous one, or that has none, is placed one frame duration after it.
    """

    needs_images = True

    def __init__(self, path: str):
        self.path = Path(path)
        self.display = f"video:{path}"
        self.format = _CONTAINERS.get(self.path.suffix.lower())
        if self.format is None:
            raise SinkError(f"video sink {path}: unsupported container (use {', '.join(sorted(_CONTAINERS))})")
        self.rate = FALLBACK_RATE
        self.codec: Optional[str] = None
        self.frames = 0
        self.analytics_config = None  # lines and zones to draw (configure)
        self._container = None
        self._stream = None
        self._size: Optional[tuple[int, int]] = None
        self._pending: Optional[tuple[np.ndarray, int]] = None  # a frame waits for the next one's pts
        self._first_ts: Optional[float] = None
        self._last_pts: Optional[int] = None
        self._durations: dict[int, int] = {}
        self._scaler = None  # one PyAV reformatter: frame.reformat() makes a scaler (and its threads) per frame
        self._unit = TIME_BASE  # the time base frames are stamped in
        self._told_bump = False
        self._closed = False

    @property
    def _tick(self) -> int:
        """One frame at the stream rate, in the stream's time base."""
        return max(1, round(1 / (self.rate * self._unit)))

    def configure(self, analytics_config) -> None:
        """Keep the job's lines and zones, to draw them with their counts."""
        self.analytics_config = analytics_config

    def open(self, fps: Optional[float]) -> None:
        self.rate = video_rate(fps)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create {self.path.parent}: {exc.strerror or exc}") from None

    def _start(self, width: int, height: int) -> None:
        options = {"movflags": "+faststart"} if self.format in _FASTSTART else {}
        try:
            container = av.open(str(self.path), mode="w", format=self.format, options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise SinkError(f"cannot open video writer for {self.path}: {first_line(exc)}") \
                from None
        try:
            if self.format == "avi":
                # AVI has one clock of fixed frames: MJPEG at the stream rate, gaps filled by the muxer
                stream = container.add_stream("mjpeg", rate=self.rate)
                stream.pix_fmt = "yuvj420p"
                self._unit = 1 / self.rate
                stream.codec_context.qmin, stream.codec_context.qmax = 2, 4
            else:
                self.codec = pick_encoder()
                stream = container.add_stream(self.codec, rate=self.rate)
                stream.pix_fmt = "yuv420p"
                self._unit = TIME_BASE if self.codec != "mpeg4" else Fraction(1, 30000)
                if self.codec == "libx264":
                    stream.options = {"crf": str(CRF), "preset": PRESET}
                stream.codec_context.color_range = 1  # MPEG (limited) range, as players assume
                stream.codec_context.colorspace = 1  # BT.709 matrix, tagged and used for conversion
                stream.codec_context.color_primaries = 1
                stream.codec_context.color_trc = 1
            stream.codec_context.time_base = self._unit
            stream.time_base = self._unit
            stream.width, stream.height = width, height
            self.codec = stream.codec_context.name
        except Exception as exc:
            container.close()
            raise SinkError(f"cannot set up the video encoder for {self.path}: {exc}") from None
        self._container, self._stream, self._size = container, stream, (width, height)

    def _pts_of(self, timestamp: Optional[float]) -> int:
        """The frame's pts in the stream's time base, after the previous one's."""
        if timestamp is not None and self._first_ts is None:
            self._first_ts = timestamp
        step = self._tick
        if timestamp is None:
            pts = 0 if self._last_pts is None else self._last_pts + step
        else:
            pts = round((timestamp - self._first_ts) / self._unit)
            if self._last_pts is not None and pts <= self._last_pts:
                if not self._told_bump:
                    self._told_bump = True
                    log.warning("video sink %s: a frame's timestamp (%.3f s) is not after the previous frame's "
                                "(at this container's time resolution); shown one frame later", self.path, timestamp)
                pts = self._last_pts + step
        self._last_pts = pts
        return pts

    def write(self, result) -> None:
        if self._closed:
            raise SinkError(f"video sink {self.path}: written after close")
        if result.image is None:
            raise SinkError("video sink got a result without its frame")
        frame = draw_detections(result.image, result.detections)
        if self.analytics_config is not None and result.analytics is not None:
            draw_analytics(frame, self.analytics_config, result.analytics)
        frame = pad_to_even(frame)
        if self._container is None:
            self._start(frame.shape[1], frame.shape[0])
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = fit_into(frame, self._size)
        pts = self._pts_of(result.timestamp)
        if self._pending is not None:
            held, held_pts = self._pending
            self._encode(held, held_pts, pts - held_pts)
        self._pending = (frame, pts)
        self.frames += 1

    def _encode(self, image: Optional[np.ndarray], pts: int, duration: int) -> None:
        stream = self._stream
        try:
            if image is None:
                packets = stream.encode(None)
            else:
                vf = av.VideoFrame.from_ndarray(image, format="bgr24")
                if self.format != "avi":
                    if self._scaler is None:
                        from av.video.reformatter import VideoReformatter

                        self._scaler = VideoReformatter()
                    vf = self._scaler.reformat(vf, format="yuv420p", dst_colorspace="itu709")
                vf.pts = pts
                vf.time_base = stream.codec_context.time_base
                self._durations[pts] = duration
                packets = stream.encode(vf)
            for packet in packets:
                # the muxer needs each frame's own duration (the last frame's sets the file's end)
                packet.duration = self._durations.pop(packet.pts, packet.duration)
                self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as exc:
            raise SinkError(f"video sink {self.path}: encoding failed: {first_line(exc)}") \
                from None

    def close(self, summary=None) -> None:
        """Encode the held frame, flush the encoder and write the index (``moov``); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        container, self._container = self._container, None
        if container is None:
            return
        self._container = container
        try:
            if self._pending is not None:
                held, held_pts = self._pending
                self._pending = None
                self._encode(held, held_pts, self._tick)
            self._encode(None, 0, 0)
        finally:
            self._container = None
            try:
                container.close()
            except (av.error.FFmpegError, OSError) as exc:
                raise SinkError(f"video sink {self.path}: could not finish the file: "
                                f"{first_line(exc)}") from None


register_sink_kind(SinkKind("video", lambda spec: AnnotatedVideoSink(spec.target),
                              suffixes=(".mp4", ".m4v", ".mov", ".avi", ".mkv"), usage="video:PATH (.mp4 .mov .avi .mkv)"))
