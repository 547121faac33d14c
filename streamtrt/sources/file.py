"""Video files decoded on the CPU with FFmpeg (PyAV), shown as players show them.

- Orientation: the display matrix is applied (see :mod:`.orientation`); frames, sizes and boxes
  are in displayed pixels (``orientation: ignore`` turns this off).
- Time: the presentation time since the first frame, never backwards (see :mod:`.clock`); a raw
  elementary stream (no container) is timed by the codec's own timing info (the H.264/HEVC VUI
  rate, as ffprobe reads it), or by the ``fps`` option.
- Frame counts: exact where the container indexes every frame (MP4/MOV sample tables, less the
  frames an edit list hides), else estimated (duration x rate) and flagged as such. Only frames
  that really failed are bad: packets FFmpeg rejects, a demuxer error, and, where the count is
  exact, frames the file promises but does not hold (a truncated file).
"""

from __future__ import annotations

import logging
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av

from ..config import LiveConfig, SourceConfig
from ..errors import DecodeError, SourceError, first_line
from .base import Frame, FrameSource, SourceInfo, SourceStats
from .clock import PresentationClock
from .orientation import displayed_size, frame_rotation
from .pixels import BgrFrames
from .registry import SourceKind, register_source_kind
from .uri import SourceURI, parse_path_uri

AVFMT_NOTIMESTAMPS = 0x0080  # raw elementary streams: no timestamps in the file
AVFMT_TS_DISCONT = 0x0200  # formats whose timestamps may jump (MPEG-TS, FLV, ...)
_PROBE_PACKETS = 64  # packets read to find the first frame's display matrix
_FULL_INDEX_SCAN = 200_000  # sample-table entries read in full (about 2 h at 30 fps)
_INDEX_ENDS = 10_000  # else: entries read at each end
# FFmpeg's text-art demuxers and decoders (libavformat/tty.c, bintext.c): they turn any text file
# (README.txt, a log) into "video" frames of rendered characters; never a camera or a recording
_TEXT_ART_FORMATS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
_TEXT_ART_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})
log = logging.getLogger("streamtrt")


def _check_readable(path: Path, display: str) -> None:
    if not path.exists():
        raise SourceError(f"source not found: {display}")
    if path.is_dir():
        raise SourceError(f"source is a folder, not a video file: {display}")
    if not os.access(path, os.R_OK):
        raise SourceError(f"source is not readable (permission denied): {display}")


def probe_video(path: Path, display: str, stream_id: str = "0", orientation: str = "auto",
                fps: Optional[float] = None) -> SourceInfo:
    """Read what a video file says about itself: displayed size and rotation, rate, frame count
    (exact or estimated), codec. Decodes the first frame only (its display matrix).

    ``orientation``: ``auto`` (apply the display matrix) or ``ignore``. ``fps``: the rate of a
    stream that carries none (a raw elementary stream). Raises :class:`SourceError`.
    """
    _check_readable(path, display)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SourceError(f"{display}: no video stream in this file")
            stream = container.streams.video[0]
            if container.format.name in _TEXT_ART_FORMATS or stream.codec_context.name in _TEXT_ART_CODECS:
                raise SourceError(f"{display}: not a video: FFmpeg reads it as text art "
                                  f"({container.format.long_name or container.format.name})")
            info = _info_from_stream(stream, container, stream_id, display, fps)
            if fps and has_timestamps(container):
                log.warning("%s: fps %g not used: the file's own timestamps time its frames (%s fps)",
                            display, fps, f"{info.fps:g}" if info.fps else "variable")
            if orientation == "auto":
                info.rotation, info.mirror = _first_frame_rotation(container, stream)
                info.width, info.height = displayed_size(info.width, info.height, info.rotation)
            return info
    except av.error.FFmpegError as exc:
        raise SourceError(f"{display}: cannot open as video ({_ffmpeg_reason(exc)})") from None


def _ffmpeg_reason(exc: Exception) -> str:
    """What a PyAV/FFmpeg error says (its ``strerror``, e.g. "Invalid data found when processing input")."""
    return first_line(exc)


def has_timestamps(container) -> bool:
    """False for raw elementary streams (``.h264``, ``.h265``: FFmpeg's ``AVFMT_NOTIMESTAMPS``)."""
    return not (container.format.flags & AVFMT_NOTIMESTAMPS)


def stream_rate(stream, container, fps: Optional[float] = None, display: str = "") -> Optional[Fraction]:
    """The nominal frame rate. A raw elementary stream has no timestamps: its rate is the
    codec's timing info (H.264/HEVC VUI), which is what ffprobe reports as ``r_frame_rate``,
    unless ``fps`` states it; FFmpeg's raw demuxer would otherwise assume 25."""
    if not has_timestamps(container):
        if fps:
            return Fraction(fps).limit_denominator(1001000)
        rate = stream.codec_context.framerate
        if rate and 0 < float(rate) <= 1000:
            return rate
        rate = stream.guessed_rate  # FFmpeg's raw-demuxer default, 25
        log.warning("%s: the stream states no frame rate; assuming %s fps (set sources[].fps to state it)",
                    display, f"{float(rate):g}" if rate else "25")
        return rate or Fraction(25)
    return stream.average_rate or stream.guessed_rate


def _duration_tag_s(stream) -> Optional[float]:
    """Matroska's per-track ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``), in seconds."""
    m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", str(stream.metadata.get("DURATION", "")).strip())
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None


def frame_count(stream, container, rate: Optional[Fraction]) -> tuple[Optional[int], bool]:
    """``(count, estimated)``: exact where the container indexes every frame (less the frames an
    edit list hides), else the video's duration x rate (an estimate; ``None`` if unknown)."""
    if stream.frames:
        n = stream.frames
        try:
            index = stream.index_entries
            if len(index) == n:  # the sample table: drop what an edit list hides, and empty samples
                # (an edit list hides samples at the ends; a very long table is checked there only)
                ends = index if n <= _FULL_INDEX_SCAN else [*index[:_INDEX_ENDS], *index[-_INDEX_ENDS:]]
                n -= sum(1 for e in ends if e.is_discard or e.size <= 0)
        except (AttributeError, av.error.FFmpegError):
            pass
        return n, False
    if not rate:
        return None, True
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
    if stream.duration and stream.time_base:
        seconds: Optional[float] = float(stream.duration * stream.time_base)
    elif _duration_tag_s(stream) is not None:
        seconds = _duration_tag_s(stream) - start
    elif container.duration:
        seconds = container.duration / av.time_base  # may include a longer audio track
    else:
        seconds = None
    if not seconds or seconds <= 0:
        return None, True
    return int(round(seconds * float(rate))), True


def _info_from_stream(stream, container, stream_id: str, display: str, fps: Optional[float] = None) -> SourceInfo:
    rate = stream_rate(stream, container, fps, display)
    frames, estimated = frame_count(stream, container, rate)
    return SourceInfo(
        stream_id=stream_id,
        uri=display,
        width=stream.codec_context.width or None,
        height=stream.codec_context.height or None,
        fps=float(rate) if rate else None,
        frame_count=frames,
        frame_count_estimated=estimated,
        codec=stream.codec_context.name,
        is_live=False,
    )


def _first_frame_rotation(container, stream) -> tuple[int, bool]:
    """The display transform of the first decodable frame (FFmpeg hands the stream's display
    matrix to every frame as side data)."""
    try:
        for i, packet in enumerate(container.demux(stream)):
            for vframe in packet.decode():
                return frame_rotation(vframe)
            if i >= _PROBE_PACKETS:
                break
    except av.error.FFmpegError:
        pass
    return 0, False


class VideoFileSource(FrameSource):
    """Decodes a video file frame by frame on the CPU (kind ``file``).

    Frames come out in displayed orientation (``orientation="auto"``), with monotonic
    timestamps and their file PTS. Packets FFmpeg rejects and demuxer errors are counted as bad
    frames; where the container's frame count is exact, frames missing at the end (a truncated
    file) are counted as bad too. An estimated count never makes an error.
    """

    kind = "file"

    def __init__(self, path: str, display: str, stream_id: str = "0", threads: Optional[int] = None,
                 orientation: str = "auto", fps: Optional[float] = None):
        self.path = Path(path)
        self.display = display
        self.orientation = orientation
        self.fps_option = fps
        self.info = probe_video(self.path, display, stream_id, orientation, fps)
        self.stats = SourceStats()
        self._threads = threads
        self._container = None

    def __iter__(self) -> Iterator[Frame]:
        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as exc:
            raise SourceError(f"{self.display}: cannot open as video ({_ffmpeg_reason(exc)})") from None
        container = self._container
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if self._threads:
            stream.codec_context.thread_count = self._threads
        timed = has_timestamps(container)
        time_base = stream.time_base if timed else None
        clock = PresentationClock(time_base, self.info.fps, self.display,
                                  may_jump=bool(container.format.flags & AVFMT_TS_DISCONT))
        to_bgr = BgrFrames(turn=self.orientation == "auto")
        index = 0
        try:
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:
                    self._rejected()
                    if len(self.stats.errors) < 5:
                        self.stats.errors.append(_ffmpeg_reason(exc))
                    continue
                for vframe in decoded:
                    pts = vframe.pts if timed else None
                    ts = clock(pts, vframe.duration if timed else None)
                    image = to_bgr(vframe)  # one scaler per file; turned by the display matrix if turn
                    self.stats.decoded += 1
                    yield Frame(image=image, index=index, timestamp=ts, pts=pts, time_base=time_base)
                    index += 1
        except av.error.FFmpegError as exc:
            # A demuxer error (e.g. a truncated file) ends decoding; what was decoded stands.
            self.stats.errors.append(_ffmpeg_reason(exc))
            self._rejected()
        finally:
            self.close()
        # the file's own end (not reached when the caller stops early, e.g. at max_frames)
        expected = None if self.info.frame_count_estimated else self.info.frame_count
        missing = expected - self.stats.decoded if expected else 0
        self.stats.bad_frames = max(self.stats.decode_errors, missing)

    def _rejected(self) -> None:
        self.stats.decode_errors += 1
        self.stats.bad_frames = max(self.stats.bad_frames, self.stats.decode_errors)

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


def open_video_file(uri: SourceURI, stream_id: str, *, threads: Optional[int] = None, options: SourceConfig,
                    live: Optional[LiveConfig] = None, nvdec_device: Optional[int] = None) -> VideoFileSource:
    """The :data:`~.registry.SourceKind.open` of kind ``file`` (CPU decode; GPU decode of files is the
    pipeline's DALI or GStreamer path)."""
    return VideoFileSource(uri.location, uri.display, stream_id, threads=threads, orientation=options.orientation,
                           fps=options.fps)


register_source_kind(SourceKind("file", open_video_file, schemes=("file",), parse=parse_path_uri,
                                options=frozenset({"pace", "fps", "orientation"}), description="a video file"))
