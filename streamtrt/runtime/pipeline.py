"""The orchestrator: builds the stages a config asks for, wires them with bounded queues,
and yields per-frame results while writing them to the sinks."""

from __future__ import annotations

import dataclasses
import logging
import queue
import uuid
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from ..config import Config, load_config
from ..engine import Runner, create_runner
from ..errors import ModelError, PipelineError, StreamTRTError
from ..postprocess.classes import load_class_names
from ..postprocess.decoders import select_decoder
from ..postprocess.postprocessor import Postprocessor
from ..preprocess.dali import DaliCpuPreprocessor, DaliGpuVideoDecoder
from ..preprocess.opencv import OpenCVPreprocessor
from ..preprocess.spec import PreprocessSpec
from ..sinks import Sink, open_sink
from ..sources import SourceInfo, SourceStats, decode_error_for, open_source, parse_source_uri, probe_video
from .control import Control
from .messages import EOS, FrameResult
from .plan import Plan, make_plan
from .stages import DecodeStage, GpuDecodeStage, InferStage, PostprocessStage, PreprocessStage, Stage
from .summary import RunSummary
from .timing import StageTimer

_JOIN_TIMEOUT_S = 10.0
log = logging.getLogger("streamtrt")


class Pipeline:
    """A detector running over one source.

    >>> with Pipeline.from_config("configs/sample.yaml") as pipe:   # doctest: +SKIP
    ...     for result in pipe:
    ...         print(result.frame_index, len(result.detections))

    Construction loads the model and opens the source, so configuration, model and input
    errors surface before any thread starts. Iterating runs the stages concurrently: decoding
    and preprocessing of batch N+1 overlap inference of batch N and postprocessing of N-1.
    A pipeline runs once.
    """

    def __init__(self, config: Config, sinks: Optional[list[Sink]] = None, keep_images: bool = False,
                 report: Optional[Callable[[str], None]] = None):
        self.config = config
        rt = config.runtime
        self.uri = parse_source_uri(config.source)
        self.plan: Plan = make_plan(rt, self.uri)
        self.class_names = load_class_names(config.model.classes)
        self.sinks = sinks if sinks is not None else [open_sink(s) for s in config.sinks]
        self.keep_images = keep_images or any(s.needs_images for s in self.sinks)
        for sink in self.sinks:
            if hasattr(sink, "analytics_config"):
                sink.analytics_config = config.analytics
        self._source = None
        if self.plan.decoder == "cpu":
            self._source = open_source(self.uri, threads=rt.threads)
            self.source_info: SourceInfo = self._source.info
        elif self.plan.decoder == "gstreamer":
            from ..sources.gstreamer import GStreamerFileSource

            self._source = GStreamerFileSource(self.uri.location, self.uri.display)
            self.source_info = self._source.info
        else:
            self.source_info = probe_video(Path(self.uri.location), self.uri.display)
        if rt.memory_budget_mb and self.plan.runner == "tensorrt" and config.tensorrt.workspace_mb is None:
            from .budget import derive_workspace_mb

            ws = derive_workspace_mb(rt.memory_budget_mb, None)
            config = self.config = config.model_copy(
                update={"tensorrt": config.tensorrt.model_copy(update={"workspace_mb": ws})})
        # Engine builds take minutes: say so (and why) unless the caller reports elsewhere.
        self.runner: Runner = create_runner(self.plan.runner, config, spin=self.plan.decoder == "dali-gpu",
                                            report=report or log.warning)
        try:
            self.spec = self._input_spec()
            low = config.tracker.low_threshold if config.tracker.enabled else None
            self.postprocessor = Postprocessor(self._select_decoder(), self.class_names, config.postprocess, low)
            self._fit_budget(report or log.warning)
            self._preprocess = self._make_preprocessor()
        except BaseException:
            self.close()
            raise
        self.summary = RunSummary(source=self.uri.display, plan=self.plan.as_dict())
        count = self.source_info.frame_count
        self.expected_frames = min(count, rt.max_frames) if count and rt.max_frames else (count or rt.max_frames)
        self._control: Optional[Control] = None
        self._stages: list[Stage] = []
        self._queues: list[queue.Queue] = []
        self._latency = StageTimer("end_to_end")
        self._started = False
        self.run_id = uuid.uuid4().hex[:12]
        self.frames_per_stream: Counter = Counter()
        self._fps_window: deque = deque(maxlen=2048)  # (time, stream) of recent frames
        self.metrics = None

    @classmethod
    def from_config(cls, config: Union[str, Path, dict, Config], overrides: Optional[list[str]] = None,
                    **kwargs: Any) -> "Pipeline":
        """Build a pipeline from a YAML path, a mapping or a :class:`Config`, with ``key=value`` overrides."""
        return cls(load_config(config, overrides), **kwargs)

    # -- construction helpers ------------------------------------------------------------------
    def _input_spec(self) -> PreprocessSpec:
        info = self.runner.inputs[0]
        shape = info.shape
        if len(shape) != 4 or shape[1] not in (3, None):
            raise ModelError(f"{self.config.model.path}: input {info.name} {list(shape)} is not an NCHW image tensor")
        if info.dtype not in (np.float32, np.float16):
            raise ModelError(f"{self.config.model.path}: input dtype {info.dtype} is not supported (float32/float16)")
        cfg_in = self.config.model.input
        h, w = shape[2], shape[3]
        if not isinstance(h, int) or not isinstance(w, int):
            if cfg_in.size is None:
                raise ModelError(f"{self.config.model.path}: input size is dynamic; set model.input.size: [height, width]")
            h, w = cfg_in.size
        return PreprocessSpec.from_config(cfg_in, h, w, "float16" if info.dtype == np.float16 else "float32")

    def _fit_budget(self, report: Callable[[str], None]) -> None:
        rt = self.config.runtime
        if not rt.memory_budget_mb:
            return
        from .budget import plan_budget

        info = self.source_info
        plan = plan_budget(
            rt.memory_budget_mb, frame_hw=(info.height or 1080, info.width or 1920),
            input_chw=(3, self.spec.height, self.spec.width), itemsize=self.spec.np_dtype.itemsize,
            batch=rt.batch_size, slots=rt.slots, keep_images=self.keep_images,
            model_bytes=Path(self.config.model.path).stat().st_size,
            workspace_mb=self.config.tensorrt.workspace_mb if self.plan.runner == "tensorrt" else None,
        )
        if plan.slots != rt.slots:
            report(f"memory budget {rt.memory_budget_mb} MB: runtime.slots lowered from {rt.slots} to {plan.slots}")
            self.config = self.config.model_copy(update={"runtime": rt.model_copy(update={"slots": plan.slots})})

    def _select_decoder(self):
        """Run one zero batch to learn the real output shapes (exports often leave them undeclared)."""
        info = self.runner.inputs[0]
        batch = info.fixed_batch or 1
        dummy = np.zeros((batch, 3, self.spec.height, self.spec.width), self.spec.np_dtype)
        outputs = self.runner.infer({info.name: dummy})
        shapes = {name: tuple(int(d) for d in arr.shape) for name, arr in outputs.items()}
        return select_decoder(self.config.model.format, shapes, (self.spec.height, self.spec.width),
                              len(self.class_names))

    def _make_preprocessor(self) -> Optional[Callable]:
        rt = self.config.runtime
        if self.plan.preprocessor == "dali-cpu":
            return DaliCpuPreprocessor(self.spec, rt.batch_size, rt.threads)
        if self.plan.preprocessor == "opencv":
            return OpenCVPreprocessor(self.spec)
        return None  # dali-gpu: decode and preprocess are one DALI pipeline, built per run

    def _build_stages(self, control: Control) -> tuple[list[Stage], "queue.Queue[Any]"]:
        rt = self.config.runtime
        queues = self._queues = [queue.Queue(maxsize=rt.slots) for _ in range(4)]
        stages: list[Stage] = []
        if self.plan.decoder in ("cpu", "gstreamer"):
            stages.append(DecodeStage(self._source, rt.batch_size, control, queues[0], rt.max_frames))
            stages.append(PreprocessStage(self._preprocess, self.keep_images, control, queues[0], queues[1]))
        else:
            info = self.source_info
            decoder = DaliGpuVideoDecoder(
                self.uri.location, self.spec, rt.batch_size, self.expected_frames or 0, info.height, info.width,
                device_id=rt.device_id, keep_frames=self.keep_images, prefetch=rt.slots,
            )
            fallback = lambda: open_source(self.uri, info.stream_id, rt.threads)  # noqa: E731
            stages.append(GpuDecodeStage(decoder, info.stream_id, info.fps, (info.height, info.width),
                                         control, queues[1], rt.max_frames, cpu_fallback=fallback))
        stages.append(InferStage(self.runner, control, queues[1], queues[2]))
        tracking = None
        if self.config.tracker.enabled:
            from ..track.stream import StreamTracking

            cfg, fps = self.config, self.source_info.fps
            tracking = lambda sid: StreamTracking(cfg.tracker, cfg.analytics,  # noqa: E731
                                                  cfg.postprocess.score_threshold, fps)
        stages.append(PostprocessStage(self.postprocessor, control, queues[2], queues[3], tracking,
                                       snapshot=self.keep_images))
        return stages, queues[3]

    # -- running -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[FrameResult]:
        if self._started:
            raise StreamTRTError("a Pipeline runs once; create a new one for another run")
        self._started = True
        control = self._control = Control()
        opened: list[Sink] = []
        stages: list[Stage] = []
        latency = self._latency
        t0 = time.perf_counter()
        try:
            if self.config.metrics.enabled:
                from .metrics import MetricsServer

                m = self.config.metrics
                self.metrics = MetricsServer(self, m.host, m.port)
                log.warning("metrics at http://%s:%d/metrics", *self.metrics.address[:2])
            for sink in self.sinks:
                sink.open(self.source_info.fps)
                opened.append(sink)
            stages, results = self._build_stages(control)
            self._stages = stages
            for stage in stages:
                stage.start()
            yield from self._consume(control, results, opened, latency)
        finally:
            control.abort.set()
            for stage in stages:
                stage.join(_JOIN_TIMEOUT_S)
            self._finish_summary(stages, latency, time.perf_counter() - t0)
            self._close_sinks(opened)
            if self.metrics is not None:
                self.metrics.close()
            self.close()
        self._raise_failure()

    def _consume(self, control: Control, results: "queue.Queue[Any]", sinks: list[Sink],
                 latency: StageTimer) -> Iterator[FrameResult]:
        summary = self.summary
        while True:
            try:
                item = control.get(results)
            except KeyboardInterrupt:
                self._interrupt()
                continue
            if item is None or item is EOS:
                return
            for result in item.results:
                result.message_id = f"{self.run_id}:{result.stream_id}:{result.frame_index}"
                if result.events:
                    result.events = [dataclasses.replace(e, message_id=f"{result.message_id}:e{k}")
                                     for k, e in enumerate(result.events)]
                summary.frames += 1
                self.frames_per_stream[result.stream_id] += 1
                self._fps_window.append((time.monotonic(), result.stream_id))
                summary.detections += len(result.detections)
                summary.per_class.update(result.detections.class_name)
                latency.add(result.latency_ms / 1e3)
                summary.events.update(e.kind for e in result.events)
                for sink in sinks:
                    sink.write(result)
                    for event in result.events:
                        sink.write_event(event)
                yield result

    # -- live state, for metrics and status lines -----------------------------------------------
    def recent_fps(self, window_s: float = 5.0) -> dict[str, float]:
        now = time.monotonic()
        recent = [sid for t, sid in list(self._fps_window) if now - t <= window_s]
        return {sid: n / window_s for sid, n in Counter(recent).items()}

    def timers(self) -> list[StageTimer]:
        out = [s.timer for s in self._stages]
        out += [s.track_timer for s in self._stages if isinstance(s, PostprocessStage) and s.tracking is not None]
        return out + [self._latency]

    def queue_depths(self) -> dict[str, int]:
        names = ["decoded", "preprocessed", "inferred", "results"]
        return {n: q.qsize() for n, q in zip(names, self._queues)}

    def bad_frames_now(self) -> int:
        return self._source.stats.bad_frames if self._source is not None else self.summary.bad_frames

    def pending_records(self) -> int:
        """Records waiting in network sinks' outboxes."""
        return sum(s.pending() for s in self.sinks if hasattr(s, "pending"))

    def _interrupt(self) -> None:
        """First Ctrl-C: stop reading and drain what is in flight. Second: abort."""
        control = self._control
        if control is None:
            raise KeyboardInterrupt
        if control.stop.is_set():
            control.abort.set()
            raise KeyboardInterrupt
        self.summary.interrupted = True
        control.stop.set()

    def stop(self) -> None:
        """End the stream gracefully: results already in flight still reach the sinks."""
        if self._control is not None:
            self.summary.interrupted = True
            self._control.stop.set()

    def run(self, on_result: Optional[Callable[[FrameResult], None]] = None) -> RunSummary:
        """Run to the end (or until Ctrl-C, which drains and flushes), returning the summary.

        Raises :class:`KeyboardInterrupt` after draining when interrupted.
        """
        it = iter(self)
        while True:
            try:
                result = next(it)
            except StopIteration:
                break
            except KeyboardInterrupt:
                if self._control is not None and not self._control.abort.is_set():
                    self._interrupt()
                    continue
                raise
            try:
                if on_result is not None:
                    on_result(result)
            except KeyboardInterrupt:
                self._interrupt()
        if self.summary.interrupted:
            raise KeyboardInterrupt
        return self.summary

    def _finish_summary(self, stages: list[Stage], latency: StageTimer, wall_s: float) -> None:
        summary = self.summary
        summary.wall_s = wall_s
        summary.stages = {s.stage_name: s.timer.stats() for s in stages}
        for stage in stages:
            if isinstance(stage, PostprocessStage) and stage.tracking is not None:
                summary.stages[stage.track_timer.name] = stage.track_timer.stats()
                summary.analytics = {sid: state.summary() for sid, state in stage.per_stream.items()}
        summary.latency = latency.stats()
        if self._source is not None:
            summary.bad_frames = self._source.stats.bad_frames
        elif self.expected_frames and not summary.interrupted and self._control and not self._control.error:
            summary.bad_frames = max(0, self.expected_frames - summary.frames)
        error = self._control.error if self._control else None
        if error is not None:
            summary.error = _describe(error[0], error[1])

    def _close_sinks(self, sinks: list[Sink]) -> None:
        first: Optional[BaseException] = None
        for sink in sinks:
            try:
                sink.close(self.summary)
            except Exception as exc:  # close them all; report the first failure
                first = first or exc
        if first is not None and self._control is not None and self._control.error is None:
            self._control.fail("sink", first)

    def _raise_failure(self) -> None:
        error = self._control.error if self._control else None
        if error is not None:
            stage, exc = error
            if isinstance(exc, StreamTRTError):
                raise exc
            if isinstance(exc, KeyboardInterrupt):
                raise KeyboardInterrupt
            raise PipelineError(_describe(stage, exc)) from exc
        if self.summary.interrupted or self.config.runtime.max_frames:
            return
        if self._source is not None:
            stats = self._source.stats
        else:
            notes = [e for st in self._stages if isinstance(st, GpuDecodeStage) for e in st.fallback_errors]
            stats = SourceStats(decoded=self.summary.frames, bad_frames=self.summary.bad_frames, errors=notes)
        decode_error = decode_error_for(self.uri.display, stats)
        if decode_error is not None:
            raise decode_error

    def close(self) -> None:
        """Release the model and the source (also when the pipeline never ran)."""
        if self.runner is not None:
            self.runner.deactivate()
        if self._source is not None:
            self._source.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(stage: str, exc: BaseException) -> str:
    if isinstance(exc, StreamTRTError):
        return str(exc)
    return f"{stage} stage failed: {type(exc).__name__}: {exc}"
