"""Live sources that survive: RTSP, HTTP (MJPEG, progressive, HLS), V4L2 cameras and raw
FFmpeg inputs through PyAV; GStreamer pipelines (``gst://``, ``csi://``) through OpenCV.

Each is supervised (:class:`~streamtrt.sources.supervisor.Supervisor`): a failure, an end of
stream or a stall (no frame for ``live.stall_timeout_s``) closes the connection and reconnects
with exponential backoff and jitter; after a (re)connect, packets are skipped until a keyframe
so nothing is decoded without its reference. Frame indices and timestamps (seconds since the
stream's first frame) continue across reconnects; frames that an outage cost are estimated
from the frame rate and counted as lost.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator, Optional
from urllib.parse import urlsplit


from ..config import LiveConfig, SourceConfig
from ..errors import SourceError, UnsupportedSourceError
from ..redact import redact
from ..sync import AnyEvent
from .base import Frame, FrameSource, SourceInfo, SourceStats
from .file import _ffmpeg_reason
from .orientation import stream_display_transform
from .pixels import BgrFrames
from .supervisor import StallError, Supervisor
from .registry import SourceKind, register_source_kind
from .uri import SourceURI

log = logging.getLogger("streamtrt")
_MAX_BAD_PACKETS_IN_A_ROW = 50  # then the stream is treated as broken and reconnected
# Codecs whose frames reference earlier ones: after a (re)connect, decoding starts at a keyframe.
_INTER_CODECS = frozenset({"h264", "hevc", "h265", "mpeg4", "mpeg2video", "mpeg1video", "vp8", "vp9", "av1", "h263"})


class SupervisedSource(FrameSource):
    """Common loop: connect, read frames, reconnect on failure, until stopped."""

    live = True

    def __init__(self, uri: SourceURI, stream_id: str, sc: SourceConfig, live: LiveConfig):
        self.uri = uri
        self.kind = uri.kind
        self.display = uri.display
        self.sc = sc
        self.live_config = live
        self.info = SourceInfo(stream_id=stream_id, uri=uri.display, is_live=True)
        self.stats = SourceStats()
        self.stop = threading.Event()
        self.supervisor = Supervisor(uri.display, live, self.stop)
        self.endless = sc.live is not False  # a non-live network file ends at its end

    def bind_stop(self, *events: Any) -> None:
        """Also stop (during a backoff wait, or between frames) when any of ``events`` is set."""
        self.supervisor.stop = AnyEvent(self.stop, *events)

    def status(self) -> dict[str, Any]:
        """The supervisor's counters (see :meth:`FrameSource.status`)."""
        return self.supervisor.snapshot()

    def _frames(self) -> Iterator[Any]:
        """One connection: yields BGR images (or ``(image, pts, time_base)``), from a keyframe on;
        returns at end of stream."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        sup = self.supervisor
        index = 0
        t0: Optional[float] = None
        last: Optional[float] = None
        while not sup.stopped:
            sup.state = "connecting" if not sup.connected_once else "reconnecting"
            try:
                first = True
                for item in self._frames():
                    # FFmpeg sources yield (image, pts, time_base): the PTS traces a record back
                    image, pts, time_base = item if isinstance(item, tuple) else (item, None, None)
                    if sup.stopped:
                        return
                    now = time.monotonic()
                    if first:
                        first = False
                        sup.connected()
                        if last is not None and self.info.fps:
                            sup.count_lost(round((now - last) * self.info.fps) - 1)
                    if t0 is None:
                        t0 = now
                    last = now
                    sup.frame()
                    self.stats.decoded += 1
                    yield Frame(image=image, index=index, timestamp=now - t0, pts=pts, time_base=time_base)
                    index += 1
                if not self.endless:
                    sup.state = "ended"
                    return
                reason = "end of stream"
            except StallError as exc:
                reason = str(exc)
            except SourceError:  # retrying cannot help (a bad format or option)
                sup.state = "failed"
                raise
            except Exception as exc:  # noqa: BLE001 - any connection failure means reconnect
                reason = _reason(exc)
            delay = sup.failed(reason)  # raises once max_reconnects is exhausted
            if sup.wait(delay):
                break
        sup.state = "stopped"

    def close(self) -> None:
        self.stop.set()


def _nvdec_errors(nvdec) -> tuple:
    """What a bad packet raises in NVDEC's decoder (counted like FFmpeg's decode errors)."""
    if nvdec is None:
        return ()
    import PyNvVideoCodec as nvc

    return tuple(e for e in (getattr(nvc, "PyNvVCException", None), RuntimeError, ValueError) if e is not None)


def _reason(exc: BaseException) -> str:
    return redact(_ffmpeg_reason(exc))


class FFmpegLiveSource(SupervisedSource):
    """rtsp://, http(s)://, v4l2 devices and ``ffmpeg://`` inputs, demuxed by FFmpeg and decoded
    by FFmpeg, or with ``nvdec_device`` by that GPU's NVDEC where it takes the codec (frames are
    then BGR CuPy arrays; other codecs, e.g. MJPEG, still decode on the CPU)."""

    def __init__(self, uri: SourceURI, stream_id: str, sc: SourceConfig, live: LiveConfig,
                 nvdec_device: Optional[int] = None):
        super().__init__(uri, stream_id, sc, live)
        self.nvdec_device = nvdec_device
        self.decoder = "nvdec" if nvdec_device is not None else "cpu"  # what decodes the current connection
        self._told: set[str] = set()

    def status(self) -> dict[str, Any]:
        """The supervisor's counters, and ``decoder``: what decodes the current connection (``nvdec``
        or ``cpu``, when NVDEC does not take the stream's codec)."""
        return {**super().status(), "decoder": self.decoder}

    def _nvdec_for(self, stream, packet):
        """An NVDEC decoder for this connection, made at its first ``packet`` (a keyframe), or
        ``None`` (told once per reason) for the CPU. With ``orientation: auto`` the decoder turns
        frames by the stream's display matrix, read by decoding that packet once on the CPU (PyAV
        exposes no stream side data; see :func:`.orientation.stream_display_transform`)."""
        if self.nvdec_device is None:
            return None
        from ..errors import BackendUnavailableError, first_line, gpu_memory_error
        from .nvdec import NvdecDecoder, nvdec_codec, nvdec_unavailable_reason

        rotation, mirror = 0, False
        if (self.sc.orientation == "auto" and nvdec_unavailable_reason() is None
                and nvdec_codec(stream.codec_context.name) is not None):
            rotation, mirror = stream_display_transform(stream, packet)
        try:
            nvdec = NvdecDecoder(stream, self.nvdec_device, rotation=rotation, mirror=mirror)
            self.info.rotation, self.info.mirror = rotation, mirror
            return nvdec
        except Exception as exc:  # no NVDEC for this codec, or the decoder would not start
            oom = gpu_memory_error(exc, "NVDEC decoder", redact(first_line(exc)))
            if oom is not None:  # not moved to the CPU: a 1080p stream there slows every other
                raise oom from None
            why = str(exc) if isinstance(exc, BackendUnavailableError) else f"NVDEC decoder did not start ({exc})"
            if why not in self._told:
                self._told.add(why)
                log.warning("stream %s (%s): %s; decoding on the CPU", self.info.stream_id, self.display,
                            redact(why))
            return None

    def _open_args(self) -> tuple[str, Optional[str], dict]:
        kind, sc = self.uri.kind, self.sc
        options: dict[str, str] = {}
        fmt = sc.format
        target = self.uri.location
        # No fflags=nobuffer: it discards the packets read while probing the stream, and with them
        # the first keyframe, so a (re)connect would wait a whole GOP for its first frame. The few
        # probed frames are older; the stale-frame policy drops them.
        if kind == "rtsp":
            options.update({"rtsp_transport": sc.transport, "flags": "low_delay",
                            "max_delay": "500000", "reorder_queue_size": "0" if sc.transport == "tcp" else "64",
                            # the SDP carries the codec parameters: do not sit on 5 s of probing
                            "analyzeduration": "500000", "probesize": "262144"})
        elif kind == "http":
            options.update({"reconnect": "0"})
        elif kind == "v4l2":
            fmt = fmt or "video4linux2"
        options.update({str(k): str(v) for k, v in sc.options.items()})
        return target, fmt, options

    def _frames(self) -> Iterator[Any]:
        import av

        target, fmt, options = self._open_args()
        try:
            container = av.open(target, format=fmt, options=options,
                                timeout=(self.live_config.open_timeout_s, self.live_config.stall_timeout_s))
        except Exception as exc:
            raise self._open_failure(exc) from None
        nvdec = None
        try:
            if not container.streams.video:
                raise RuntimeError("no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"  # frame threading would delay every frame by the thread count
            ctx = stream.codec_context
            rate = stream.average_rate or stream.guessed_rate
            if rate and 1 <= float(rate) <= 240:
                self.info.fps = float(rate)
            self.info.codec = ctx.name
            last_frame = time.monotonic()
            bad_in_a_row = 0
            packets = frames_out = 0
            gating = ctx.name in _INTER_CODECS
            to_bgr = BgrFrames(turn=self.sc.orientation == "auto")
            choose = self.nvdec_device is not None  # NVDEC's decoder is made at the first packet decoded
            self.decoder = "nvdec" if choose else "cpu"
            for packet in _stall_is_named(container.demux(stream), self.live_config.stall_timeout_s):
                # the last, empty packet flushes the decoder (hardware decoders hold frames back)
                if gating and packet.size:
                    if not packet.is_keyframe:
                        self.supervisor.skipped_until_keyframe += 1
                        continue
                    gating = False
                elif gating:
                    continue
                if choose and packet.size:
                    choose = False
                    nvdec = self._nvdec_for(stream, packet)
                    self.decoder = "nvdec" if nvdec is not None else "cpu"
                packets += 1
                try:
                    if nvdec is not None:
                        frames = nvdec.decode(packet if packet.size else None)
                    else:
                        frames = packet.decode()
                    bad_in_a_row = 0
                except (av.error.FFmpegError, *_nvdec_errors(nvdec)) as exc:
                    self.stats.bad_frames += 1
                    self.stats.decode_errors += 1
                    bad_in_a_row += 1
                    if len(self.stats.errors) < 5:
                        self.stats.errors.append(_reason(exc))
                    if bad_in_a_row >= _MAX_BAD_PACKETS_IN_A_ROW:
                        raise RuntimeError(f"{bad_in_a_row} undecodable packets in a row") from None
                    continue
                for vframe in frames:
                    frames_out += 1
                    if nvdec is not None:  # already a BGR device array
                        self.info.height, self.info.width = int(vframe.shape[0]), int(vframe.shape[1])
                        yield vframe
                    else:
                        # one scaler per connection; side data read only when the rotation changes
                        image = to_bgr(vframe)
                        if to_bgr.turn:  # a display matrix, e.g. a phone's MP4 over HTTP
                            self.info.rotation, self.info.mirror = to_bgr.rotation, to_bgr.mirror
                        self.info.height, self.info.width = image.shape[:2]
                        yield image, vframe.pts, vframe.time_base if vframe.pts is not None else None
                    # After the yield: time spent waiting for a full lane (live.drop_stale: false,
                    # inference behind) is back-pressure, not a stall of the camera.
                    last_frame = time.monotonic()
                if time.monotonic() - last_frame > self.live_config.stall_timeout_s:
                    raise StallError(f"no frame for {self.live_config.stall_timeout_s:g} s (stall)")
            if packets > 1 and not frames_out:
                raise RuntimeError(f"{packets} packets but no decodable frame")
        finally:
            if nvdec is not None:
                nvdec.close()
            container.close()


    def _open_failure(self, exc: Exception) -> Exception:
        """A failed open in words (FFmpeg says "Input/output error" for an unknown host and "Immediate
        exit requested" for its own timeout), or a :class:`SourceError` when retrying cannot help: an
        unknown format, protocol or option, and before the first connection an invalid argument (a bad
        filter graph or option) or, for ``ffmpeg://`` inputs, a missing one."""
        import errno

        import av

        never = not self.supervisor.connected_once
        what = f"{self.display}: cannot open"
        if isinstance(exc, ValueError) and not isinstance(exc, av.error.FFmpegError):  # no container format 'x'
            return UnsupportedSourceError(f"{what}: {exc}")
        if isinstance(exc, (av.error.OptionNotFoundError, av.error.ProtocolNotFoundError,
                            av.error.DemuxerNotFoundError, av.error.FilterNotFoundError)) or (
                never and (getattr(exc, "errno", None) == errno.EINVAL
                           or (self.uri.kind == "ffmpeg" and getattr(exc, "errno", None) == errno.ENOENT))):
            hint = ""
            if self.uri.kind == "ffmpeg" and not self.sc.format:
                hint = (" (no input format was given: a filter graph needs format lavfi, e.g. "
                        "--set sources.0.format=lavfi)")
            return SourceError(f"{what}: {_reason(exc)}{hint}; not retrying")
        if isinstance(exc, av.error.ExitError):
            return StallError(f"no answer within {self.live_config.open_timeout_s:g} s (open timeout)")
        if getattr(exc, "errno", None) == errno.EIO and self.uri.kind in ("rtsp", "http"):
            unresolved = _unresolved_host(self.uri.location)
            if unresolved:
                return RuntimeError(unresolved)
        return exc


def _stall_is_named(packets: Iterator, stall_s: float) -> Iterator:
    """``packets``, with FFmpeg's read timeout ("Immediate exit requested") raised as a stall."""
    import av

    try:
        yield from packets
    except av.error.ExitError:
        raise StallError(f"no frame for {stall_s:g} s (stall)") from None


def _unresolved_host(url: str) -> Optional[str]:
    """``cannot resolve host cam.example (...)`` when the URL's host does not resolve, else None."""
    import socket
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        return f"cannot resolve host {host} ({exc.strerror})"
    except OSError:
        return None
    return None


def open_ffmpeg_live(uri: SourceURI, stream_id: str, *, threads: Optional[int] = None,
                     options: SourceConfig, live: LiveConfig, nvdec_device: Optional[int] = None) -> FFmpegLiveSource:
    """The :data:`~.registry.SourceKind.open` of the FFmpeg-demuxed live kinds (``threads`` unused:
    live decoding runs one slice-threaded decoder)."""
    return FFmpegLiveSource(uri, stream_id, options, live, nvdec_device)


def _v4l2_uri(scheme: str, rest: str, raw: str) -> SourceURI:
    parts = urlsplit(raw)
    device = parts.path or parts.netloc
    return SourceURI("v4l2", f"/dev/video{device}" if device.isdigit() else device, raw)


def _camera(raw: str) -> Optional[SourceURI]:
    """A bare camera index (``0``) or ``/dev/videoN`` is a V4L2 camera (as jetson-utils reads them)."""
    if raw.isdigit():
        return SourceURI("v4l2", f"/dev/video{raw}", raw)
    return SourceURI("v4l2", raw, raw) if raw.startswith("/dev/video") else None


def input_uri(kind: str) -> Callable[[str, str, str], SourceURI]:
    """``scheme://TEXT`` where TEXT is the input itself (an FFmpeg input, a GStreamer pipeline)."""

    def parse(scheme: str, rest: str, raw: str) -> SourceURI:
        if not rest.strip():
            raise SourceError(f"{redact(raw)}: empty {scheme}:// input")
        return SourceURI(kind, rest.strip(), raw)

    return parse


_FFMPEG_OPTIONS = frozenset({"options", "format", "orientation"})
register_source_kind(SourceKind("rtsp", open_ffmpeg_live, schemes=("rtsp", "rtsps", "rtspt"), live=True, nvdec=True,
                                options=_FFMPEG_OPTIONS | {"transport"}))
register_source_kind(SourceKind("http", open_ffmpeg_live, schemes=("http", "https"), live=True, nvdec=True,
                                options=_FFMPEG_OPTIONS))
register_source_kind(SourceKind("v4l2", open_ffmpeg_live, schemes=("v4l2",), live=True, nvdec=True,
                                options=_FFMPEG_OPTIONS, parse=_v4l2_uri, bare=_camera))
register_source_kind(SourceKind("ffmpeg", open_ffmpeg_live, schemes=("ffmpeg",), live=True, nvdec=True,
                                options=_FFMPEG_OPTIONS, parse=input_uri("ffmpeg")))
