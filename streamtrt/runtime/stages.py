"""The stage threads. Each reads one queue, writes the next, times its work, forwards the end
of stream, and reports its exception to the :class:`Control` instead of dying silently.

Here: the base :class:`Stage`, CPU decode, host preprocessing and postprocessing; inference is in
:mod:`.infer`, GPU decode in :mod:`.gpu_decode`, batching in :mod:`.batcher`."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Optional

from ..postprocess.postprocessor import Postprocessor
from ..sources.base import FrameSource
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
