"""GPU decode: NVDEC decode and preprocessing in one DALI pipeline per stream, with a CPU fallback
for streams NVDEC gives up on, and the decoder factory that times frames from the packets."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
import time
from typing import Any, Callable, Iterator, Optional

from ..config import FALLBACK_FPS
from ..errors import DecodeError
from ..preprocess.dali import DaliGpuVideoDecoder, DeviceBatch, open_gpu_video_decoder
from ..preprocess.opencv import OpenCVPreprocessor
from ..sources import open_source
from ..sources.base import FrameSource, SourceStats
from ..sources.frametimes import presentation_times
from ..sources.pace import Pacer
from .control import Control
from .messages import FrameMeta, TensorBatch
from .stages import Stage

log = logging.getLogger("streamtrt")


class GpuDecodeStage(Stage):
    """NVDEC decode + GPU preprocessing in one DALI pipeline; batches stay in device memory.

    DALI owns each output until the runner is done with it (zero copy), so the next run waits
    for ``release``; DALI's own prefetch keeps decoding ahead meanwhile. ``decoder`` is a
    factory called on the stage's own thread, so many streams build their pipelines in parallel.
    """

    def __init__(self, decoder: Callable[[], DaliGpuVideoDecoder], stream_id: str, fps: Optional[float],
                 size: tuple[int, int], control: Control, outbox, max_frames: Optional[int] = None,
                 cpu_fallback: Optional[Callable[[], FrameSource]] = None, pace: bool = False):
        super().__init__("decode+preprocess", control, outbox)
        self.timestamps: Optional[list] = None  # each frame's presentation time, where the decoder knows them
        self.pace = pace
        self.make_decoder = decoder
        self.decoder: Optional[DaliGpuVideoDecoder] = None
        self.max_frames = max_frames
        self.cpu_fallback = cpu_fallback
        self.fallback_errors: list[str] = []
        self.fallback_stats: Optional[SourceStats] = None  # the CPU fallback's (frames it could not decode either)
        self.stream_id = stream_id
        self.fps = fps
        self.height, self.width = size

    def produce(self) -> Iterator[TensorBatch]:
        index = 0
        self.decoder = self.make_decoder()
        # frames come out upright: sizes in displayed pixels (height and width swapped for 90/270)
        self.height, self.width = self.decoder.height, self.decoder.width
        # DALI's video input gives no frame times: the decoder's factory reads them from the packets
        self.timestamps = self.decoder.timestamps
        pacer = Pacer(self.fps) if self.pace else None
        batches = iter(self.decoder)
        while not self.control.stop.is_set():
            started = time.perf_counter()
            try:
                device_batch: Optional[DeviceBatch] = next(batches, None)
            except DecodeError as exc:
                if self.cpu_fallback is None:
                    raise
                # NVDEC gives up on a corrupt stream; FFmpeg conceals and skips what it cannot decode.
                # (A GPU out of memory is a GpuMemoryError, not a DecodeError: it fails the stream,
                # because a 1080p stream moved to the CPU slows every other stream of the process.)
                log.warning("stream %s: %s; decoding the rest on the CPU", self.stream_id, exc)
                self.fallback_errors.append(str(exc))
                yield from self._decode_on_cpu(index)
                return
            if device_batch is None:
                return
            n = device_batch.shape[0]
            tensor: Any = device_batch
            if self.max_frames is not None and index + n > self.max_frames:
                n = self.max_frames - index  # the last sequence may run past max_frames
                tensor = device_batch.slice(0, n)
            self.timer.add(time.perf_counter() - started, n)
            now = time.perf_counter()
            arrived = [now] * n
            if pacer is not None:  # frames arrive at their timestamps, like a camera's
                pacer.start(now)
                arrived = [pacer.due(index + i, self._timestamp(index + i)) for i in range(n)]
                if Pacer.wait_until(arrived[-1], self.control.stop):
                    return
                arrived = [max(a, now) for a in arrived]
            meta = [FrameMeta(self.stream_id, index + i, self._timestamp(index + i), self.height, self.width, a)
                    for i, a in enumerate(arrived)]
            index += n
            images = list(device_batch.frames[:n]) if device_batch.frames is not None else None
            release = threading.Event()
            yield TensorBatch(meta, tensor, [self.decoder.geometry] * n, images, started, release)
            while not release.wait(0.05):
                if self.control.abort.is_set():
                    return
            if self.max_frames is not None and index >= self.max_frames:
                return

    def _timestamp(self, index: int) -> Optional[float]:
        if self.timestamps is not None and index < len(self.timestamps):
            return self.timestamps[index]
        if self.timestamps:  # more frames than packets: continue at the nominal rate
            return self.timestamps[-1] + (index - len(self.timestamps) + 1) / (self.fps or FALLBACK_FPS)
        return index / self.fps if self.fps else None

    def _decode_on_cpu(self, start: int) -> Iterator[TensorBatch]:
        """Frames ``start`` onwards from FFmpeg, preprocessed with OpenCV (host tensors)."""
        source = self.cpu_fallback()
        self.fallback_stats = source.stats
        preprocess = OpenCVPreprocessor(self.decoder.spec)
        keep = self.decoder.keep_frames
        frames = itertools.islice(iter(source), start, self.max_frames)
        try:
            while not self.control.stop.is_set():
                started = time.perf_counter()
                chunk = list(itertools.islice(frames, self.decoder.batch_size))
                if not chunk:
                    return
                tensor, geoms = preprocess([f.image for f in chunk])
                self.timer.add(time.perf_counter() - started, len(chunk))
                now = time.perf_counter()
                meta = [FrameMeta(self.stream_id, f.index, f.timestamp, f.image.shape[0], f.image.shape[1], now,
                                  f.pts, f.time_base, f.source_file) for f in chunk]
                yield TensorBatch(meta, tensor, geoms, [f.image for f in chunk] if keep else None, started)
        finally:
            source.close()

    def cleanup(self) -> None:
        if self.decoder is not None:
            self.decoder.close()


def gpu_decode_stage(stream: Any, spec: Any, config: Any, keep_images: bool, streams: int,
                     control: Control, outbox: Any) -> GpuDecodeStage:
    """The GPU decode stage of one video-file ``stream`` (a :class:`~streamtrt.runtime.streams.StreamState`),
    writing ``outbox``. ``streams``: how many streams share the machine (DALI's CPU threads are split)."""
    rt = config.runtime
    info = stream.info
    make = functools.partial(
        open_gpu_video_decoder, stream.uri.location, info, spec, stream.chunk,
        device_id=rt.device_id, keep_frames=keep_images, prefetch=rt.slots,
        threads=rt.threads or max(1, min(4, (os.cpu_count() or 4) // max(1, streams))),
    )

    def decoder() -> DaliGpuVideoDecoder:
        # NVDEC gives frames as stored, turned upright on the GPU by the probe's rotation/mirror
        # (none with orientation: ignore); and without their times: those (and the real frame
        # count, not an estimate) come from the packets, timed as the CPU path times them
        times = presentation_times(stream.uri.location, info.fps, info.uri)
        if times:
            stream.expected_frames = min(len(times), rt.max_frames or len(times))
        dec = make(stream.expected_frames or 0)
        dec.timestamps = times
        promised = None if info.frame_count_estimated else info.frame_count
        if times and promised and promised > len(times):
            # the index promises frames the file does not hold (truncated): they count as missing
            stream.expected_frames = min(promised, rt.max_frames or promised)
        return dec

    def fallback() -> FrameSource:
        return open_source(stream.uri, stream.id, rt.threads, stream.config)

    return GpuDecodeStage(decoder, stream.id, info.fps, (info.height, info.width), control, outbox,
                          rt.max_frames, cpu_fallback=fallback, pace=stream.config.pace)
