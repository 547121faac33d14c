"""The sink interface: results are written as they arrive, and ``close`` flushes everything."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
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
    """Receives every :class:`FrameResult`; ``needs_images`` asks the pipeline for frame pixels."""

    needs_images = False
    rule = None
    """The sink's :class:`~streamtrt.sinks.filters.SinkFilter` (``?streams=``, ``?classes=``...), or None."""
    display: str = ""
    """The sink's URI with credentials hidden (empty where a sink has none to show)."""

    def configure(self, analytics) -> None:
        """Called once before :meth:`open` with the run's :class:`~streamtrt.config.AnalyticsConfig`
        (lines and zones), for sinks that draw them."""

    def open(self, fps: Optional[float]) -> None:
        """Called once before the first result; ``fps`` is the source's frame rate if known."""

    @abc.abstractmethod
    def write(self, result: "FrameResult") -> None: ...

    def write_event(self, event) -> None:
        """An analytics event (:class:`~streamtrt.analytics.Event`); ignored by sinks without a use for it."""

    def close(self, summary: Optional["RunSummary"] = None) -> None:
        """Flush and release; called once, also after an error or Ctrl-C."""

    def abort(self) -> None:
        """The run is being aborted (a second stop signal): cut any wait in :meth:`close` short.
        Called from the main thread's signal handler, so it only sets flags."""

    def stats(self) -> Optional[SinkStats]:
        """Delivery counters of a sink that delivers through an outbox; None for other sinks."""
        return None
