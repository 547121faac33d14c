"""Inputs: one stream's options and the supervision of live sources."""

from __future__ import annotations

import re
from typing import Literal, Optional, Union

from pydantic import Field, field_validator


from .base import _Strict


def _option_text(value):
    """An FFmpeg option as FFmpeg reads it: a bool as ``1``/``0``, a number as written; anything
    else unchanged (a string passes, a list or mapping is then refused by the schema)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return str(value)
    return value


class SourceConfig(_Strict):
    """One input stream. A plain string in ``sources`` is the same as ``{uri: ...}``.

    Which of ``options``, ``format``, ``transport``, ``pace``, ``fps`` and ``orientation`` apply
    depends on the URI's kind; each source kind declares its own, and
    :func:`streamtrt.sources.check_source_options` refuses the others when the streams are resolved."""

    uri: str
    """A path, ``file://``, image folder or glob, ``rtsp://``, ``http(s)://``, ``v4l2:///dev/videoN``,
    a camera index, ``csi://N``, ``gst://PIPELINE`` or ``ffmpeg://INPUT``."""
    id: Optional[str] = None
    """Stream id in records, metrics and status; default: its position in ``sources`` (``0``, ``1``, ...)."""
    transport: Literal["tcp", "udp"] = "tcp"
    """RTSP transport."""
    options: dict[str, str] = Field(default_factory=dict)
    """Extra FFmpeg demuxer/protocol options (e.g. ``{buffer_size: 1048576}``, ``{framerate: 30}``).
    FFmpeg takes every option as text: numbers are written as YAML gives them (``30``, ``29.97``)
    and booleans as ``1``/``0``; lists and mappings are refused with the key path."""
    format: Optional[str] = None
    """Force an FFmpeg input format (e.g. ``mjpeg``, ``v4l2``); probed when unset."""
    pace: bool = False
    """Replay a file at its frame rate, like a camera (for tests and benchmarks)."""
    live: Optional[bool] = None
    """Treat as live (reconnect, drop stale frames); default: true for network and camera sources."""
    engine: Optional[int] = Field(None, ge=0)
    """Which engine serves this stream (an index into the ``tensorrt.dla_core`` list or below
    ``runtime.engines``); default: the one with fewest streams."""
    fps: Optional[float] = Field(None, gt=0.0, le=1000.0)
    """Frame rate of a file that carries none (a raw ``.h264``/``.h265`` stream; it overrides the
    codec's own timing there) or of an image sequence (frames then get timestamps ``index / fps``).
    Files with timestamps keep their own (a warning says the option was not used)."""
    orientation: Literal["auto", "ignore"] = "auto"
    """``auto``: frames are turned as players show them (a video's display matrix, an image's EXIF
    orientation), and sizes and boxes are in displayed pixels; ``ignore``: as stored."""

    @field_validator("options", mode="before")
    @classmethod
    def _options_as_text(cls, value):
        # YAML reads `framerate: 30` as an int; FFmpeg's options are strings (AVDictionary)
        return {k: _option_text(v) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("id")
    @classmethod
    def _id_is_label(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", v):
            raise ValueError("a stream id is 1-64 letters, digits or _ . : -")
        return v


class LiveConfig(_Strict):
    """Supervision of live sources: reconnecting, stall detection and the latency policy."""

    reconnect_initial_s: float = Field(0.5, gt=0.0)
    """First backoff delay after a failure; doubles (with jitter) up to ``reconnect_max_s``."""
    reconnect_max_s: float = Field(30.0, gt=0.0)
    max_reconnects: Optional[int] = Field(None, ge=0)
    """Give a live stream up after this many failed attempts in a row; retry forever when unset."""
    stall_timeout_s: float = Field(5.0, gt=0.0)
    """No frame for this long means the stream is reconnected."""
    open_timeout_s: float = Field(10.0, gt=0.0)
    """Connecting (and reading the stream header) may take this long."""
    drop_stale: Union[bool, Literal["auto"]] = "auto"
    """Drop the oldest waiting frames instead of queueing when inference falls behind.
    ``auto``: for live sources; file frames are never dropped."""
    queue_frames: int = Field(2, ge=1, le=256)
    """Frames a live stream may have waiting before stale ones are dropped."""
    decoder: Literal["auto", "cpu", "nvdec"] = "auto"
    """Decode of FFmpeg live sources (RTSP, HTTP, V4L2, ``ffmpeg://``): ``nvdec`` on the GPU
    (PyNvVideoCodec, then DALI GPU preprocessing) for the codecs NVDEC takes, the CPU for others;
    ``auto``: NVDEC where a GPU, PyNvVideoCodec, CuPy and DALI are present."""
