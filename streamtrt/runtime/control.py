"""Shared run state for the stage threads: bounded hand-offs that never deadlock on shutdown."""

from __future__ import annotations

import queue
import threading
from typing import Any, Optional

from ..sync import AnyEvent

_POLL_S = 0.05


class Control:
    """``stop`` asks the source to end the stream gracefully (Ctrl-C, ``Pipeline.stop``);
    ``abort`` makes every stage exit at once (a failure, or a second Ctrl-C)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.abort = threading.Event()
        self._error: Optional[tuple[str, BaseException]] = None
        self._lock = threading.Lock()

    def put(self, q: "queue.Queue[Any]", item: Any) -> bool:
        """Block until ``item`` is queued; ``False`` if the run was aborted meanwhile."""
        while not self.abort.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self, q: "queue.Queue[Any]") -> Any:
        """Block until an item arrives; ``None`` if the run was aborted meanwhile."""
        while not self.abort.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return None

    def fail(self, stage: str, error: BaseException) -> None:
        """Record the first failure and abort the run."""
        with self._lock:
            if self._error is None:
                self._error = (stage, error)
        self.abort.set()

    @property
    def error(self) -> Optional[tuple[str, BaseException]]:
        return self._error


class StreamControl(Control):
    """The control of one stream's own stages: the run's stop and abort reach it, but its own
    stop (a removed stream) and failure stay with the stream; ``on_fail`` records the failure."""

    def __init__(self, run: Control, on_fail):
        super().__init__()
        self.run = run
        self.stop = AnyEvent(threading.Event(), run.stop)  # type: ignore[assignment]
        self.abort = AnyEvent(threading.Event(), run.abort)  # type: ignore[assignment]
        self._on_fail = on_fail

    def fail(self, stage: str, error: BaseException) -> None:
        with self._lock:
            first = self._error is None
            if first:
                self._error = (stage, error)
        self.abort.set()
        if first:
            self._on_fail(stage, error)
