"""The pipeline's lifecycle: construct (all parts built and checked), iterate the results while
writing them to the sinks, add and remove streams, stop or abort, close; and :meth:`Pipeline.stats`.
What is built is in :mod:`.components`, how the stages connect in :mod:`.wiring`, how a run ends
in :mod:`.outcome`. Metrics and control servers are the caller's (:func:`.servers.serve`)."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

from ..config import Config, SourceConfig, load_config
from ..errors import ConfigError, StreamTRTError
from ..redact import redact
from ..sinks import Sink
from ..sources import SourceInfo, parse_source_uri
from ..sources.uri import SourceURI
from . import outcome
from .components import Components, assemble, open_stream, source_config
from .control import Control
from .heap import HeapTrimmer
from .messages import EOS, FrameResult
from .stats import PipelineStats, stage_stats, stream_stats
from .summary import RunSummary
from .wiring import Wiring

_JOIN_TIMEOUT_S = 10.0
log = logging.getLogger("streamtrt")


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
    (until :meth:`stop`); implied by ``control.enabled``. ``config``, ``plan``: the effective
    config and the resolved :class:`~streamtrt.runtime.plan.Plan` (never changed afterwards).
    The metrics and control endpoints of ``config`` are started by :func:`~streamtrt.runtime.servers.serve`.
    """

    def __init__(self, config: Config, sinks: Optional[list[Sink]] = None, keep_images: bool = False,
                 report: Optional[Callable[[str], None]] = None, keep_alive: bool = False):
        parts = Components(config, keep_alive=keep_alive or config.control.enabled)
        try:
            assemble(parts, sinks, keep_images, report or log.warning)
        except BaseException as exc:
            parts.close()
            if isinstance(exc, StreamTRTError):  # a source, the model or a sink failed: the summary still tells it
                outcome.summary_of_failed_setup(config, sinks, parts, exc)
            raise
        self._parts = parts
        self.config, self.plan, self.model_setup = parts.config, parts.plan, parts.model_setup
        self.class_names = parts.model_setup.class_names
        self.sinks, self.streams, self.runners, self.runner = parts.sinks, parts.streams, parts.runners, parts.runners[0]
        self.spec, self.postprocessor, self.device_post = parts.spec, parts.postprocessor, parts.device_post
        self.keep_images, self.keep_alive = parts.keep_images, parts.keep_alive
        displays = [st.display for st in self.streams.values()]
        self.summary = RunSummary(source=displays[0] if len(displays) == 1 else f"{len(displays)} streams",
                                  plan=self.plan.as_dict(), model=self.model_setup.as_dict())
        counts = [st.expected_frames for st in self.streams.values()]
        self.expected_frames = sum(counts) if counts and all(counts) and not self.keep_alive else None
        self.expected_frames_estimated = any(st.expected_estimated for st in self.streams.values())
        """``expected_frames`` rests on an estimate (show it as ``~N``)."""
        self._lock = threading.RLock()
        self._wiring = Wiring(parts, self._lock)
        self._control: Optional[Control] = None
        self._t0: Optional[float] = None
        self._started = self._finished = self._keyboard_interrupt = False
        self._failed_adds: dict[str, dict] = {}  # keep_alive: streams added that failed to open (summary)
        self.run_id = uuid.uuid4().hex[:12]

    @classmethod
    def from_config(cls, config: Union[str, Path, dict, Config], overrides: Optional[list[str]] = None,
                    **kwargs: Any) -> "Pipeline":
        """Build a pipeline from a YAML path, a mapping or a :class:`Config`, with ``key=value`` overrides."""
        return cls(load_config(config, overrides), **kwargs)

    @property
    def uri(self) -> SourceURI:
        """The first stream's source (single-stream convenience)."""
        return next(iter(self.streams.values())).uri

    @property
    def source_info(self) -> SourceInfo:
        """The first stream's :class:`SourceInfo` (single-stream convenience)."""
        return next(iter(self.streams.values())).info

    def add_source(self, source: Union[str, dict, SourceConfig]) -> str:
        """Add a stream, while running or before; returns its id. Raises for a bad or duplicate source."""
        sc = source_config(source)
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
            uri = parse_source_uri(sc.uri)
            try:
                stream = open_stream(sc, uri, self.plan, self.config)
            except StreamTRTError as exc:  # still told in the summary's streams (and stats)
                self._failed_adds[sc.id] = {"id": sc.id, "uri": uri.display, "state": "failed",
                                            "frames": 0, "error": redact(str(exc))}
                raise
            self._failed_adds.pop(sc.id, None)
            self.streams[sc.id] = stream
            if self._control is not None and self._wiring.groups:  # else the run's start launches it
                try:
                    self._wiring.launch(stream, self._control)
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
            if stream.source is not None and stream.source.live:
                stream.source.close()  # also ends a reconnect wait at once
            log.warning("stream %s removed", stream_id)

    def stream_status(self, latency: bool = True) -> list[dict]:
        """Per-stream state and counters (JSON-ready; credentials hidden); ``latency`` adds p50/p99."""
        with self._lock:
            streams = list(self.streams.values())
            failed = [dict(f) for sid, f in self._failed_adds.items() if sid not in self.streams]
        return [st.status(latency) for st in streams] + failed

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
        elapsed = 0.0 if self._t0 is None else (self.summary.wall_s if self._finished and self.summary.wall_s
                                                 else time.perf_counter() - self._t0)
        return PipelineStats(
            run_id=self.run_id, state=state, elapsed_s=round(elapsed, 3), frames=self.summary.frames,
            detections=self.summary.detections, expected_frames=self.expected_frames,
            expected_estimated=self.expected_frames_estimated,
            streams=tuple(stream_stats(st.status(True), st.recent_fps(5.0)) for st in streams),
            stages=tuple(stage_stats(t) for t in self._wiring.timers()), queues=self._wiring.queue_depths(),
            sinks=tuple(s for s in (sink.stats() for sink in self.sinks) if s is not None),
            error=self.summary.error if self._finished else None)

    def __iter__(self) -> Iterator[FrameResult]:
        if self._started:
            raise StreamTRTError("a Pipeline runs once; create a new one for another run")
        self._started = True
        control = self._control = Control()
        if self.summary.interrupted:  # stopped before it started
            control.stop.set()
        opened: list[Sink] = []
        t0 = self._t0 = time.perf_counter()
        try:
            opened = outcome.open_sinks(self.sinks, self.streams, control)
            if control.error is None:
                results = self._wiring.build(control, lambda: self.keep_alive and not control.stop.is_set())
                yield from self._consume(control, results, opened)
        finally:
            with self._lock:
                self._finished = True
            control.abort.set()
            self._wiring.join(_JOIN_TIMEOUT_S)
            outcome.finish_summary(self.summary, self._wiring, self.streams, control, self.plan.engines,
                                   time.perf_counter() - t0, self.stream_status())
            outcome.close_sinks(opened, self.summary, control, self.streams)
            self.close()
        failure = outcome.failure(control, self.streams, self.summary.interrupted)
        if failure is not None:
            raise failure

    def _consume(self, control: Control, results: "queue.Queue[Any]", sinks: list[Sink]) -> Iterator[FrameResult]:
        summary, latency = self.summary, self._wiring.latency
        trim = HeapTrimmer()  # freed heap pages back to the system once a minute (glibc; runtime/heap.py)
        while True:
            try:
                item = control.get(results)
            except KeyboardInterrupt:
                self._interrupt()
                continue
            if item is None or item is EOS:
                return
            trim()
            for result in item.results:
                outcome.deliver(result, self.run_id, summary, self.streams.get(result.stream_id), latency, sinks)
                yield result

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

    def close(self) -> None:
        """Release the model and the sources (also when the pipeline never ran)."""
        self._parts.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

