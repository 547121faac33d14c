"""A durable outbox: records for network sinks wait in SQLite (WAL) until delivered.

Writing to it is a local insert, so the video pipeline never waits for a broker or a server.
Delivery is at least once: a record leaves the outbox only after the receiver acknowledged it,
and what is pending when the process stops is sent by the next run that uses the same outbox.

Bounded on disk: when ``max_records`` are pending, the oldest are dropped to make room (and
counted in ``dropped``) -- the pipeline is never blocked, and the newest data wins.

One owner: a process holds an exclusive lock (``flock``) on ``<outbox>.lock`` while the outbox is
open, so that two runs never deliver, acknowledge and count the same records. A second process
that opens the same outbox gets a :class:`SinkError` naming the file; give each run its own
outbox with the sink option ``?outbox=PATH``. The lock goes with the process, even a killed one.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Optional

from ..errors import SinkError


class Outbox:
    def __init__(self, path: Path, max_records: int = 1_000_000):
        self.path = Path(path)
        self.max_records = max_records
        self.dropped = 0
        self._lock = threading.Lock()
        self._owner = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._owner = _lock_owner(self.path)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                             "message_id TEXT NOT NULL, payload BLOB NOT NULL)")
            # Kept in memory: counting rows in SQLite scans the table, too slow for every insert.
            self._pending = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        except (OSError, sqlite3.Error) as exc:
            self._release()
            raise SinkError(f"cannot open the outbox {self.path}: {exc}") from None

    def put(self, message_id: str, payload: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT INTO outbox (message_id, payload) VALUES (?, ?)", (message_id, payload))
            self._pending += 1
            over = self._pending - self.max_records
            if over > 0:
                self._db.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (over,))
                self._pending -= over
                self.dropped += over

    def peek(self, limit: int) -> list[tuple[int, str, bytes]]:
        """The oldest ``limit`` pending records: (seq, message_id, payload)."""
        with self._lock:
            return list(self._db.execute("SELECT seq, message_id, payload FROM outbox ORDER BY seq LIMIT ?", (limit,)))

    def ack(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:
            cursor = self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            self._pending = max(0, self._pending - max(cursor.rowcount, 0))

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._release()

    def _release(self) -> None:
        if self._owner is not None:
            self._owner.close()  # closing the descriptor releases the flock
            self._owner = None


def _lock_owner(path: Path):
    """Take ``<path>.lock`` exclusively (the file is left behind; the lock is not)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process guard
        return None
    lock = open(path.with_name(path.name + ".lock"), "a+")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip()
        lock.close()
        raise SinkError(f"the outbox {path} is in use by another streamtrt process"
                        + (f" (pid {holder})" if holder.isdigit() else "")
                        + "; give this run its own outbox with the sink option ?outbox=PATH") from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def default_outbox_path(name: str, directory: Optional[Path] = None) -> Path:
    """``$XDG_STATE_HOME/streamtrt/outbox/<name>.sqlite`` unless a folder is given."""
    import os
    import re

    base = directory or Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "streamtrt" / "outbox"
    return Path(base) / (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") + ".sqlite")
