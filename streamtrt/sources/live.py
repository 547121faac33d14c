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
from typing import Iterator, Optional

import numpy as np

from ..config import LiveConfig, SourceConfig
from ..errors import UnsupportedSourceError
from .base import Frame, FrameSource, SourceInfo, SourceStats
from .file import _ffmpeg_reason
from .supervisor import AnyEvent, StallError, Supervisor
from .uri import GSTREAMER_LIVE_KINDS, SourceURI, redact

log = logging.getLogger("streamtrt")
_MAX_BAD_PACKETS_IN_A_ROW = 50  # then the stream is treated as broken and reconnected
# Codecs whose frames reference earlier ones: after a (re)connect, decoding starts at a keyframe.
_INTER_CODECS = frozenset({"h264", "hevc", "h265", "mpeg4", "mpeg2video", "mpeg1video", "vp8", "vp9", "av1", "h263"})


class SupervisedSource(FrameSource):
    """Common loop: connect, read frames, reconnect on failure, until stopped."""

    def __init__(self, uri: SourceURI, stream_id: str, sc: SourceConfig, live: LiveConfig):
        self.uri = uri
        self.display = uri.display
        self.sc = sc
        self.live = live
        self.info = SourceInfo(stream_id=stream_id, uri=uri.display, is_live=True)
        self.stats = SourceStats()
        self.stop = threading.Event()
        self.supervisor = Supervisor(uri.display, live, self.stop)
        self.endless = sc.live is not False  # a non-live network file ends at its end

    def bind_stop(self, *events) -> None:
        """Also stop (during a backoff wait, or between frames) when any of ``events`` is set."""
        self.supervisor.stop = AnyEvent(self.stop, *events)

    def _frames(self) -> Iterator[np.ndarray]:
        """One connection: yields BGR images, from a keyframe on; returns at end of stream."""
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
                for image in self._frames():
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
                    yield Frame(image=image, index=index, timestamp=now - t0)
                    index += 1
                if not self.endless:
                    sup.state = "ended"
                    return
                reason = "end of stream"
            except StallError as exc:
                reason = str(exc)
            except UnsupportedSourceError:
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
    text = (_ffmpeg_reason(exc) or "").strip()
    return redact(text.splitlines()[0] if text else type(exc).__name__)


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

    def _nvdec_for(self, stream):
        """An NVDEC decoder for this connection, or ``None`` (told once per reason) for the CPU."""
        if self.nvdec_device is None:
            return None
        from ..errors import BackendUnavailableError
        from .nvdec import NvdecDecoder

        try:
            return NvdecDecoder(stream, self.nvdec_device)
        except Exception as exc:  # no NVDEC for this codec, or the decoder would not start
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

    def _frames(self) -> Iterator[np.ndarray]:
        import av

        target, fmt, options = self._open_args()
        container = av.open(target, format=fmt, options=options,
                            timeout=(self.live.open_timeout_s, self.live.stall_timeout_s))
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
            nvdec = self._nvdec_for(stream)
            self.decoder = "nvdec" if nvdec is not None else "cpu"
            for packet in container.demux(stream):
                # the last, empty packet flushes the decoder (hardware decoders hold frames back)
                if gating and packet.size:
                    if not packet.is_keyframe:
                        self.supervisor.skipped_until_keyframe += 1
                        continue
                    gating = False
                elif gating:
                    continue
                packets += 1
                try:
                    if nvdec is not None:
                        frames = nvdec.decode(packet if packet.size else None)
                    else:
                        frames = packet.decode()
                    bad_in_a_row = 0
                except (av.error.FFmpegError, *_nvdec_errors(nvdec)) as exc:
                    self.stats.bad_frames += 1
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
                        self.info.width, self.info.height = vframe.width, vframe.height
                        yield vframe.to_ndarray(format="bgr24")
                    # After the yield: time spent waiting for a full lane (live.drop_stale: false,
                    # inference behind) is back-pressure, not a stall of the camera.
                    last_frame = time.monotonic()
                if time.monotonic() - last_frame > self.live.stall_timeout_s:
                    raise StallError(f"no frame for {self.live.stall_timeout_s:g} s")
            if packets > 1 and not frames_out:
                raise RuntimeError(f"{packets} packets but no decodable frame")
        finally:
            if nvdec is not None:
                nvdec.close()
            container.close()


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
        import cv2

        from .gstreamer import opencv_has_gstreamer

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
                reader.join(self.live.stall_timeout_s)
                if reader.is_alive():
                    raise StallError(f"no frame for {self.live.stall_timeout_s:g} s")
                ok, image = result.pop()
                if not ok:
                    return
                self.info.height, self.info.width = image.shape[:2]
                yield image
        finally:
            cap.release()


def open_live_source(uri: SourceURI, stream_id: str, sc: Optional[SourceConfig],
                     live: Optional[LiveConfig], nvdec_device: Optional[int] = None) -> FrameSource:
    sc = sc or SourceConfig(uri=uri.raw)
    live = live or LiveConfig()
    if uri.kind in GSTREAMER_LIVE_KINDS:
        return GStreamerLiveSource(uri, stream_id, sc, live)
    return FFmpegLiveSource(uri, stream_id, sc, live, nvdec_device)
