"""The orchestrator: builds the stages a config asks for, wires them with bounded queues,
and yields per-frame results while writing them to the sinks."""

from __future__ import annotations

import dataclasses
import functools
import os
import logging
import queue
import threading
import uuid
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from ..config import Config, SourceConfig, load_config
from ..engine import EngineSettings, Runner, create_runner
from ..errors import ConfigError, DecodeError, PipelineError, StreamTRTError
from ..model_setup import ModelSetup, output_shapes, resolve_model, select_for
from ..postprocess.postprocessor import Postprocessor
from ..preprocess.dali import DaliCpuPreprocessor, dali_available, open_gpu_video_decoder
from ..sources.frametimes import presentation_times
from ..preprocess.opencv import OpenCVPreprocessor
from ..preprocess.spec import PreprocessSpec
from ..names import check_names
from ..sinks import Sink, open_sink, sink_filter
from ..sources import (SourceInfo, SourceStats, check_config_sources, check_source_options, decode_error_for,
                       open_source, parse_source_uri, probe_video)
from ..sources.pace import PacedSource
from ..sources.uri import FFMPEG_LIVE_KINDS, SourceURI, redact
from .batcher import BatchStage
from .control import Control, StreamControl
from .messages import EOS, FrameResult
from .mux import StreamMux
from .plan import Plan, make_plan
from .threads import plan_threads
from .stages import DecodeStage, GpuDecodeStage, InferStage, PostprocessStage, PreprocessStage, Stage
from .streams import StreamState, drop_stale_for
from .stats import PipelineStats, StageStats, StreamStats
from .summary import RunSummary
from .timing import StageTimer, merge_timers

_JOIN_TIMEOUT_S = 10.0
log = logging.getLogger("streamtrt")


def _sink_filters(config: Config, sinks: Optional[list[Sink]]) -> list[tuple[str, Any]]:
    """(key path, filter or None) of each sink, for :func:`~streamtrt.names.check_names`."""
    if sinks is None:
        return [(f"sinks.{i}", sink_filter(uri)) for i, uri in enumerate(config.sinks)]
    return [(f"sinks.{i}", s.rule) for i, s in enumerate(sinks)]


class Pipeline:
    """A detector running over one or many sources.

    >>> with Pipeline.from_config("configs/sample.yaml") as pipe:   # doctest: +SKIP
    ...     for result in pipe:
    ...         print(result.stream_id, result.frame_index, len(result.detections))

    Construction loads the model and opens file sources, so configuration, model and input
    errors surface before any thread starts (live sources connect in the background and
    reconnect on their own). Iterating runs the stages concurrently: each stream decodes and
    preprocesses on its own threads; frames of all streams are batched for inference; the
    postprocessor sends each result back to its stream. A pipeline runs once.

    ``keep_alive``: keep running when every stream has ended, waiting for :meth:`add_source`
    (until :meth:`stop`); implied by ``control.enabled``.
    """

    def __init__(self, config: Config, sinks: Optional[list[Sink]] = None, keep_images: bool = False,
                 report: Optional[Callable[[str], None]] = None, keep_alive: bool = False):
        try:
            self._setup(config, sinks, keep_images, report, keep_alive)
        except StreamTRTError as exc:  # a source, the model or a sink failed: the summary still tells it
            self._summary_of_failed_setup(config, sinks, exc)
            raise

    def _setup(self, config: Config, sinks: Optional[list[Sink]], keep_images: bool,
               report: Optional[Callable[[str], None]], keep_alive: bool) -> None:
        self.config = config
        rt = config.runtime
        stream_configs = config.streams()
        check_config_sources(config)  # options a stream's kind would ignore are refused
        uris = [parse_source_uri(sc.uri) for sc in stream_configs]
        self.plan: Plan = make_plan(rt, uris, config.live.decoder)
        # The model file read once: its input, preprocessing, format and names, each with a reason.
        self.model_setup: ModelSetup = resolve_model(config)
        for warning in self.model_setup.warnings:
            (report or log.warning)(f"warning: {warning}")
        self.class_names = self.model_setup.class_names
        latency = keep_alive or config.control.enabled or any(
            sc.pace or (sc.live if sc.live is not None else u.is_live) for sc, u in zip(stream_configs, uris))
        self.threads = plan_threads(self.plan.runner, self.plan.decoder, self.plan.preprocessor, len(uris),
                                    len(config.engine_configs()), rt.threads, latency=latency)
        self.plan.threads = self.threads.as_dict()
        self.plan.reasons += self.threads.reasons
        for reason in self.threads.reasons:
            log.info("plan: %s", reason)
        check_names(config, self.class_names, _sink_filters(config, sinks), keep_alive or config.control.enabled,
                    report or log.warning)
        self.sinks = sinks if sinks is not None else [open_sink(s, config.delivery, f"sinks.{i}") for i, s in enumerate(config.sinks)]
        self.keep_images = keep_images or any(s.needs_images for s in self.sinks)
        self.keep_alive = keep_alive or config.control.enabled
        for sink in self.sinks:
            sink.configure(config.analytics)
        self.streams: dict[str, StreamState] = {}
        self.runner: Optional[Runner] = None
        self.runners: list[Runner] = []
        self._lock = threading.RLock()
        try:
            for sc, uri in zip(stream_configs, uris):
                self.streams[sc.id] = self._open_stream(sc, uri)
            self._check_image_sinks()
            if rt.memory_budget_mb and self.plan.runner == "tensorrt" and config.tensorrt.workspace_mb is None:
                from .budget import derive_workspace_mb

                ws = derive_workspace_mb(rt.memory_budget_mb, None)
                config = self.config = config.model_copy(
                    update={"tensorrt": config.tensorrt.model_copy(update={"workspace_mb": ws})})
            # Engine builds take minutes: say so (and why) unless the caller reports elsewhere.
            engine_configs = self._engine_configs()
            for engine_config in engine_configs:
                self.runners.append(create_runner(self.plan.runner, EngineSettings.from_config(engine_config, self.model_setup.spec()), spin=self.threads.spin,
                                                  report=report or log.warning, workers=self.threads.workers))
            self.runner = self.runners[0]
            if len(self.runners) > 1:
                self.plan.engines = [_engine_label(i, c, self.plan.runner) for i, c in enumerate(engine_configs)]
            self.spec = self._input_spec()
            low = config.tracker.thresholds(config.postprocess.score_threshold).low if config.tracker.enabled else None
            self.postprocessor = Postprocessor(self._select_decoder(), self.class_names, config.postprocess, low)
            self.device_post = self._device_postprocessor(report or log.warning)
            self._fit_budget(report or log.warning)
        except BaseException:
            self.close()
            raise
        displays = [st.display for st in self.streams.values()]
        self.summary = RunSummary(source=displays[0] if len(displays) == 1 else f"{len(displays)} streams",
                                  plan=self.plan.as_dict(), model=self.model_setup.as_dict())
        counts = [st.expected_frames for st in self.streams.values()]
        self.expected_frames = sum(counts) if counts and all(counts) and not self.keep_alive else None
        self.expected_frames_estimated = any(st.expected_estimated for st in self.streams.values())
        """``expected_frames`` rests on an estimate (show it as ``~N``)."""
        self._control: Optional[Control] = None
        self._groups: list[_EngineGroup] = []
        self._stages: list[Stage] = []
        self._queues: list[queue.Queue] = []
        self._latency = StageTimer("end_to_end")
        self._started = False
        self._finished = False
        self._keyboard_interrupt = False
        self._t0: Optional[float] = None
        self.run_id = uuid.uuid4().hex[:12]
        self.metrics = None
        self.control_server = None

    def _summary_of_failed_setup(self, config: Config, sinks: Optional[list[Sink]], error: StreamTRTError) -> None:
        """Write the summary sinks (only those: other outputs are not created) after construction
        failed: zero frames and the ``error`` the run ends with. A summary that cannot be written
        is only warned about: the construction error is the one reported."""
        from ..sinks import is_summary_uri

        try:
            pool = sinks if sinks is not None else getattr(self, "sinks", None)
            targets = [s for s in pool if _is_summary(s)] if pool is not None else \
                [open_sink(uri) for uri in config.sinks if is_summary_uri(uri)]
            if not targets:
                return
            displays = [redact(sc.uri) for sc in config.streams()]
            plan = getattr(self, "plan", None)
            setup = getattr(self, "model_setup", None)
            summary = RunSummary(source=displays[0] if len(displays) == 1 else f"{len(displays)} streams",
                                 plan=plan.as_dict() if plan is not None else {},
                                 model=setup.as_dict() if setup is not None else {})
            summary.error = {"kind": type(error).__name__, "message": redact(str(error)),
                             "exit_code": error.exit_code}
        except Exception as exc:  # noqa: BLE001 - the construction error is the one to report
            log.warning("the summary could not be written: %s", exc)
            return
        for sink in targets:
            try:
                sink.close(summary)
            except Exception as exc:  # noqa: BLE001
                log.warning("the summary could not be written: %s", exc)

    # -- streams ---------------------------------------------------------------------------------
    @property
    def uri(self) -> SourceURI:
        """The first stream's source (single-stream convenience)."""
        return next(iter(self.streams.values())).uri

    @property
    def source_info(self) -> SourceInfo:
        """The first stream's :class:`SourceInfo` (single-stream convenience)."""
        return next(iter(self.streams.values())).info

    def _open_stream(self, sc: SourceConfig, uri: SourceURI) -> StreamState:
        rt = self.config.runtime
        live = sc.live if sc.live is not None else uri.is_live
        decoder = self.plan.decoder if uri.kind == "file" else "cpu"
        if uri.kind in FFMPEG_LIVE_KINDS and self.plan.live_decoder == "nvdec":
            decoder = "nvdec"
        source = None
        if decoder in ("cpu", "nvdec"):
            source = open_source(uri, sc.id, rt.threads or self.threads.decode, sc, self.config.live,
                                 nvdec_device=rt.device_id if decoder == "nvdec" else None)
            info = source.info
        elif decoder == "gstreamer":
            from ..sources.gstreamer import GStreamerFileSource

            source = GStreamerFileSource(uri.location, uri.display, sc.id, sc.orientation)
            info = source.info
        else:
            info = probe_video(Path(uri.location), uri.display, sc.id, sc.orientation, sc.fps)
        if sc.pace and source is not None:
            source = PacedSource(source)
        chunk = rt.stream_batch or (1 if (live or sc.pace) else rt.batch_size)
        stream = StreamState(sc.id, uri, sc, info, decoder, live, drop_stale_for(live, self.config.live),
                             min(chunk, rt.batch_size), source)
        count = info.frame_count
        stream.expected_frames = None if live else (min(count, rt.max_frames) if count and rt.max_frames
                                                    else (count or rt.max_frames))
        # a guess (duration x rate, or only the max_frames cap): a progress total, never a count of bad frames
        stream.expected_estimated = bool(info.frame_count_estimated or not count)
        return stream

    def _engine_configs(self) -> list[Config]:
        """One config per engine; CPU runner threads split between engines unless set."""
        configs = self.config.engine_configs()
        rt = self.config.runtime
        if rt.cuda_graph == "auto" and self.plan.live_decoder == "nvdec" and (self.plan.has_live or self.keep_alive):
            # ONNX Runtime captures its graph on a run while NVDEC decoders allocate and synchronize
            # on other threads, which invalidates the capture (cudaErrorStreamCaptureInvalidated).
            self.plan.reasons.append("cuda graph off: live streams decode on NVDEC beside the runner")
            configs = [c.model_copy(update={"runtime": c.runtime.model_copy(update={"cuda_graph": False})})
                       for c in configs]
        if rt.threads is None and self.plan.runner == "onnxruntime-cpu" and self.threads.intra_op:
            threads = self.threads.intra_op  # the thread plan's share of the cores per run
            configs = [c.model_copy(update={"runtime": c.runtime.model_copy(update={"threads": threads})})
                       for c in configs]
        return configs

    def _check_image_sinks(self) -> None:
        if len(self.streams) <= 1 and not self.keep_alive:
            return
        for sink in self.sinks:
            if sink.needs_images:
                rule = sink.rule
                if rule is None or rule.streams is None or len(rule.streams) != 1:
                    raise ConfigError(f"{sink.display}: with several sources (or streams "
                                      "added while running) a video sink shows one stream: add ?streams=ID to its URI")

    def add_source(self, source: Union[str, dict, SourceConfig]) -> str:
        """Add a stream, while running or before; returns its id. Raises for a bad or duplicate source."""
        sc = source if isinstance(source, SourceConfig) else (
            SourceConfig(uri=source) if isinstance(source, str) else _validate_source(source))
        check_source_options(sc, "source")
        with self._lock:
            if self._finished:
                raise StreamTRTError("the pipeline has ended; streams can no longer be added")
            if sc.id is None:
                n = 0
                while str(n) in self.streams:
                    n += 1
                sc = sc.model_copy(update={"id": str(n)})
            old = self.streams.get(sc.id)
            if old is not None and old.state not in ("ended", "failed", "removed"):
                raise ConfigError(f"stream id {sc.id!r} is already in use")
            if sc.engine is not None and sc.engine >= len(self.runners):
                raise ConfigError(f"engine: {sc.engine} is not one of the {len(self.runners)} engine(s)")
            stream = self._open_stream(sc, parse_source_uri(sc.uri))
            self.streams[sc.id] = stream
            if self._control is not None:
                try:
                    self._launch_stream(stream)
                except BaseException:
                    if old is None:
                        del self.streams[sc.id]
                    else:
                        self.streams[sc.id] = old
                    if stream.source is not None:
                        stream.source.close()
                    raise
            log.warning("stream %s added: %s", sc.id, stream.display)
            return sc.id

    def remove_source(self, stream_id: str) -> None:
        """Stop a stream; frames already decoded still reach the sinks."""
        with self._lock:
            stream = self.streams.get(stream_id)
            if stream is None or stream.state in ("ended", "failed", "removed"):
                raise ConfigError(f"no running stream {stream_id!r}")
            stream.state = "removed"
            if stream.control is not None:
                stream.control.stop.set()
            if stream.source is not None and hasattr(stream.source, "bind_stop"):
                stream.source.close()  # also ends a backoff wait at once
            log.warning("stream %s removed", stream_id)

    def stream_status(self, latency: bool = True) -> list[dict]:
        """Per-stream state and counters (JSON-ready; credentials hidden); ``latency`` adds p50/p99."""
        with self._lock:
            streams = list(self.streams.values())
        out = []
        for st in streams:
            status = st.status(latency)
            status["bad_frames"] = st.source.stats.bad_frames if st.source is not None else 0
            out.append(status)
        return out

    def _launch_stream(self, stream: StreamState) -> None:
        """Start a stream's own stages (decode, preprocess) writing into its mux lane."""
        control, rt = self._control, self.config.runtime
        group = self._group_for(stream)
        stream.engine = group.index
        stream.control = StreamControl(control, lambda stage, exc: self._stream_failed(stream, stage, exc))
        lane_frames = self.config.live.queue_frames if stream.drop_stale else rt.slots
        inlet = group.mux.add(stream.id, lane_frames, stream.drop_stale, lambda item: self._dropped(stream, item))
        if stream.decoder == "dali-gpu":
            info = stream.info
            make = functools.partial(
                open_gpu_video_decoder, stream.uri.location, info, self.spec, stream.chunk,
                device_id=rt.device_id, keep_frames=self.keep_images, prefetch=rt.slots,
                threads=rt.threads or max(1, min(4, (os.cpu_count() or 4) // max(1, len(self.streams)))),
            )

            def decoder(path=stream.uri.location, info=info, make=make, stream=stream):
                # NVDEC gives frames as stored, turned upright on the GPU by the probe's rotation/mirror
                # (none with orientation: ignore); and without their times: those (and the real frame
                # count, not an estimate) come from the packets, timed as the CPU path times them
                times = presentation_times(path, info.fps, info.uri)
                if times:
                    stream.expected_frames = min(len(times), rt.max_frames or len(times))
                dec = make(stream.expected_frames or 0)
                dec.timestamps = times
                promised = None if info.frame_count_estimated else info.frame_count
                if times and promised and promised > len(times):
                    # the index promises frames the file does not hold (truncated): they count as missing
                    stream.expected_frames = min(promised, rt.max_frames or promised)
                return dec
            uri = stream.uri
            fallback = lambda: open_source(uri, stream.id, rt.threads, stream.config)  # noqa: E731
            stages: list[Stage] = [GpuDecodeStage(decoder, stream.id, info.fps, (info.height, info.width),
                                                  stream.control, inlet, rt.max_frames, cpu_fallback=fallback,
                                                  pace=stream.config.pace)]
        else:
            between: queue.Queue = queue.Queue(maxsize=rt.slots)
            if hasattr(stream.source, "bind_stop"):
                stream.source.bind_stop(stream.control.stop, stream.control.abort)
            stages = [DecodeStage(stream.source, stream.chunk, stream.control, between, rt.max_frames),
                      PreprocessStage(self._make_preprocessor(stream.chunk, stream.decoder), self.keep_images,
                                      stream.control, between, inlet)]
        for stage in stages:
            stage.name = f"{stage.name}-{stream.id}"
        stream.stages = stages
        stream.state = "running" if not stream.live else "connecting"
        with self._lock:
            self._stages.extend(stages)
        for stage in stages:
            stage.start()

    def _group_for(self, stream: StreamState) -> "_EngineGroup":
        """The engine group a stream joins: the one its config names, else the one with fewest streams."""
        alive = [g for g in self._groups if g.batcher.ident is None or g.batcher.is_alive()]
        wanted = stream.config.engine  # in range: checked by the config and add_source
        if wanted is not None:
            if self._groups[wanted] not in alive:
                raise StreamTRTError(f"stream {stream.id}: engine {wanted} has already finished")
            return self._groups[wanted]
        if not alive:
            raise StreamTRTError("the pipeline has ended; streams can no longer be added")
        active = Counter(st.engine for st in self.streams.values()
                         if st.engine is not None and st.state not in ("ended", "failed", "removed"))
        return min(alive, key=lambda g: (active[g.index], g.index))

    def _dropped(self, stream: StreamState, item: Any) -> None:
        stream.count_dropped(len(item.meta))
        if getattr(item, "release", None) is not None:
            item.release.set()

    def _stream_failed(self, stream: StreamState, stage: str, exc: BaseException) -> None:
        stream.state = "failed"
        stream.error = redact(_describe(stage, exc))
        stream.exception = exc
        if stream.engine is not None and self._groups:
            for item in self._groups[stream.engine].mux.remove(stream.id):
                self._dropped(stream, item)
        if len(self.streams) > 1 or self.keep_alive:
            log.error("stream %s failed: %s", stream.id, stream.error)

    def _stream_ended(self, stream_id: str) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None and stream.state not in ("failed", "removed"):
            stream.state = "ended"

    @classmethod
    def from_config(cls, config: Union[str, Path, dict, Config], overrides: Optional[list[str]] = None,
                    **kwargs: Any) -> "Pipeline":
        """Build a pipeline from a YAML path, a mapping or a :class:`Config`, with ``key=value`` overrides."""
        return cls(load_config(config, overrides), **kwargs)

    # -- construction helpers ------------------------------------------------------------------
    def _input_spec(self) -> PreprocessSpec:
        """The preprocessing :func:`~streamtrt.model_setup.resolve_model` settled on."""
        return self.model_setup.spec()

    def _fit_budget(self, report: Callable[[str], None]) -> None:
        rt = self.config.runtime
        if not rt.memory_budget_mb:
            return
        from .budget import plan_budget

        sizes = [(st.info.height or 1080, st.info.width or 1920) for st in self.streams.values()] or [(1080, 1920)]
        plan = plan_budget(
            rt.memory_budget_mb, frame_hw=max(sizes, key=lambda hw: hw[0] * hw[1]),
            input_chw=(3, self.spec.height, self.spec.width), itemsize=self.spec.np_dtype.itemsize,
            batch=rt.batch_size, slots=rt.slots, keep_images=self.keep_images,
            model_bytes=Path(self.config.model.path).stat().st_size,
            workspace_mb=self.config.tensorrt.workspace_mb if self.plan.runner == "tensorrt" else None,
            engines=len(self.runners),
        )
        if plan.slots != rt.slots:
            report(f"memory budget {rt.memory_budget_mb} MB: runtime.slots lowered from {rt.slots} to {plan.slots}")
            self.config = self.config.model_copy(update={"runtime": rt.model_copy(update={"slots": plan.slots})})

    def _select_decoder(self):
        """Run one zero batch to learn the real output shapes (exports often leave them undeclared)."""
        batch = self.runner.inputs[0].fixed_batch or 1
        shapes = output_shapes(self.model_setup, self.runner.infer, batch)
        return select_for(self.model_setup, shapes)

    def _device_postprocessor(self, report: Callable[[str], None]) -> Optional[Callable[[dict], dict]]:
        """Decode+NMS on the GPU when the plan says so and the model format allows it; the host
        postprocessor then only maps the final boxes back to source pixels."""
        if self.plan.postprocessor != "gpu":
            return None
        from ..postprocess.decoders.nanodet import NanoDetDecoder
        from ..postprocess.device import DeviceNanoDetPostprocessor, FinalDetectionsDecoder, as_cupy

        host = self.postprocessor
        if not isinstance(host.decoder, NanoDetDecoder):
            if self.config.runtime.postprocessor == "gpu":
                raise ConfigError(f"runtime.postprocessor gpu supports NanoDet outputs; this model's are "
                                  f"{host.decoder.name}")
            self.plan.postprocessor = "cpu"
            self.plan.reasons.append(f"postprocessor cpu: no GPU decoder for {host.decoder.name} outputs")
            return None
        import cupy

        cfg = self.config.postprocess
        post = DeviceNanoDetPostprocessor(host.decoder, host.threshold, cfg.iou_threshold, cfg.max_detections,
                                          host.class_filter, len(self.class_names), xp=cupy)
        dtypes = {o.name: o.dtype for o in self.runner.outputs}
        self.postprocessor = Postprocessor(FinalDetectionsDecoder(), self.class_names, cfg, host.threshold)
        return lambda outs: post({k: as_cupy(v, dtypes[k]) for k, v in outs.items()})

    def _make_preprocessor(self, batch: int, decoder: str = "cpu") -> Callable:
        rt = self.config.runtime
        if decoder == "nvdec":  # frames already on the GPU: preprocess them there
            from ..preprocess.dali import DaliGpuPreprocessor

            return DaliGpuPreprocessor(self.spec, batch, rt.device_id)
        if self.plan.preprocessor == "opencv" or (self.plan.preprocessor == "dali-gpu" and not dali_available()):
            if self.threads.opencv is not None:
                import cv2

                cv2.setNumThreads(self.threads.opencv)  # process-wide: the plan says why
            return OpenCVPreprocessor(self.spec)
        return DaliCpuPreprocessor(self.spec, batch, rt.threads or self.threads.preprocess)

    def _build_stages(self, control: Control) -> "queue.Queue[Any]":
        """Per engine: a mux the streams write into, a batcher and an inference stage; then one
        postprocess stage for all (each stream stays on one engine, so its frames stay in order)."""
        rt = self.config.runtime
        inferred: queue.Queue = queue.Queue(maxsize=rt.slots * len(self.runners))
        results: queue.Queue = queue.Queue(maxsize=rt.slots)
        self._queues = [inferred, results]
        keep_running = lambda: self.keep_alive and not control.stop.is_set()  # noqa: E731
        shared: list[Stage] = []
        for i, runner in enumerate(self.runners):
            mux, batches = StreamMux(), queue.Queue(maxsize=rt.slots)
            batcher = BatchStage(mux, rt.batch_size, rt.batch_timeout_ms / 1e3, control, batches, keep_running,
                                 self._stream_ended, rt.slots + 2)
            infer = InferStage(runner, control, batches, inferred, self.device_post, rt.batch_size)
            if len(self.runners) > 1:
                batcher.name, infer.name = f"{batcher.name}-e{i}", f"{infer.name}-e{i}"
            self._groups.append(_EngineGroup(i, runner, mux, batches, batcher, infer))
            shared += [batcher, infer]
        tracking = None
        if self.config.tracker.enabled:
            from ..track.stream import StreamTracking

            cfg, streams = self.config, self.streams
            tracking = lambda sid: StreamTracking(cfg.tracker, cfg.analytics,  # noqa: E731
                                                  cfg.postprocess.score_threshold,
                                                  streams[sid].info.fps if sid in streams else None)
        post = PostprocessStage(self.postprocessor, control, inferred, results, tracking, snapshot=self.keep_images)
        post.upstreams = len(self.runners)
        shared.append(post)
        with self._lock:
            self._stages = list(shared)
            for stream in self.streams.values():
                if stream.state == "removed":
                    continue
                self._launch_stream(stream)
        for stage in shared:
            stage.start()
        return results

    # -- running -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[FrameResult]:
        if self._started:
            raise StreamTRTError("a Pipeline runs once; create a new one for another run")
        self._started = True
        control = self._control = Control()
        if self.summary.interrupted:  # stopped before it started
            control.stop.set()
        opened: list[Sink] = []
        latency = self._latency
        t0 = self._t0 = time.perf_counter()
        try:
            if self.config.metrics.enabled:
                from .metrics import MetricsServer

                m = self.config.metrics
                self.metrics = MetricsServer(self, m.host, m.port)
                log.warning("metrics at http://%s:%d/metrics", *self.metrics.address[:2])
            if self.config.control.enabled:
                from .control_api import ControlServer

                c = self.config.control
                self.control_server = ControlServer(self, c.host, c.port)
                log.warning("control at http://%s:%d/streams", *self.control_server.address[:2])
            fps = [st.info.fps for st in self.streams.values() if st.info.fps]
            for sink in self.sinks:
                rule = sink.rule
                chosen = [self.streams[i].info.fps for i in (rule.streams or ()) if i in self.streams] \
                    if rule is not None and rule.streams else fps
                try:
                    sink.open(chosen[0] if chosen and chosen[0] else (fps[0] if fps else None))
                except Exception as exc:  # the run ends before it starts; the summary sinks still tell why
                    control.fail("sink", exc)
                    opened += [s for s in self.sinks if s not in opened and s is not sink and _is_summary(s)]
                    break
                opened.append(sink)
            if control.error is None:
                results = self._build_stages(control)
                yield from self._consume(control, results, opened, latency)
        finally:
            with self._lock:
                self._finished = True
            control.abort.set()
            for stage in list(self._stages):
                stage.join(_JOIN_TIMEOUT_S)
            self._finish_summary(latency, time.perf_counter() - t0)
            self._close_sinks(opened)
            if self.metrics is not None:
                self.metrics.close()
            if self.control_server is not None:
                self.control_server.close()
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
                stream = self.streams.get(result.stream_id)
                if stream is not None:
                    stream.frame_done(result.latency_ms / 1e3)
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
    def stats(self) -> PipelineStats:
        """A snapshot of the whole pipeline (thread-safe, cheap: no percentile over more than the
        recent samples). Metrics, the progress line, the summary and cluster workers read this."""
        if self._finished:
            state = "finished"
        elif self._control is None:
            state = "created"
        else:
            state = "stopping" if self._control.stop.is_set() else "running"
        with self._lock:
            streams = list(self.streams.values())
        stream_stats = []
        for st in streams:
            s = st.status(latency=True)
            lat = s["latency_ms"] or {}
            stream_stats.append(StreamStats(
                id=st.id, uri=s["uri"], state=s["state"], decoder=s["decoder"], live=bool(s["live"]),
                frames=s["frames"], dropped=s["dropped"],
                bad_frames=st.source.stats.bad_frames if st.source is not None else 0,
                reconnects=s["reconnects"], frames_lost=s["frames_lost"], fps=round(st.recent_fps(5.0), 3),
                last_frame_age_s=s["last_frame_age_s"], latency_p50_ms=lat.get("p50"), latency_p99_ms=lat.get("p99"),
                engine=s.get("engine"), error=s.get("error")))
        stages = []
        for timer in self.timers():
            t = timer.stats()
            cumulative, _, _ = timer.histogram()
            stages.append(StageStats(timer.name, t.count, t.frames, round(t.total_s, 6), round(t.p50_ms, 3),
                                     round(t.p99_ms, 3), tuple(cumulative)))
        sinks = tuple(s for s in (sink.stats() for sink in self.sinks) if s is not None)
        elapsed = 0.0 if self._t0 is None else (self.summary.wall_s if self._finished and self.summary.wall_s
                                                 else time.perf_counter() - self._t0)
        return PipelineStats(
            run_id=self.run_id, state=state, elapsed_s=round(elapsed, 3), frames=self.summary.frames,
            detections=self.summary.detections, expected_frames=self.expected_frames,
            expected_estimated=self.expected_frames_estimated, streams=tuple(stream_stats), stages=tuple(stages),
            queues=self.queue_depths(), sinks=sinks, error=self.summary.error if self._finished else None)

    @property
    def frames_per_stream(self) -> Counter:
        """Frames that reached the sinks, per stream id."""
        return Counter({sid: st.frames for sid, st in list(self.streams.items()) if st.frames})

    def recent_fps(self, window_s: float = 5.0) -> dict[str, float]:
        """Per-stream frame rate at the sinks over the last ``window_s`` seconds (at most 5)."""
        rates = {sid: st.recent_fps(window_s) for sid, st in list(self.streams.items())}
        return {sid: r for sid, r in rates.items() if r > 0}

    def timers(self) -> list[StageTimer]:
        """One timer per stage kind (per-stream stages merged), then end to end."""
        with self._lock:
            stages = list(self._stages)
        out = merge_timers([s.timer for s in stages])
        out += [s.track_timer for s in stages if isinstance(s, PostprocessStage) and s.tracking is not None]
        return out + [self._latency]

    def queue_depths(self) -> dict[str, int]:
        depths = {"batches": sum(g.batches.qsize() for g in self._groups)}
        depths.update({n: q.qsize() for n, q in zip(["inferred", "results"], self._queues)})
        if self._groups:
            depths["streams"] = sum(sum(g.mux.depths().values()) for g in self._groups)
        return depths

    def pending_records(self) -> int:
        """Records waiting in network sinks' outboxes."""
        return sum(st.pending for st in (s.stats() for s in self.sinks) if st is not None)

    def _interrupt(self) -> None:
        """First Ctrl-C: stop reading and drain what is in flight. Second: abort."""
        control = self._control
        if control is None:
            raise KeyboardInterrupt
        if control.stop.is_set():
            control.abort.set()
            raise KeyboardInterrupt
        self.summary.interrupted = True
        self._keyboard_interrupt = True
        control.stop.set()

    def stop(self, reason: Optional[str] = None) -> None:
        """End the run gracefully: reading stops, results already in flight still reach the sinks,
        and every sink is finalised. Safe from any thread and from a signal handler.

        ``reason`` (e.g. a signal's name, ``"SIGTERM"``) is recorded as the summary's ``stop_reason``.
        """
        if self._finished:  # the run has ended already (its outputs may still be closing)
            return
        self.summary.interrupted = True
        if reason and not self.summary.stop_reason:
            self.summary.stop_reason = reason
        if self._control is not None:
            self._control.stop.set()

    def abort(self, reason: Optional[str] = None) -> None:
        """End the run now (a second stop signal): every stage exits without draining; the sinks
        still close (a video sink still writes its index), and network sinks cut their exit flush short."""
        self.stop(reason)
        if self._control is not None:
            self._control.abort.set()
        for sink in self.sinks:
            sink.abort()

    def run(self, on_result: Optional[Callable[[FrameResult], None]] = None) -> RunSummary:
        """Run to the end, or until :meth:`stop`, returning the summary (``interrupted`` after a stop).

        Ctrl-C without a signal handler of the caller's (a ``KeyboardInterrupt``) also drains and
        flushes; :class:`KeyboardInterrupt` is then raised after draining.
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
        if self.summary.interrupted and self._keyboard_interrupt:
            raise KeyboardInterrupt
        return self.summary

    def _finish_summary(self, latency: StageTimer, wall_s: float) -> None:
        summary = self.summary
        summary.wall_s = wall_s
        stages = list(self._stages)
        summary.stages = {t.name: t.stats() for t in merge_timers([s.timer for s in stages]) if t.stats().count}
        for stage in stages:
            if isinstance(stage, PostprocessStage) and stage.tracking is not None:
                summary.stages[stage.track_timer.name] = stage.track_timer.stats()
                summary.analytics = {sid: state.summary() for sid, state in stage.per_stream.items()}
        summary.latency = latency.stats()
        interrupted = summary.interrupted or (self._control is not None and self._control.error is not None)
        summary.bad_frames = sum(self._decode_stats(st, interrupted).bad_frames for st in self.streams.values())
        summary.streams = {st["id"]: st for st in self.stream_status()}
        if len(self._groups) > 1:
            labels = self.plan.engines or []
            summary.engines = [{"engine": g.index, "label": labels[g.index] if g.index < len(labels) else str(g.index),
                                "frames": g.infer.timer.stats().frames,
                                "streams": sorted(st.id for st in self.streams.values() if st.engine == g.index)}
                               for g in self._groups]

    def _record_error(self) -> None:
        """Put the error the run ends with (kind, message, exit code) in the summary."""
        failure = self._failure()
        if failure is None or isinstance(failure, KeyboardInterrupt):
            self.summary.error = None
        else:
            self.summary.error = {"kind": type(failure).__name__, "message": redact(str(failure)),
                                  "exit_code": getattr(failure, "exit_code", PipelineError.exit_code)}

    def _close_sinks(self, sinks: list[Sink]) -> None:
        """Close every sink; summary sinks last, so that the summary also reports a sink's failure."""
        first: Optional[BaseException] = None
        ordered = [s for s in sinks if not _is_summary(s)] + [s for s in sinks if _is_summary(s)]
        recorded = False
        for sink in ordered:
            if _is_summary(sink) and not recorded:
                if first is not None and self._control is not None and self._control.error is None:
                    self._control.fail("sink", first)
                self._record_error()
                recorded = True
            try:
                sink.close(self.summary)
            except Exception as exc:  # close them all; report the first failure
                first = first or exc
        if first is not None and self._control is not None and self._control.error is None:
            self._control.fail("sink", first)
        if not recorded:
            self._record_error()

    def _decode_stats(self, st: StreamState, stopped: bool) -> SourceStats:
        """A stream's frames that could not be decoded. Real decode errors (packets or demuxer
        errors) always count; frames missing against an exact count only where the source reached
        its own end, not when the run stopped early (``stopped``: a signal or a failure) or at
        ``runtime.max_frames`` (the source then never reaches its end, and the GPU path expects
        ``max_frames`` frames)."""
        if st.source is not None:
            stats = st.source.stats
            if stopped:
                return SourceStats(decoded=stats.decoded, bad_frames=stats.decode_errors, errors=stats.errors,
                                   decode_errors=stats.decode_errors)
            return stats
        gpu = [stage for stage in st.stages if isinstance(stage, GpuDecodeStage)]
        notes = [e for stage in gpu for e in stage.fallback_errors]
        fallback = [stage.fallback_stats for stage in gpu if stage.fallback_stats is not None]
        rejected = sum(f.decode_errors for f in fallback)
        if stopped or st.state != "ended":
            bad = rejected
        else:
            done = st.frames
            expected = done if st.expected_estimated else (st.expected_frames or done)
            bad = max(rejected, sum(f.bad_frames for f in fallback), expected - done)
        return SourceStats(decoded=st.frames, bad_frames=bad, errors=notes, decode_errors=rejected)

    def _raise_failure(self) -> None:
        failure = self._failure()
        if failure is not None:
            raise failure

    def _failure(self) -> Optional[BaseException]:
        """The exception the run ends with, or None: a stage's failure, failed streams, or frames that
        could not be decoded (checked after the stages have joined)."""
        error = self._control.error if self._control else None
        if error is not None:
            stage, exc = error
            if isinstance(exc, StreamTRTError):
                return exc
            if isinstance(exc, KeyboardInterrupt):
                return KeyboardInterrupt()
            return _caused(PipelineError(_describe(stage, exc)), exc)
        failed = [st for st in self.streams.values() if st.state == "failed"]
        if len(self.streams) == 1 and failed and isinstance(failed[0].exception, StreamTRTError):
            return failed[0].exception
        if failed:
            ok = len(self.streams) - len(failed)
            detail = "; ".join(f"stream {st.id} ({st.display}): {st.error}" for st in failed)
            prefix = "" if len(self.streams) == 1 else f"{len(failed)} of {len(self.streams)} streams failed " \
                                                       f"({ok} completed): "
            return _caused(PipelineError(prefix + detail), failed[0].exception)
        errors = []
        for st in self.streams.values():
            if st.state == "removed":
                continue
            err = decode_error_for(st.display, self._decode_stats(st, self.summary.interrupted))
            if err is not None:
                errors.append(err)
        if len(errors) == 1:
            return errors[0]
        if errors:
            return DecodeError("; ".join(str(e) for e in errors))
        return None

    def close(self) -> None:
        """Release the model and the sources (also when the pipeline never ran)."""
        for runner in getattr(self, "runners", []):
            runner.deactivate()
        for st in getattr(self, "streams", {}).values():
            if st.source is not None:
                st.source.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclasses.dataclass
class _EngineGroup:
    """One engine and the stages feeding it: the streams it serves write into ``mux``."""

    index: int
    runner: Runner
    mux: StreamMux
    batches: "queue.Queue[Any]"
    batcher: BatchStage
    infer: InferStage


def _engine_label(index: int, config: Config, runner: str) -> str:
    core = config.tensorrt.dla_core
    return f"DLA{core}" if runner == "tensorrt" and core is not None else f"engine {index}"


def _validate_source(raw: dict) -> SourceConfig:
    from pydantic import ValidationError

    try:
        return SourceConfig.model_validate(raw)
    except ValidationError as exc:
        from ..config import _format_validation_error

        raise ConfigError(_format_validation_error(exc, "source")) from None


def _is_summary(sink: Sink) -> bool:
    from ..sinks.summary import SummarySink

    return isinstance(getattr(sink, "inner", sink), SummarySink)


def _caused(error: BaseException, cause: Optional[BaseException]) -> BaseException:
    error.__cause__ = cause
    return error


def _describe(stage: str, exc: BaseException) -> str:
    if isinstance(exc, StreamTRTError):
        return str(exc)
    return f"{stage} stage failed: {type(exc).__name__}: {exc}"
