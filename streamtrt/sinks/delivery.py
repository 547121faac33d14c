"""Network sinks: records go into an outbox; a worker thread delivers them and acknowledges
them only once the receiver accepted them.

Retries follow the shared :class:`~streamtrt.retry.Backoff` policy, with two short cuts so that
records flow again soon after a receiver comes back, however long the backoff had grown:

- when the receiver was unreachable at a failure (no connection), the worker probes it every
  ``PROBE_S`` (the MQTT client's own reconnect, or a TCP connection to the web server) and
  retries as soon as it answers;
- once the pipeline has ended, the exit drain retries every ``PROBE_S`` for at most ``drain_s``
  seconds (``?drain=S``, default ``delivery.drain_s``) and reports its progress on stderr.
"""

from __future__ import annotations

import abc
import json
import logging
import threading
import time
from pathlib import Path
from typing import Optional

from ..errors import SinkError
from ..retry import Backoff
from ..redact import redact
from .base import Sink, SinkStats
from .outbox import Outbox, default_outbox_path

log = logging.getLogger("streamtrt")

PROBE_S = 1.0  # how often an unreachable receiver is probed, and the retry interval while draining
PROGRESS_S = 1.0  # how often the exit drain reports what is left


def default_drain_s() -> float:
    """``delivery.drain_s``'s default: the one place it is defined is the config."""
    from ..config import DeliveryConfig

    return DeliveryConfig().drain_s


class DeliveryError(Exception):
    """A delivery attempt failed; ``permanent`` ones are not retried."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class OutboxSink(Sink):
    """Base of MQTT and webhook sinks. Subclasses implement :meth:`connect`, :meth:`deliver` and
    :meth:`reachable`, and call :meth:`retry_now` when they learn that the receiver is back."""

    batch_size = 1

    def __init__(self, uri: str, outbox: Optional[Path] = None, drain_s: Optional[float] = None,
                 backoff: Backoff = Backoff(0.5, 30.0), max_records: int = 1_000_000):
        self.uri = uri
        self.display = redact(uri)
        self.outbox_path = outbox or default_outbox_path(self.display)
        self.drain_s = default_drain_s() if drain_s is None else drain_s
        self.backoff = backoff
        self.max_records = max_records
        self.outbox: Optional[Outbox] = None
        self.delivered = 0
        self.reconnects = 0  # counted by sinks that know (MQTT's client callbacks)
        self.failures = 0
        self.rejected = 0
        self.last_error: Optional[str] = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # new records
        self._retry = threading.Event()  # the receiver is back, or the drain began: cut the backoff short
        self._draining = False
        self._worker: Optional[threading.Thread] = None
        self._left: Optional[int] = None

    # -- subclass interface --------------------------------------------------------------------
    @abc.abstractmethod
    def connect(self) -> None:
        """Prepare the connection; raise SinkError for problems no retry can fix (credentials)."""

    @abc.abstractmethod
    def deliver(self, payloads: list[bytes]) -> None:
        """Send and wait for the receiver's acknowledgement; raise DeliveryError on failure."""

    def reachable(self) -> bool:
        """Whether the receiver answers now (cheap; called at most every ``PROBE_S`` while it does not)."""
        return True

    def receiver_state(self) -> str:
        """A few words for the progress line, e.g. ``broker not connected (retrying)``."""
        if self.last_error:
            return f"{redact(self.last_error)} (retrying)"
        return "sending"

    def disconnect(self) -> None:
        pass

    def retry_now(self) -> None:
        """Wake the worker: the receiver is back."""
        self._retry.set()

    # -- Sink ----------------------------------------------------------------------------------
    def open(self, fps: Optional[float]) -> None:
        self.outbox = Outbox(self.outbox_path, self.max_records)
        if self.outbox.pending():
            log.warning("%s: %d records from an earlier run are pending; sending them first",
                        self.display, self.outbox.pending())
        try:
            self.connect()
        except BaseException:
            self.outbox.close()
            raise
        self._worker = threading.Thread(target=self._run, name=f"streamtrt-sink-{type(self).__name__}", daemon=True)
        self._worker.start()

    def write(self, result) -> None:
        self._enqueue(result.to_record())

    def write_event(self, event) -> None:
        self._enqueue(event.to_record())

    def _enqueue(self, record: dict) -> None:
        self.outbox.put(record["message_id"], json.dumps(record, separators=(",", ":")).encode())
        self._wake.set()

    def pending(self) -> int:
        """Records not yet acknowledged (after ``close``: those left for the next run)."""
        if self.outbox is None:
            return 0
        return self._left if self._left is not None else self.outbox.pending()

    def stats(self) -> SinkStats:
        return SinkStats(self.display, self.pending(), self.delivered,
                         self.outbox.dropped if self.outbox is not None else 0, self.reconnects)

    def abort(self) -> None:
        """Cut the exit flush short (a second stop signal): the worker stops after its current
        delivery and what is left stays in the outbox for the next run."""
        self.drain_s = 0.0
        self._stop.set()
        self._wake.set()

    def close(self, summary=None) -> None:
        if self.outbox is None:
            return
        self.drain()
        self._stop.set()
        self._retry.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(30)
        left = self._left = self.outbox.pending()
        if left:
            log.warning("%s: %d records still pending (%s); kept in %s for the next run",
                        self.display, left, self.last_error or "not yet acknowledged", self.outbox_path)
        self.disconnect()
        self.outbox.close()

    def drain(self) -> None:
        """Keep delivering for up to ``drain_s``, retrying every ``PROBE_S``; say what is left every
        ``PROGRESS_S`` once the wait lasts (a fast drain prints nothing)."""
        self._draining = True
        self._retry.set()
        self._wake.set()
        start = time.monotonic()
        deadline, report_at = start + self.drain_s, start + PROGRESS_S
        while (self.outbox.pending() and self._worker is not None and self._worker.is_alive()
               and not self._stop.is_set()):  # abort() cuts the drain short
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= report_at:
                log.warning("%s: %d records left, %s; waiting up to %.0f s more (?drain=S)", self.display,
                            self.outbox.pending(), self.receiver_state(), deadline - now)
                report_at += PROGRESS_S
            time.sleep(0.05)

    # -- worker --------------------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            rows = self.outbox.peek(self.batch_size)
            if not rows:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            try:
                self.deliver([payload for _, _, payload in rows])
            except DeliveryError as exc:
                self.failures += 1
                if self.last_error != str(exc):
                    log.warning("%s: %s; retrying", self.display, redact(str(exc)))
                self.last_error = str(exc)
                if exc.permanent:  # the receiver will never take these: do not block the rest
                    self.rejected += len(rows)
                    self.outbox.ack([seq for seq, _, _ in rows])
                    continue
                attempt += 1
                self._pause(self.backoff.delay(attempt))
                continue
            except Exception as exc:  # a bug must not kill delivery silently
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("%s: delivery failed: %s", self.display, self.last_error)
                attempt += 1
                self._pause(self.backoff.delay(attempt))
                continue
            self.outbox.ack([seq for seq, _, _ in rows])
            self.delivered += len(rows)
            self.last_error = None
            attempt = 0

    def _pause(self, delay_s: float) -> None:
        """Wait out a backoff delay, but no longer than until the receiver is back (an unreachable
        receiver is probed every ``PROBE_S``; :meth:`retry_now` wakes at once) and, while
        draining, no longer than ``PROBE_S``."""
        self._retry.clear()
        down = not self.reachable()
        end = time.monotonic() + delay_s
        while not self._stop.is_set():
            now = time.monotonic()
            if self._draining:
                end = min(end, now + PROBE_S)
            left = end - now
            if left <= 0:
                return
            if self._retry.wait(min(left, PROBE_S)):
                self._retry.clear()
                if self._stop.is_set() or not down or self.reachable():
                    return
                continue  # the drain began while the receiver is still away: retry within PROBE_S
            if down and self.reachable():
                return


def seconds_option(spec, key: str) -> Optional[float]:
    """A ``?key=S`` option of a network sink in seconds, or ``None`` when not given. Raises
    :class:`~streamtrt.errors.SinkError` for a value that is not a number >= 0."""
    if key not in spec.options:
        return None
    try:
        value = float(spec.options[key])
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise SinkError(f"sink {redact(spec.target)!r}: {key} must be a number of seconds (got {spec.options[key]!r})")
    return value


def outbox_options(spec) -> dict:
    """:class:`OutboxSink` keyword arguments from a sink spec: ``?outbox=PATH`` and ``?drain=S``
    (default ``delivery.drain_s``)."""
    kwargs: dict = {}
    if "outbox" in spec.options:
        kwargs["outbox"] = Path(spec.options["outbox"])
    drain = seconds_option(spec, "drain")
    if drain is None and spec.delivery is not None:
        drain = spec.delivery.drain_s
    if drain is not None:
        kwargs["drain_s"] = drain
    return kwargs
