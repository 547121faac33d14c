"""Per-sink filters, from the sink URI's query: ``?classes=person,car&min_score=0.5&streams=0,cam2``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import parse_qs

import numpy as np

from ..errors import SinkError
from .base import Sink, SinkStats
from .registry import FILTER_KEYS


@dataclass(frozen=True)
class SinkFilter:
    """Which results a sink gets: ``classes`` (names), ``min_score`` (0..1), ``streams`` (ids); ``None``: all."""

    classes: Optional[frozenset[str]] = None
    min_score: float = 0.0
    streams: Optional[frozenset[str]] = None

    @classmethod
    def from_query(cls, query: str, uri: str) -> "SinkFilter":
        q = parse_qs(query)
        unknown = set(q) - set(FILTER_KEYS)
        if unknown:
            raise SinkError(f"sink {uri!r}: unknown option(s) {', '.join(sorted(unknown))} "
                            f"(filters: {', '.join(FILTER_KEYS)})")
        split = lambda k: frozenset(x.strip() for v in q[k] for x in v.split(",") if x.strip()) if k in q else None  # noqa: E731
        try:
            min_score = float(q["min_score"][0]) if "min_score" in q else 0.0
        except ValueError:
            raise SinkError(f"sink {uri!r}: min_score must be a number") from None
        return cls(split("classes"), min_score, split("streams"))

    @property
    def active(self) -> bool:
        return self.classes is not None or self.min_score > 0 or self.streams is not None


class FilteredSink(Sink):
    """Passes a sink only the streams, classes and scores its filter allows; everything else of the
    :class:`Sink` interface goes to the wrapped sink unchanged."""

    def __init__(self, inner: Sink, rule: SinkFilter):
        self.inner = inner
        self.rule = rule
        self.needs_images = inner.needs_images

    @property
    def display(self) -> str:  # type: ignore[override]
        return self.inner.display

    def configure(self, analytics_config: Any) -> None:
        self.inner.configure(analytics_config)

    def stats(self) -> Optional[SinkStats]:
        return self.inner.stats()

    def open(self, fps: Optional[float]) -> None:
        self.inner.open(fps)

    def write(self, result) -> None:
        r = self.rule
        if r.streams is not None and result.stream_id not in r.streams:
            return
        d = result.detections
        keep = d.confidence >= r.min_score
        if r.classes is not None:
            keep &= np.isin(np.asarray(d.class_name, dtype=object), list(r.classes))
        self.inner.write(dataclasses.replace(result, detections=d[np.flatnonzero(keep)]))

    def write_event(self, event) -> None:
        r = self.rule
        if (r.streams is not None and event.stream_id not in r.streams) or \
                (r.classes is not None and event.class_name not in r.classes):
            return
        self.inner.write_event(event)

    def abort(self) -> None:
        self.inner.abort()

    def close(self, summary=None) -> None:
        self.inner.close(summary)
