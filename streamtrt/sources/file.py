"""Video files decoded on the CPU with FFmpeg (PyAV)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av

from ..errors import DecodeError, SourceError
from .base import Frame, FrameSource, SourceInfo, SourceStats


def _check_readable(path: Path, display: str) -> None:
    if not path.exists():
        raise SourceError(f"source not found: {display}")
    if path.is_dir():
        raise SourceError(f"source is a folder, not a video file: {display}")
    if not os.access(path, os.R_OK):
        raise SourceError(f"source is not readable (permission denied): {display}")


def probe_video(path: Path, display: str, stream_id: str = "0") -> SourceInfo:
    """Read container metadata (size, fps, frame count, codec) without decoding."""
    _check_readable(path, display)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SourceError(f"{display}: no video stream in this file")
            stream = container.streams.video[0]
            return _info_from_stream(stream, container, stream_id, display)
    except av.error.FFmpegError as exc:
        raise SourceError(f"{display}: cannot open as video ({_ffmpeg_reason(exc)})") from None


def _ffmpeg_reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _info_from_stream(stream, container, stream_id: str, display: str) -> SourceInfo:
    rate: Optional[Fraction] = stream.average_rate or stream.guessed_rate
    frames = stream.frames or None
    if frames is None and container.duration and rate:
        frames = int(round(container.duration / av.time_base * float(rate)))
    return SourceInfo(
        stream_id=stream_id,
        uri=display,
        width=stream.codec_context.width or None,
        height=stream.codec_context.height or None,
        fps=float(rate) if rate else None,
        frame_count=frames,
        codec=stream.codec_context.name,
        is_live=False,
    )


class VideoFileSource(FrameSource):
    """Decodes a video file frame by frame on the CPU.

    Packets FFmpeg rejects are counted and skipped; when the container declares a frame count,
    frames missing at the end (a truncated file) are counted as bad too.
    """

    def __init__(self, path: str, display: str, stream_id: str = "0", threads: Optional[int] = None):
        self.path = Path(path)
        self.display = display
        self.info = probe_video(self.path, display, stream_id)
        self.stats = SourceStats()
        self._threads = threads
        self._container = None

    def __iter__(self) -> Iterator[Frame]:
        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as exc:
            raise SourceError(f"{self.display}: cannot open as video ({_ffmpeg_reason(exc)})") from None
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        if self._threads:
            stream.codec_context.thread_count = self._threads
        time_base = stream.time_base
        fps = self.info.fps
        start = stream.start_time or 0
        bad_packets = 0
        index = 0
        try:
            for packet in self._container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:
                    bad_packets += 1
                    if len(self.stats.errors) < 5:
                        self.stats.errors.append(_ffmpeg_reason(exc))
                    continue
                for vframe in decoded:
                    if vframe.pts is not None and time_base is not None:
                        ts = float((vframe.pts - start) * time_base)
                    else:
                        ts = index / fps if fps else None
                    image = vframe.to_ndarray(format="bgr24")
                    self.stats.decoded += 1
                    yield Frame(image=image, index=index, timestamp=ts)
                    index += 1
        except av.error.FFmpegError as exc:
            # A demuxer error (e.g. a truncated file) ends decoding; what was decoded stands.
            self.stats.errors.append(_ffmpeg_reason(exc))
            bad_packets += 1
        finally:
            self.close()
        expected = self.info.frame_count
        missing = expected - self.stats.decoded if expected else 0
        self.stats.bad_frames = max(bad_packets, missing)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def decode_error_for(display: str, stats: SourceStats) -> Optional[DecodeError]:
    """The error to report after a run whose source had undecodable frames, if any."""
    if stats.bad_frames <= 0:
        return None
    detail = f" (first error: {stats.errors[0]})" if stats.errors else ""
    return DecodeError(
        f"{display}: {stats.bad_frames} frame(s) could not be decoded; "
        f"{stats.decoded} frame(s) were decoded and processed{detail}"
    )
