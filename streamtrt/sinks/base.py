"""The sink interface: results are written as they arrive, and ``close`` flushes everything."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from ..analytics.events import Event
    from .filters import SinkFilter
    from ..runtime.messages import FrameResult
    from ..runtime.summary import RunSummary


@dataclass(frozen=True)
class SinkStats:
    """A sink that delivers through an outbox (MQTT, webhook): records ``pending`` (not yet
    acknowledged), ``delivered``, ``dropped`` (outbox full) and connection ``reconnects``."""

    uri: str
    pending: int = 0
    delivered: int = 0
    dropped: int = 0
    reconnects: int = 0


class Sink(abc.ABC):
    """Receives every :class:`~streamtrt.runtime.messages.FrameResult` and analytics event of a run.

    Every method the pipeline calls is declared here. The pipeline calls :meth:`configure` and
    :meth:`open` once before the first result, then :meth:`write` per frame (in each stream's
    order; from one thread) and :meth:`write_event` per analytics event, and :meth:`close` exactly
    once at the end, also after an error or a stop signal. Methods raise
    :class:`~streamtrt.errors.SinkError` for an output that cannot be written; exceptions of the
    libraries they use never escape. A sink kind registers itself in
    :data:`streamtrt.sinks.registry.SINKS`.
    """

    needs_images = False
    """Ask the pipeline for the frame pixels (``FrameResult.image``: BGR ``uint8`` ``(H, W, 3)`` numpy)."""
    display: str = ""
    """The sink's URI as it may be shown (credentials hidden); set by every built-in sink, and by
    ``open_sink`` for sinks that leave it empty."""
    rule: Optional["SinkFilter"] = None
    """The filter (``?classes=&min_score=&streams=``) results pass before this sink; ``None``: all."""

    def configure(self, analytics_config: Any) -> None:
        """Called once before :meth:`open` with the job's
        :class:`~streamtrt.config.AnalyticsConfig` (lines and zones); sinks that draw them keep it."""

    def open(self, fps: Optional[float]) -> None:
        """Called once before the first result; ``fps`` is the source's frame rate if known."""

    @abc.abstractmethod
    def write(self, result: "FrameResult") -> None:
        """One frame's result: ``result.detections`` (boxes ``xyxy`` in source pixels, float32
        ``(N, 4)``; ``confidence``, ``class_id``, ``tracker_id``), stream id, index, timestamp (s)."""

    def write_event(self, event: "Event") -> None:
        """An analytics event (:class:`~streamtrt.analytics.events.Event`); ignored by sinks without a use for it."""

    def close(self, summary: Optional["RunSummary"] = None) -> None:
        """Flush and release; called once, also after an error or Ctrl-C. ``summary``: the run's."""

    def abort(self) -> None:
        """The run is being aborted (a second stop signal): cut any wait in :meth:`close` short.
        Called from the main thread's signal handler, so it only sets flags."""

    def stats(self) -> Optional[SinkStats]:
        """Delivery counters of a sink that delivers through an outbox; None for other sinks."""
        return None
