"""Shared run state for the stage threads: bounded hand-offs that never deadlock on shutdown."""

from __future__ import annotations

import queue
import threading
from typing import Any, Optional

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
