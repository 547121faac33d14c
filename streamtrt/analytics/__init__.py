"""Analytics on tracked objects: line crossing counts and polygon zones, with events."""

from .counters import LineCounter, StreamAnalytics, ZoneCounter
from .events import EVENT_SCHEMA, Event

__all__ = ["EVENT_SCHEMA", "Event", "LineCounter", "StreamAnalytics", "ZoneCounter"]
