"""The sink interface: results are written as they arrive, and ``close`` flushes everything."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ..runtime.messages import FrameResult
    from ..runtime.summary import RunSummary


class Sink(abc.ABC):
    """Receives every :class:`FrameResult`; ``needs_images`` asks the pipeline for frame pixels."""

    needs_images = False

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
