"""Stop signals for the command line: SIGTERM, SIGINT and SIGHUP stop a run gracefully.

The first signal asks the pipeline to stop (:meth:`Pipeline.stop`): reading ends, the batches in
flight finish, every sink is finalised and outboxes are flushed. A second signal aborts
(:meth:`Pipeline.abort`): the stages exit at once and the sinks still close. The process then exits
with 128 + the first signal's number (130 SIGINT, 143 SIGTERM, 129 SIGHUP), the shell's convention.

The same signal again within :data:`REPEAT_WINDOW_S` of the first counts once: ``timeout`` sends its
SIGTERM to the process and to its process group, so the process gets two at once.

A process that starts with SIGINT (or SIGHUP) ignored keeps ignoring it: a background job of a
script ignores Ctrl-C, and ``nohup`` ignores SIGHUP. SIGTERM always works.

Handlers can only be installed on the main thread; elsewhere :class:`StopSignals` does nothing.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Callable, Optional

STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")
REPEAT_WINDOW_S = 1.0  # the same signal within this of the first is the same request


class SignalInterrupt(KeyboardInterrupt):
    """A stop signal arrived before there was a pipeline to stop (or after a third signal)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def exit_code(signame: str) -> int:
    """The shell's exit status for a process ended by ``signame``: 128 + its number."""
    return 128 + int(signal.Signals[signame])


class StopSignals:
    """Route SIGTERM/SIGINT/SIGHUP to ``on_stop(name)`` then ``on_abort(name)`` while in a ``with``.

    Before :meth:`attach`, a signal raises :class:`SignalInterrupt` (nothing is running to finalise);
    a third signal raises it too, as a last resort. The previous handlers come back on exit.
    """

    def __init__(self) -> None:
        self.signame: Optional[str] = None  # the first signal received
        self.count = 0
        self._first_at = 0.0
        self._on_stop: Optional[Callable[[str], None]] = None
        self._on_abort: Optional[Callable[[str], None]] = None
        self._previous: dict[int, object] = {}

    def attach(self, on_stop: Callable[[str], None], on_abort: Callable[[str], None]) -> None:
        self._on_stop, self._on_abort = on_stop, on_abort

    @property
    def exit_code(self) -> Optional[int]:
        return exit_code(self.signame) if self.signame else None

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in STOP_SIGNALS:
            num = getattr(signal, name, None)
            if num is None:  # SIGHUP does not exist on Windows
                continue
            current = signal.getsignal(num)
            if current is signal.SIG_IGN and name != "SIGTERM":
                continue  # ignored when we started (background job, nohup): keep ignoring it
            self._previous[num] = current
            signal.signal(num, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for num, handler in self._previous.items():
            signal.signal(num, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum: int, _frame) -> None:
        name = signal.Signals(signum).name
        now = time.monotonic()
        if self.count == 1 and name == self.signame and now - self._first_at < REPEAT_WINDOW_S:
            return  # the same request delivered twice (``timeout`` signals the process and its group)
        self.count += 1
        if self.signame is None:
            self.signame = name
            self._first_at = now
        if self._on_stop is None or self.count > 2:
            raise SignalInterrupt(signum)
        if self.count == 1:
            self._on_stop(name)
        else:
            self._on_abort(name)
