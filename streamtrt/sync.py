"""Thread synchronisation shared by the sources and the runtime."""

from __future__ import annotations

import threading
import time
from typing import Optional, Union

POLL_S = 0.05  # how often a wait looks at the events other than the first


class AnyEvent:
    """An event that is set when any of ``events`` is set: an object's own stop plus the run's stop or
    abort. ``set()`` sets only the first (own) event, so stopping one stream stops no other.

    It has :class:`threading.Event`'s ``is_set``/``set``/``wait``, so it stands where one is expected.
    ``wait`` wakes at once when the first event is set and within :data:`POLL_S` seconds when another is.
    """

    def __init__(self, own: Union[threading.Event, "AnyEvent"], *others: Union[threading.Event, "AnyEvent"]):
        self.events = (own, *others)

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)

    def set(self) -> None:
        self.events[0].set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until any event is set (``True``) or ``timeout`` seconds pass (``False``)."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = POLL_S if end is None else min(POLL_S, end - time.monotonic())
            if left <= 0:
                return False
            self.events[0].wait(left)
        return True
