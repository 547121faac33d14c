"""The stage graph of a run, built from the :class:`~streamtrt.runtime.components.Components`:
per engine a mux that the streams write into, a batcher and an inference stage; one postprocess
stage for all (each stream stays on one engine, so its frames stay in order); per stream its own
decode and preprocess stages (or one GPU decode stage), started when the stream joins."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections import Counter
from typing import Any, Callable, Optional

from ..engine import Runner
from ..errors import StreamTRTError
from ..redact import redact
from .batcher import BatchStage
from .components import Components, make_preprocessor
from .control import Control, StreamControl
from .gpu_decode import gpu_decode_stage
from .infer import InferStage
from .messages import TensorBatch
from .mux import StreamMux
from .outcome import describe
from .stages import DecodeStage, PostprocessStage, PreprocessStage, Stage
from .streams import StreamState
from .timing import StageTimer, merge_timers

log = logging.getLogger("streamtrt")
_DONE = ("ended", "failed", "removed")


@dataclasses.dataclass
class EngineGroup:
    """One engine and the stages feeding it: the streams it serves write into ``mux``."""

    index: int
    runner: Runner
    mux: StreamMux
    batches: "queue.Queue[Any]"
    batcher: BatchStage
    infer: InferStage


class Wiring:
    """Builds, starts and joins the stages; ``lock`` guards ``parts.streams`` and the stage list."""

    def __init__(self, parts: Components, lock: threading.RLock):
        self.parts = parts
        self.lock = lock
        self.groups: list[EngineGroup] = []
        self.postprocess_stage: Optional[PostprocessStage] = None
        self.latency = StageTimer("end_to_end")
        self._stages: list[Stage] = []
        self._queues: list[queue.Queue] = []

    def stages(self) -> list[Stage]:
        with self.lock:
            return list(self._stages)

    def build(self, control: Control, keep_running: Callable[[], bool]) -> "queue.Queue[Any]":
        """Start every stage; returns the queue the results come out of. ``keep_running``: whether
        the batchers wait for streams added later once every stream has ended."""
        p = self.parts
        rt = p.config.runtime
        inferred: queue.Queue = queue.Queue(maxsize=rt.slots * len(p.runners))
        results: queue.Queue = queue.Queue(maxsize=rt.slots)
        self._queues = [inferred, results]
        shared: list[Stage] = []
        for i, runner in enumerate(p.runners):
            mux, batches = StreamMux(), queue.Queue(maxsize=rt.slots)
            batcher = BatchStage(mux, rt.batch_size, rt.batch_timeout_ms / 1e3, control, batches, keep_running,
                                 self.stream_ended, rt.slots + 2)
            infer = InferStage(runner, control, batches, inferred, p.device_post, rt.batch_size)
            if len(p.runners) > 1:
                batcher.name, infer.name = f"{batcher.name}-e{i}", f"{infer.name}-e{i}"
            self.groups.append(EngineGroup(i, runner, mux, batches, batcher, infer))
            shared += [batcher, infer]
        post = PostprocessStage(p.postprocessor, control, inferred, results, self._tracking(),
                                snapshot=p.keep_images)
        post.upstreams = len(p.runners)
        self.postprocess_stage = post
        shared.append(post)
        with self.lock:
            self._stages = list(shared)
            for stream in p.streams.values():
                if stream.state != "removed" and not stream.stages:  # not added (launched) meanwhile
                    self.launch(stream, control)
        for stage in shared:
            stage.start()
        return results

    def _tracking(self) -> Optional[Callable[[str], Any]]:
        """Stream id -> a new :class:`~streamtrt.runtime.tracking.StreamTracking`, with the tracker on."""
        cfg, streams = self.parts.config, self.parts.streams
        if not cfg.tracker.enabled:
            return None
        from .tracking import StreamTracking

        return lambda sid: StreamTracking(cfg.tracker, cfg.analytics, cfg.postprocess.score_threshold,
                                          streams[sid].info.fps if sid in streams else None)

    def launch(self, stream: StreamState, control: Control) -> None:
        """Start a stream's own stages (decode, preprocess) writing into its engine's mux lane."""
        p = self.parts
        rt = p.config.runtime
        group = self.group_for(stream)
        stream.engine = group.index
        stream.control = StreamControl(control, lambda stage, exc: self.stream_failed(stream, stage, exc))
        lane_frames = p.config.live.queue_frames if stream.drop_stale else rt.slots
        inlet = group.mux.add(stream.id, lane_frames, stream.drop_stale, lambda item: self.dropped(stream, item))
        if stream.decoder == "dali-gpu":
            stages: list[Stage] = [gpu_decode_stage(stream, p.spec, p.config, p.keep_images, len(p.streams),
                                                    stream.control, inlet)]
        else:
            between: queue.Queue = queue.Queue(maxsize=rt.slots)
            stream.source.bind_stop(stream.control.stop, stream.control.abort)
            preprocess = make_preprocessor(p.plan, p.spec, p.config, stream.chunk, stream.decoder)
            stages = [DecodeStage(stream.source, stream.chunk, stream.control, between, rt.max_frames),
                      PreprocessStage(preprocess, p.keep_images, stream.control, between, inlet)]
        for stage in stages:
            stage.name = f"{stage.name}-{stream.id}"
        stream.stages = stages
        stream.state = "running" if not stream.live else "connecting"
        with self.lock:
            self._stages.extend(stages)
        for stage in stages:
            stage.start()

    def group_for(self, stream: StreamState) -> EngineGroup:
        """The engine group a stream joins: the one its config names, else the one with fewest streams."""
        alive = [g for g in self.groups if g.batcher.ident is None or g.batcher.is_alive()]
        wanted = stream.config.engine  # in range: checked by the config and add_source
        if wanted is not None:
            if self.groups[wanted] not in alive:
                raise StreamTRTError(f"stream {stream.id}: engine {wanted} has already finished")
            return self.groups[wanted]
        if not alive:
            raise StreamTRTError("the pipeline has ended; streams can no longer be added")
        active = Counter(st.engine for st in self.parts.streams.values()
                         if st.engine is not None and st.state not in _DONE)
        return min(alive, key=lambda g: (active[g.index], g.index))

    def dropped(self, stream: StreamState, item: TensorBatch) -> None:
        stream.count_dropped(len(item.meta))
        if item.release is not None:
            item.release.set()

    def stream_failed(self, stream: StreamState, stage: str, exc: BaseException) -> None:
        stream.state = "failed"
        stream.error = redact(describe(stage, exc))
        stream.exception = exc
        if stream.engine is not None and self.groups:
            for item in self.groups[stream.engine].mux.remove(stream.id):
                self.dropped(stream, item)
        if len(self.parts.streams) > 1 or self.parts.keep_alive:
            log.error("stream %s failed: %s", stream.id, stream.error)

    def stream_ended(self, stream_id: str) -> None:
        stream = self.parts.streams.get(stream_id)
        if stream is not None and stream.state not in ("failed", "removed"):
            stream.state = "ended"

    def join(self, timeout_s: float) -> None:
        for stage in self.stages():
            stage.join(timeout_s)

    def timers(self) -> list[StageTimer]:
        """One timer per stage kind (per-stream stages merged), tracking, then end to end."""
        out = merge_timers([s.timer for s in self.stages()])
        post = self.postprocess_stage
        if post is not None and post.tracking is not None:
            out.append(post.track_timer)
        return out + [self.latency]

    def queue_depths(self) -> dict[str, int]:
        """Items waiting between stages, by queue name."""
        depths = {"batches": sum(g.batches.qsize() for g in self.groups)}
        depths.update({n: q.qsize() for n, q in zip(["inferred", "results"], self._queues)})
        if self.groups:
            depths["streams"] = sum(sum(g.mux.depths().values()) for g in self.groups)
        return depths
