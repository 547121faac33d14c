"""Many streams into one consumer: a bounded lane per stream, taken round robin.

A full lane blocks its producer (file frames are never lost) or, for live streams that drop
stale frames, evicts its oldest item so that what waits is always the newest. Lanes come and
go while running (streams added and removed); a lane's end of stream is delivered once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Any, Callable, Optional

from .messages import EOS


class _Lane:
    def __init__(self, capacity: int, drop_oldest: bool, on_drop: Optional[Callable[[Any], None]]):
        self.items: deque = deque()
        self.capacity = capacity
        self.drop_oldest = drop_oldest
        self.on_drop = on_drop
        self.ended = False


class StreamMux:
    """Round-robin merge of per-stream lanes, safe for one producer per lane and one consumer."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._lanes: dict[str, _Lane] = {}
        self._order: list[str] = []
        self._next = 0

    def add(self, stream_id: str, capacity: int, drop_oldest: bool = False,
            on_drop: Optional[Callable[[Any], None]] = None) -> "Inlet":
        """Open a lane; its producer writes through the returned :class:`Inlet`."""
        with self._cond:
            if stream_id in self._lanes:
                raise ValueError(f"stream {stream_id!r} is already running")
            self._lanes[stream_id] = _Lane(max(1, capacity), drop_oldest, on_drop)
            self._order.append(stream_id)
            self._cond.notify_all()
        return Inlet(self, stream_id)

    def _put(self, stream_id: str, item: Any, timeout: Optional[float]) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            lane = self._lanes.get(stream_id)
            if lane is None or lane.ended:
                return  # removed meanwhile: nothing waits for it
            if item is EOS:
                lane.ended = True
                self._cond.notify_all()
                return
            while len(lane.items) >= lane.capacity:
                if lane.drop_oldest:
                    dropped = lane.items.popleft()
                    if lane.on_drop is not None:
                        lane.on_drop(dropped)
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise queue.Full
                self._cond.wait(remaining)
                if self._lanes.get(stream_id) is not lane:
                    return
            lane.items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float) -> Optional[tuple[str, Any]]:
        """The next ``(stream_id, item)`` round robin, ``(stream_id, EOS)`` once per ended lane,
        or ``None`` if nothing arrived within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = self._take()
                if got is not None:
                    self._cond.notify_all()
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def _take(self) -> Optional[tuple[str, Any]]:
        n = len(self._order)
        for k in range(n):
            i = (self._next + k) % n
            sid = self._order[i]
            lane = self._lanes[sid]
            if lane.items:
                self._next = (i + 1) % n
                return sid, lane.items.popleft()
            if lane.ended:
                self._drop_lane(sid)
                return sid, EOS
        return None

    def _drop_lane(self, sid: str) -> None:
        i = self._order.index(sid)
        del self._order[i]
        del self._lanes[sid]
        if self._order:
            self._next = self._next - 1 if i < self._next else self._next
            self._next %= len(self._order)
        else:
            self._next = 0

    def remove(self, stream_id: str) -> list[Any]:
        """Close a lane at once (its end of stream is still delivered); returns what it held."""
        with self._cond:
            lane = self._lanes.get(stream_id)
            if lane is None:
                return []
            held = list(lane.items)
            lane.items.clear()
            lane.ended = True
            self._cond.notify_all()
            return held

    def depths(self) -> dict[str, int]:
        with self._cond:
            return {sid: len(self._lanes[sid].items) for sid in self._order}

    def __len__(self) -> int:
        """Lanes still open or with an end of stream not yet delivered."""
        with self._cond:
            return len(self._order)


class Inlet:
    """A producer's end of one lane, shaped like :class:`queue.Queue` for :class:`Control.put`."""

    def __init__(self, mux: StreamMux, stream_id: str):
        self.mux = mux
        self.stream_id = stream_id

    def put(self, item: Any, timeout: Optional[float] = None) -> None:
        self.mux._put(self.stream_id, item, timeout)

    def qsize(self) -> int:
        return self.mux.depths().get(self.stream_id, 0)
