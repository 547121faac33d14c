"""How a run ends: the summary's final numbers, the error it ends with (and its exit code), the
frames that could not be decoded, and closing the sinks (summary sinks last, so that they also
report a sink's failure). Pure functions over the run's parts; the :class:`Pipeline` calls them."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Optional

from ..config import Config
from ..errors import DecodeError, PipelineError, StreamTRTError
from ..redact import redact
from ..sinks import Sink, is_summary_uri, open_sink
from ..sinks.filters import FilteredSink
from ..sinks.summary import SummarySink
from ..sources import SourceStats, decode_error_for
from .control import Control
from .gpu_decode import GpuDecodeStage
from .messages import FrameResult
from .streams import StreamState
from .summary import RunSummary
from .timing import StageTimer

if TYPE_CHECKING:
    from .components import Components
    from .wiring import Wiring

log = logging.getLogger("streamtrt")


def is_summary(sink: Sink) -> bool:
    """A summary sink, filtered or not."""
    return isinstance(sink.inner if isinstance(sink, FilteredSink) else sink, SummarySink)


def describe(stage: str, exc: BaseException) -> str:
    if isinstance(exc, StreamTRTError):
        return str(exc)
    return f"{stage} stage failed: {type(exc).__name__}: {exc}"


def caused(error: BaseException, cause: Optional[BaseException]) -> BaseException:
    error.__cause__ = cause
    return error


def error_dict(error: BaseException) -> dict:
    """``{"kind", "message", "exit_code"}`` of an error (credentials redacted from the message)."""
    return {"kind": type(error).__name__, "message": redact(str(error)),
            "exit_code": error.exit_code if isinstance(error, StreamTRTError) else PipelineError.exit_code}


def open_sinks(sinks: list[Sink], streams: dict[str, StreamState], control: Control) -> list[Sink]:
    """Open each sink at the frame rate of the stream it shows (its ``?streams=`` filter), else of
    the first stream with a known rate. A sink that fails to open ends the run before it starts
    (``control.fail``); the summary sinks are then still returned, to tell why."""
    opened: list[Sink] = []
    fps = [st.info.fps for st in streams.values() if st.info.fps]
    for sink in sinks:
        rule = sink.rule
        chosen = [streams[i].info.fps for i in (rule.streams or ()) if i in streams] \
            if rule is not None and rule.streams else fps
        try:
            sink.open(chosen[0] if chosen and chosen[0] else (fps[0] if fps else None))
        except Exception as exc:  # the run ends before it starts; the summary sinks still tell why
            control.fail("sink", exc)
            opened += [s for s in sinks if s not in opened and s is not sink and is_summary(s)]
            break
        opened.append(sink)
    return opened


def decode_stats(st: StreamState, stopped: bool) -> SourceStats:
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


def failure(control: Optional[Control], streams: dict[str, StreamState], interrupted: bool) -> Optional[BaseException]:
    """The exception the run ends with, or None: a stage's failure, failed streams, or frames that
    could not be decoded (checked after the stages have joined)."""
    error = control.error if control else None
    if error is not None:
        stage, exc = error
        if isinstance(exc, StreamTRTError):
            return exc
        if isinstance(exc, KeyboardInterrupt):
            return KeyboardInterrupt()
        return caused(PipelineError(describe(stage, exc)), exc)
    failed = [st for st in streams.values() if st.state == "failed"]
    if len(streams) == 1 and failed and isinstance(failed[0].exception, StreamTRTError):
        return failed[0].exception
    if failed:
        ok = len(streams) - len(failed)
        detail = "; ".join(f"stream {st.id} ({st.display}): {st.error}" for st in failed)
        prefix = "" if len(streams) == 1 else f"{len(failed)} of {len(streams)} streams failed ({ok} completed): "
        return caused(PipelineError(prefix + detail), failed[0].exception)
    errors = []
    for st in streams.values():
        if st.state == "removed":
            continue
        err = decode_error_for(st.display, decode_stats(st, interrupted))
        if err is not None:
            errors.append(err)
    if len(errors) == 1:
        return errors[0]
    if errors:
        return DecodeError("; ".join(str(e) for e in errors))
    return None


def record_error(summary: RunSummary, control: Optional[Control], streams: dict[str, StreamState]) -> None:
    """Put the error the run ends with (kind, message, exit code) in the summary."""
    error = failure(control, streams, summary.interrupted)
    summary.error = None if error is None or isinstance(error, KeyboardInterrupt) else error_dict(error)


def close_sinks(sinks: list[Sink], summary: RunSummary, control: Optional[Control],
                streams: dict[str, StreamState]) -> None:
    """Close every sink; summary sinks last, so that the summary also reports a sink's failure."""
    first: Optional[BaseException] = None
    ordered = [s for s in sinks if not is_summary(s)] + [s for s in sinks if is_summary(s)]
    recorded = False
    for sink in ordered:
        if is_summary(sink) and not recorded:
            if first is not None and control is not None and control.error is None:
                control.fail("sink", first)
            record_error(summary, control, streams)
            recorded = True
        try:
            sink.close(summary)
        except Exception as exc:  # close them all; report the first failure
            first = first or exc
    if first is not None and control is not None and control.error is None:
        control.fail("sink", first)
    if not recorded:
        record_error(summary, control, streams)


def finish_summary(summary: RunSummary, wiring: "Wiring", streams: dict[str, StreamState],
                   control: Optional[Control], engine_labels: Optional[tuple[str, ...]], wall_s: float,
                   stream_status: list[dict]) -> None:
    """The summary's final numbers, once the stages have joined: wall time, per-stage timings,
    analytics, latency, bad frames, streams and (with several engines) each engine's share."""
    from .timing import merge_timers

    summary.wall_s = wall_s
    stages = wiring.stages()
    summary.stages = {t.name: t.stats() for t in merge_timers([s.timer for s in stages]) if t.stats().count}
    post = wiring.postprocess_stage
    if post is not None and post.tracking is not None:
        summary.stages[post.track_timer.name] = post.track_timer.stats()
        summary.analytics = {sid: state.summary() for sid, state in post.per_stream.items()}
    summary.latency = wiring.latency.stats()
    interrupted = summary.interrupted or (control is not None and control.error is not None)
    summary.bad_frames = sum(decode_stats(st, interrupted).bad_frames for st in streams.values())
    summary.streams = {st["id"]: st for st in stream_status}
    groups = wiring.groups
    if len(groups) > 1:
        labels = engine_labels or ()
        summary.engines = [{"engine": g.index, "label": labels[g.index] if g.index < len(labels) else str(g.index),
                            "frames": g.infer.timer.stats().frames,
                            "streams": sorted(st.id for st in streams.values() if st.engine == g.index)}
                           for g in groups]


def summary_of_failed_setup(config: Config, sinks: Optional[list[Sink]], parts: "Components",
                            error: StreamTRTError) -> RunSummary:
    """Write the summary sinks (only those: other outputs are not created) after construction
    failed: zero frames and the ``error`` the run ends with. A summary that cannot be written
    is only warned about: the construction error is the one reported. Returns the summary."""
    summary = RunSummary(source="", plan={})
    try:
        pool = sinks if sinks is not None else parts.sinks
        targets = [s for s in pool if is_summary(s)] if pool is not None else \
            [open_sink(uri) for uri in config.sinks if is_summary_uri(uri)]
        displays = [redact(sc.uri) for sc in config.streams()]
        summary = RunSummary(source=displays[0] if len(displays) == 1 else f"{len(displays)} streams",
                             plan=parts.plan.as_dict() if parts.plan is not None else {},
                             model=parts.model_setup.as_dict() if parts.model_setup is not None else {})
        summary.error = error_dict(error)
    except Exception as exc:  # noqa: BLE001 - the construction error is the one to report
        log.warning("the summary could not be written: %s", exc)
        return summary
    for sink in targets:
        try:
            sink.close(summary)
        except Exception as exc:  # noqa: BLE001
            log.warning("the summary could not be written: %s", exc)
    return summary


def deliver(result: FrameResult, run_id: str, summary: RunSummary, stream: Optional[StreamState],
            latency: StageTimer, sinks: list[Sink]) -> None:
    """Give ``result`` (and its events) their message ids (``RUN:STREAM:FRAME``, ``...:eK``: the same
    on a rerun of a file with the same run id, so receivers can dedupe), count it in the summary,
    its stream and the end-to-end timer, and write it and its events to every sink."""
    result.message_id = f"{run_id}:{result.stream_id}:{result.frame_index}"
    if result.events:
        result.events = [dataclasses.replace(e, message_id=f"{result.message_id}:e{k}")
                         for k, e in enumerate(result.events)]
    summary.frames += 1
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
