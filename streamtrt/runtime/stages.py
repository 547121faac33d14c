"""The stage threads. Each reads one queue, writes the next, times its work, forwards the end
of stream, and reports its exception to the :class:`Control` instead of dying silently."""

from __future__ import annotations

import itertools
import logging
import queue
from collections import deque
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

from ..engine.base import Runner
from ..tensors import DeviceView, is_device_tensor
from ..postprocess.postprocessor import Postprocessor
from ..errors import DecodeError
from ..preprocess.dali import DaliGpuVideoDecoder, DeviceBatch
from ..preprocess.opencv import OpenCVPreprocessor
from ..sources.base import FrameSource, SourceStats
from ..sources.nvdec import to_host_bgr
from .control import Control
from .messages import EOS, FrameBatch, FrameMeta, FrameResult, OutputBatch, ResultBatch, TensorBatch
from .timing import StageTimer


log = logging.getLogger("streamtrt")


class Stage(threading.Thread):
    """Runs ``produce`` (a source) or ``process`` (one item in, items out) on its own thread."""

    def __init__(self, name: str, control: Control, outbox: "queue.Queue[Any]",
                 inbox: Optional["queue.Queue[Any]"] = None):
        super().__init__(name=f"streamtrt-{name}", daemon=True)
        self.stage_name = name
        self.control = control
        self.inbox = inbox
        self.outbox = outbox
        self.timer = StageTimer(name)
        self.upstreams = 1  # stages writing the inbox; each ends with one EOS

    def run(self) -> None:
        try:
            if self.inbox is None:
                self._emit_all(self.produce())
            else:
                ended = 0
                while True:
                    item = self.control.get(self.inbox)
                    if item is None:
                        break
                    if item is EOS:
                        ended += 1
                        if ended < self.upstreams:
                            continue
                        self._emit_all(self.flush())
                        break
                    self._emit_all(self.process(item))
            self.control.put(self.outbox, EOS)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller
            self.control.fail(self.stage_name, exc)
        finally:
            self.cleanup()

    def _emit_all(self, items: Iterable[Any]) -> None:
        for out in items:
            if not self.control.put(self.outbox, out):
                return

    def produce(self) -> Iterator[Any]:
        raise NotImplementedError

    def process(self, item: Any) -> Iterable[Any]:
        raise NotImplementedError

    def flush(self) -> Iterable[Any]:
        """Items still held when the stream ends."""
        return ()

    def cleanup(self) -> None:
        pass


class DecodeStage(Stage):
    """CPU decode: frames from a :class:`FrameSource`, grouped into batches."""

    def __init__(self, source: FrameSource, batch_size: int, control: Control, outbox,
                 max_frames: Optional[int] = None):
        super().__init__("decode", control, outbox)
        self.source = source
        self.batch_size = batch_size
        self.max_frames = max_frames

    def produce(self) -> Iterator[FrameBatch]:
        sid = self.source.info.stream_id
        frames = iter(self.source)
        if self.max_frames is not None:
            frames = itertools.islice(frames, self.max_frames)
        while not self.control.stop.is_set():
            started = time.perf_counter()
            meta, images = [], []
            for frame in frames:
                h, w = frame.image.shape[:2]
                meta.append(FrameMeta(sid, frame.index, frame.timestamp, h, w, time.perf_counter(),
                                      frame.pts, frame.time_base, frame.source_file))
                images.append(frame.image)
                if len(images) == self.batch_size or self.control.stop.is_set():
                    break
            if not images:
                return
            self.timer.add(time.perf_counter() - started, len(images))
            yield FrameBatch(meta, images, started)

    def cleanup(self) -> None:
        self.source.close()


class PreprocessStage(Stage):
    """Host frames -> model tensor (DALI CPU or OpenCV)."""

    def __init__(self, preprocess: Callable, keep_images: bool, control: Control, inbox, outbox):
        super().__init__("preprocess", control, outbox, inbox)
        self.preprocess = preprocess
        self.keep_images = keep_images

    def process(self, batch: FrameBatch) -> Iterable[TensorBatch]:
        t0 = time.perf_counter()
        tensor, geoms = self.preprocess(batch.images)
        self.timer.add(time.perf_counter() - t0, len(batch.meta))
        images = [to_host_bgr(im) for im in batch.images] if self.keep_images else None  # NVDEC frames: to host
        yield TensorBatch(batch.meta, tensor, geoms, images, batch.started)


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
        t0 = 0.0
        self.decoder = self.make_decoder()
        # frames come out upright: sizes in displayed pixels (height and width swapped for 90/270)
        self.height = getattr(self.decoder, "height", self.height)
        self.width = getattr(self.decoder, "width", self.width)
        # DALI's video input gives no frame times: the decoder's factory reads them from the packets
        self.timestamps = getattr(self.decoder, "timestamps", None)
        batches = iter(self.decoder)
        while not self.control.stop.is_set():
            started = time.perf_counter()
            try:
                device_batch: Optional[DeviceBatch] = next(batches, None)
            except DecodeError as exc:
                if self.cpu_fallback is None:
                    raise
                # NVDEC gives up on a corrupt stream; FFmpeg conceals and skips what it cannot decode.
                log.info("%s; decoding the rest on the CPU", exc)  # the final error line names it
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
            if self.pace:  # frames arrive at their timestamps, like a camera's
                t0 = t0 if index else now
                arrived = [t0 + (t if t is not None else (index + i) / (self.fps or 30.0))
                           for i, t in enumerate(self._timestamp(index + i) for i in range(n))]
                wait = arrived[-1] - time.perf_counter()
                if wait > 0 and self.control.stop.wait(wait):
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
            return self.timestamps[-1] + (index - len(self.timestamps) + 1) / (self.fps or 30.0)
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


class InferStage(Stage):
    """Runs the model. Runners with several device slots (TensorRT) get the next batch
    submitted before the previous one is collected; batches larger than a fixed-batch model
    accepts are split, smaller ones padded."""

    def __init__(self, runner: Runner, control: Control, inbox, outbox,
                 device_post: Optional[Callable[[dict], dict]] = None, batch_size: Optional[int] = None):
        super().__init__("infer", control, outbox, inbox)
        self.runner = runner
        self.device_post = device_post  # GPU decode+NMS on the device outputs: only detections come back
        # A batch-dynamic model on the GPU always gets full batches (padded; outputs trimmed), so
        # cuDNN tunes one shape once instead of every size a timeout-cut batch can have.
        self.pad_to = batch_size if runner.device == "cuda" and runner.max_batch is None else None
        self.input_name = runner.inputs[0].name
        self._pending: deque[tuple[TensorBatch, float, Optional[int]]] = deque()

    def _padded(self, tensor: Any) -> tuple[Any, Optional[int]]:
        """``tensor`` grown to ``pad_to`` rows where that is free (a pool buffer) or cheap (host)."""
        n = int(tensor.shape[0])
        if self.pad_to is None or n >= self.pad_to:
            return tensor, None
        if isinstance(tensor, np.ndarray):
            pad = np.zeros((self.pad_to - n,) + tensor.shape[1:], tensor.dtype)
            return np.concatenate([tensor, pad]), n
        if getattr(tensor, "capacity", 0) >= self.pad_to:
            return DeviceView(tensor.ptr, (self.pad_to,) + tuple(tensor.shape[1:]), tensor.itemsize,
                              tensor.capacity), n
        return tensor, None

    def process(self, batch: TensorBatch) -> Iterable[OutputBatch]:
        t0 = time.perf_counter()
        tensor, keep = self._padded(batch.tensor)
        if keep is not None:
            batch = TensorBatch(batch.meta, tensor, batch.geometries, batch.images, batch.started, batch.release)
        if self.device_post is not None:
            yield self._run_now(batch, t0, keep, lambda t: run_batched_on_device(
                self.runner, self.input_name, t, self.device_post))
            return
        limit = self.runner.max_batch
        if self.runner.in_flight > 1 and (limit is None or len(batch.meta) <= limit):
            try:
                ticket = self.runner.submit({self.input_name: batch.tensor})
                self.runner.wait_inputs_consumed(ticket)
            finally:
                if batch.release is not None:
                    batch.release.set()
            self._pending.append((batch, t0, keep))
            if len(self._pending) >= self.runner.in_flight:
                yield self._collect()
            return
        yield from self.flush()
        yield self._run_now(batch, t0, keep, lambda t: run_batched(self.runner, self.input_name, t))

    def _run_now(self, batch: TensorBatch, t0: float, keep: Optional[int], run: Callable) -> OutputBatch:
        """Run a batch to completion; outputs of padding rows dropped, the input released."""
        try:
            outputs = run(batch.tensor)
            if keep is not None:
                outputs = {k: v[:keep] for k, v in outputs.items()}
        finally:
            if batch.release is not None:
                batch.release.set()
        self.timer.add(time.perf_counter() - t0, len(batch.meta))
        return OutputBatch(batch.meta, outputs, batch.geometries, batch.images, batch.started)

    def _collect(self) -> OutputBatch:
        batch, t0, keep = self._pending.popleft()
        outputs = self.runner.collect()
        if keep is not None:
            outputs = {k: v[:keep] for k, v in outputs.items()}
        self.timer.add(time.perf_counter() - t0, len(batch.meta))
        return OutputBatch(batch.meta, outputs, batch.geometries, batch.images, batch.started)

    def flush(self) -> Iterable[OutputBatch]:
        while self._pending:
            yield self._collect()


def run_batched(runner: Runner, input_name: str, tensor: Any) -> dict[str, np.ndarray]:
    """Run ``tensor`` (N, ...) through ``runner`` in chunks the model accepts; concatenate outputs."""
    n = int(tensor.shape[0])
    limit = runner.max_batch
    on_device = is_device_tensor(tensor)
    if limit is None or limit == n:
        if on_device and runner.device == "cpu":
            tensor = tensor.to_host()
        return runner.infer({input_name: tensor})
    if on_device and runner.device == "cuda" and n % limit == 0:
        chunks = [tensor.slice(i, i + limit) for i in range(0, n, limit)]
        sizes = [limit] * (n // limit)
    else:
        host = tensor.to_host() if on_device else tensor
        chunks, sizes = [], []
        for i in range(0, n, limit):
            part = host[i:i + limit]
            sizes.append(len(part))
            if len(part) < limit:
                part = np.concatenate([part, np.zeros((limit - len(part),) + part.shape[1:], part.dtype)])
            chunks.append(part)
    if runner.in_flight > 1 and runner.device == "cpu":  # the CPU thread plan runs chunks side by side
        for c in chunks:
            runner.submit({input_name: c})
        results = [runner.collect() for _ in chunks]
    else:
        results = [runner.infer({input_name: c}) for c in chunks]
    return {name: np.concatenate([r[name][:s] for r, s in zip(results, sizes)]) for name in results[0]}


def run_batched_on_device(runner: Runner, input_name: str, tensor: Any,
                          device_post: Callable[[dict], dict]) -> dict[str, np.ndarray]:
    """Like :func:`run_batched`, with outputs kept on the device and reduced there by
    ``device_post`` (per chunk) to small host arrays, concatenated."""
    n = int(tensor.shape[0])
    limit = runner.max_batch
    if limit is None or limit == n:
        return device_post(runner.infer_on_device({input_name: tensor}))
    on_device = is_device_tensor(tensor)
    parts, sizes = [], []
    if on_device and n % limit == 0:
        for i in range(0, n, limit):
            parts.append(device_post(runner.infer_on_device({input_name: tensor.slice(i, i + limit)})))
            sizes.append(limit)
    else:
        host = tensor.to_host() if on_device else tensor
        for i in range(0, n, limit):
            part = host[i:i + limit]
            sizes.append(len(part))
            if len(part) < limit:
                part = np.concatenate([part, np.zeros((limit - len(part),) + part.shape[1:], part.dtype)])
            parts.append(device_post(runner.infer_on_device({input_name: part})))
    return {name: np.concatenate([p[name][:s] for p, s in zip(parts, sizes)]) for name in parts[0]}


class PostprocessStage(Stage):
    """Raw outputs -> per-frame results with detections in source pixels; then, per stream and
    in frame order, tracking and analytics (timed on their own)."""

    def __init__(self, postprocess: Postprocessor, control: Control, inbox, outbox,
                 tracking: Optional[Callable[[str], Any]] = None, snapshot: bool = False):
        super().__init__("postprocess", control, outbox, inbox)
        self.postprocess = postprocess
        self.tracking = tracking  # stream id -> a StreamTracking
        self.per_stream: dict[str, Any] = {}
        self.snapshot = snapshot
        self.track_timer = StageTimer("track+analytics")

    def process(self, batch: OutputBatch) -> Iterable[ResultBatch]:
        t0 = time.perf_counter()
        sizes = [(m.height, m.width) for m in batch.meta]
        detections = self.postprocess(batch.outputs, batch.geometries, sizes)
        t1 = time.perf_counter()
        self.timer.add(t1 - t0, len(batch.meta))
        results = []
        for i, (m, d) in enumerate(zip(batch.meta, detections)):
            events, counts = [], None
            if self.tracking is not None:
                state = self.per_stream.get(m.stream_id)
                if state is None:
                    state = self.per_stream[m.stream_id] = self.tracking(m.stream_id)
                d, events = state.update(d, m)
                counts = state.summary() if self.snapshot else None
            results.append(FrameResult(m.stream_id, m.index, m.timestamp, m.width, m.height, d,
                                       batch.images[i] if batch.images is not None else None, 0.0, events, counts,
                                       pts=m.pts, time_base=m.time_base, source_file=m.source_file))
        now = time.perf_counter()
        if self.tracking is not None:
            self.track_timer.add(now - t1, len(batch.meta))
        for r, m in zip(results, batch.meta):
            r.latency_ms = (now - (m.started or batch.started)) * 1e3
        yield ResultBatch(results)
