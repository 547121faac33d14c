"""A pipeline's state at one instant, as plain frozen dataclasses.

:meth:`Pipeline.stats() <streamtrt.runtime.pipeline.Pipeline.stats>` returns a
:class:`PipelineStats`; the Prometheus collector, the CLI's progress line, the summary and a
cluster worker all read this snapshot instead of the pipeline's internals. Everything in it is
JSON-ready through :meth:`PipelineStats.as_dict` (credentials already redacted from URIs).

Units: seconds (``*_s``), milliseconds (``*_ms``), frames per second (``fps``), counts otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from ..sinks.base import SinkStats

__all__ = ["PipelineStats", "SinkStats", "StageStats", "StreamStats", "RUN_STATES"]

RUN_STATES = ("created", "running", "stopping", "finished")
"""The lifecycle of a pipeline: built, iterating, stop requested (draining), ended."""


@dataclass(frozen=True)
class StreamStats:
    """One stream. ``state``: connecting, running, reconnecting, ended, failed or removed.

    ``frames``: frames that reached the sinks; ``dropped``: frames dropped by the live latency
    policy; ``bad_frames``: frames that could not be decoded; ``frames_lost``: frames a live source
    did not deliver (outages), estimated from its rate; ``fps``: rate at the sinks over the last
    5 s; ``latency_p50_ms``/``latency_p99_ms``: decode-to-sink latency over the recent frames
    (None before the first frame)."""

    id: str
    uri: str
    state: str
    decoder: str
    live: bool
    frames: int = 0
    dropped: int = 0
    bad_frames: int = 0
    reconnects: int = 0
    frames_lost: int = 0
    fps: float = 0.0
    last_frame_age_s: Optional[float] = None
    latency_p50_ms: Optional[float] = None
    latency_p99_ms: Optional[float] = None
    engine: Optional[int] = None
    error: Optional[str] = None


@dataclass(frozen=True)
class StageStats:
    """One stage kind (per-stream stages merged), or ``end_to_end`` for the frame latency.

    ``batches``/``frames``: handled so far; ``busy_s``: time spent in the stage; ``p50_ms``,
    ``p99_ms``: per batch over the recent batches; ``buckets``: cumulative counts per bound of
    :data:`~streamtrt.runtime.timing.HISTOGRAM_BUCKETS_S` then +Inf (a Prometheus histogram)."""

    name: str
    batches: int
    frames: int
    busy_s: float
    p50_ms: float
    p99_ms: float
    buckets: tuple[int, ...] = ()


@dataclass(frozen=True)
class PipelineStats:
    """The whole pipeline. ``elapsed_s``: since iteration started (0 before); ``expected_frames``:
    the run's total when known (``expected_estimated``: a guess, shown as ``~N``); ``queues``:
    items waiting between stages, by queue name; ``error``: the error the run ended with
    (``{"kind", "message", "exit_code"}``) once finished, else None."""

    run_id: str
    state: str
    elapsed_s: float
    frames: int
    detections: int
    expected_frames: Optional[int] = None
    expected_estimated: bool = False
    streams: tuple[StreamStats, ...] = ()
    stages: tuple[StageStats, ...] = ()
    queues: dict[str, int] = field(default_factory=dict)
    sinks: tuple[SinkStats, ...] = ()
    error: Optional[dict] = None

    @property
    def pending_records(self) -> int:
        """Records waiting in every outbox sink."""
        return sum(s.pending for s in self.sinks)

    def stream(self, stream_id: str) -> Optional[StreamStats]:
        return next((s for s in self.streams if s.id == stream_id), None)

    def as_dict(self) -> dict:
        """JSON-ready (tuples become lists)."""
        return dataclasses.asdict(self)


def stream_stats(status: dict, fps: float) -> StreamStats:
    """A :class:`StreamStats` from a stream's status dict (:meth:`StreamState.status
    <streamtrt.runtime.streams.StreamState.status>`) and its recent rate at the sinks."""
    lat = status["latency_ms"] or {}
    return StreamStats(
        id=status["id"], uri=status["uri"], state=status["state"], decoder=status["decoder"],
        live=bool(status["live"]), frames=status["frames"], dropped=status["dropped"],
        bad_frames=status["bad_frames"], reconnects=status["reconnects"], frames_lost=status["frames_lost"],
        fps=round(fps, 3), last_frame_age_s=status["last_frame_age_s"], latency_p50_ms=lat.get("p50"),
        latency_p99_ms=lat.get("p99"), engine=status.get("engine"), error=status.get("error"))


def stage_stats(timer) -> StageStats:
    """A :class:`StageStats` from a :class:`~streamtrt.runtime.timing.StageTimer`."""
    t = timer.stats()
    cumulative, _, _ = timer.histogram()
    return StageStats(timer.name, t.count, t.frames, round(t.total_s, 6), round(t.p50_ms, 3), round(t.p99_ms, 3),
                      tuple(cumulative))
