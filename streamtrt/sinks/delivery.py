"""Network sinks: records go into an outbox; a worker thread delivers them with retries and
exponential backoff (with jitter), and acknowledges them only once the receiver accepted them."""

from __future__ import annotations

import abc
import json
import logging
import random
import threading
import time
from pathlib import Path
from typing import Optional

from ..sources.uri import redact
from .base import Sink
from .outbox import Outbox, default_outbox_path

log = logging.getLogger("streamtrt")


class DeliveryError(Exception):
    """A delivery attempt failed; ``permanent`` ones are not retried."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class OutboxSink(Sink):
    """Base of MQTT and webhook sinks. Subclasses implement :meth:`connect` and :meth:`deliver`."""

    batch_size = 1

    def __init__(self, uri: str, outbox: Optional[Path] = None, flush_timeout_s: float = 10.0,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, max_records: int = 1_000_000):
        self.uri = uri
        self.display = redact(uri)
        self.outbox_path = outbox or default_outbox_path(self.display)
        self.flush_timeout_s = flush_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_records = max_records
        self.outbox: Optional[Outbox] = None
        self.delivered = 0
        self.failures = 0
        self.rejected = 0
        self.last_error: Optional[str] = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._worker: Optional[threading.Thread] = None
        self._left: Optional[int] = None

    # -- subclass interface --------------------------------------------------------------------
    @abc.abstractmethod
    def connect(self) -> None:
        """Prepare the connection; raise SinkError for problems no retry can fix (credentials)."""

    @abc.abstractmethod
    def deliver(self, payloads: list[bytes]) -> None:
        """Send and wait for the receiver's acknowledgement; raise DeliveryError on failure."""

    def disconnect(self) -> None:
        pass

    # -- Sink ----------------------------------------------------------------------------------
    def open(self, fps: Optional[float]) -> None:
        self.outbox = Outbox(self.outbox_path, self.max_records)
        if self.outbox.pending():
            log.warning("%s: %d records from an earlier run are pending; sending them first",
                        self.display, self.outbox.pending())
        self.connect()
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

    def abort(self) -> None:
        """Cut the exit flush short (a second stop signal): the worker stops after its current
        delivery and what is left stays in the outbox for the next run."""
        self.flush_timeout_s = 0.0
        self._stop.set()
        self._wake.set()

    def close(self, summary=None) -> None:
        if self.outbox is None:
            return
        deadline = time.monotonic() + self.flush_timeout_s
        while (self.outbox.pending() and time.monotonic() < deadline and self._worker and self._worker.is_alive()
               and not self._stop.is_set()):
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(self.flush_timeout_s + 5)
        left = self._left = self.outbox.pending()
        if left:
            log.warning("%s: %d records still pending (%s); kept in %s for the next run",
                        self.display, left, self.last_error or "not yet acknowledged", self.outbox_path)
        self.disconnect()
        self.outbox.close()

    # -- worker --------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = self.backoff_s
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
                self._stop.wait(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff_s)
                continue
            except Exception as exc:  # a bug must not kill delivery silently
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("%s: delivery failed: %s", self.display, self.last_error)
                self._stop.wait(delay)
                continue
            self.outbox.ack([seq for seq, _, _ in rows])
            self.delivered += len(rows)
            self.last_error = None
            delay = self.backoff_s
