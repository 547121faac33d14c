"""Analytics events: their own messages in every sink, next to the per-frame records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

EVENT_SCHEMA = "streamtrt.event/1"


@dataclass(frozen=True)
class Event:
    """``line_cross`` (direction ``in``/``out``), ``zone_enter`` or ``zone_exit`` (with ``dwell_s``)."""

    kind: str
    name: str  # the line's or zone's name
    stream_id: str
    frame_index: int
    timestamp: Optional[float]
    tracker_id: int
    class_name: str
    direction: Optional[str] = None
    dwell_s: Optional[float] = None
    message_id: str = ""

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "schema": EVENT_SCHEMA, "event": self.kind, "name": self.name, "stream_id": self.stream_id,
            "frame_index": self.frame_index,
            "timestamp": None if self.timestamp is None else round(self.timestamp, 6),
            "tracker_id": self.tracker_id, "class_name": self.class_name,
        }
        if self.direction is not None:
            record["direction"] = self.direction
        if self.dwell_s is not None:
            record["dwell_s"] = round(self.dwell_s, 3)
        if self.message_id:
            record["message_id"] = self.message_id
        return record
