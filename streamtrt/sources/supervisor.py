"""Supervision of one live stream: connection state, reconnects with exponential backoff and
jitter, and the counters shown in status lines and metrics."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Optional

from ..config import LiveConfig
from ..errors import SourceError
from ..redact import redact
from ..retry import Backoff

log = logging.getLogger("streamtrt")


class StallError(Exception):
    """No frame for longer than the stall timeout."""


class Supervisor:
    """State machine of a live source: ``connecting`` -> ``running`` -> ``reconnecting`` -> ...,
    ending in ``stopped`` or ``failed`` (after ``max_reconnects`` failed attempts in a row)."""

    def __init__(self, display: str, cfg: LiveConfig, stop: Optional[threading.Event] = None,
                 rng: Optional[random.Random] = None):
        self.display = display
        self.cfg = cfg
        self.stop = stop or threading.Event()
        self.state = "connecting"
        self.reconnects = 0  # successful reconnections
        self.attempts = 0  # failed attempts since the last success
        self.frames_lost = 0
        self.skipped_until_keyframe = 0
        self.last_error: Optional[str] = None
        self.last_frame_at: Optional[float] = None  # monotonic
        self.down_since: Optional[float] = None
        self.connected_once = False
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()

    def connected(self) -> None:
        """A connection delivered its first frame."""
        with self._lock:
            if self.connected_once and self.state != "running":
                self.reconnects += 1
                log.warning("%s: reconnected after %.1f s", self.display,
                            time.monotonic() - (self.down_since or time.monotonic()))
            self.connected_once = True
            self.state = "running"
            self.attempts = 0
            self.down_since = None

    def frame(self) -> None:
        self.last_frame_at = time.monotonic()

    def failed(self, reason: str) -> float:
        """Record a failure; return the backoff delay before the next attempt.

        Raises :class:`SourceError` when ``max_reconnects`` attempts in a row have failed."""
        reason = redact(reason)
        with self._lock:
            self.last_error = reason
            self.attempts += 1
            if self.down_since is None:
                self.down_since = time.monotonic()
            self.state = "reconnecting"
            limit = self.cfg.max_reconnects
            if limit is not None and self.attempts > limit:
                self.state = "failed"
                raise SourceError(f"{self.display}: gave up after {self.attempts} failed connection attempts "
                                  f"(last: {reason})")
            delay = Backoff(self.cfg.reconnect_initial_s, self.cfg.reconnect_max_s).delay(self.attempts, self._rng)
        if self.attempts == 1 or self.attempts % 10 == 0:
            log.warning("%s: %s; reconnecting in %.1f s (attempt %d)", self.display, reason, delay, self.attempts)
        return delay

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped; ``True`` if stopped."""
        return self.stop.wait(seconds)

    def count_lost(self, frames: int) -> None:
        if frames > 0:
            with self._lock:
                self.frames_lost += frames

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "state": self.state, "reconnects": self.reconnects, "attempts": self.attempts,
                "frames_lost": self.frames_lost + self.skipped_until_keyframe, "error": self.last_error,
                "down_for_s": None if self.down_since is None else round(time.monotonic() - self.down_since, 1),
            }
