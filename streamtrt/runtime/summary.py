"""The run summary: frames, detections per class, throughput and per-stage latency."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from .timing import LatencyStats


@dataclass
class RunSummary:
    source: str
    plan: dict
    frames: int = 0
    bad_frames: int = 0
    detections: int = 0
    per_class: Counter = field(default_factory=Counter)
    wall_s: float = 0.0
    stages: dict[str, LatencyStats] = field(default_factory=dict)
    latency: Optional[LatencyStats] = None  # decode start -> postprocess end, per frame
    interrupted: bool = False
    stop_reason: Optional[str] = None  # why a stop was asked for, e.g. "SIGTERM"
    error: Optional[dict] = None  # the run's error: {"kind", "message", "exit_code"}; None after success
    events: Counter = field(default_factory=Counter)
    analytics: dict = field(default_factory=dict)  # stream id -> lines/zones summaries
    streams: dict = field(default_factory=dict)  # stream id -> state, counters, latency p50/p99
    engines: list = field(default_factory=list)  # with several engines: label, frames, stream ids of each
    model: dict = field(default_factory=dict)  # how the model is fed and read: key -> {value, reason}

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "plan": self.plan,
            "frames": self.frames,
            "bad_frames": self.bad_frames,
            "detections": self.detections,
            "detections_per_class": dict(sorted(self.per_class.items(), key=lambda kv: (-kv[1], kv[0]))),
            "wall_s": round(self.wall_s, 3),
            "fps": round(self.fps, 2),
            "stages": {name: s.as_dict() for name, s in self.stages.items()},
            "latency_ms": None if self.latency is None else {
                "p50": round(self.latency.p50_ms, 2), "p99": round(self.latency.p99_ms, 2)},
            "events": dict(self.events),
            "analytics": self.analytics,
            "streams": self.streams,
            **({"engines": self.engines} if self.engines else {}),
            **({"model": self.model} if self.model else {}),
            "interrupted": self.interrupted,
            "stop_reason": self.stop_reason,
            "error": self.error,
        }

    def format(self) -> str:
        """A short human-readable report."""
        lines = [
            f"{self.frames} frames from {self.source} in {self.wall_s:.1f} s ({self.fps:.1f} fps)"
            + (f", {self.bad_frames} bad frames" if self.bad_frames else "")
            + ((f" [interrupted by {self.stop_reason}]" if self.stop_reason else " [interrupted]")
               if self.interrupted else ""),
            f"plan: decoder {self.plan.get('decoder')}, preprocessor {self.plan.get('preprocessor')}, "
            f"runner {self.plan.get('runner')}" + _threads_note(self.plan.get("threads")),
        ]
        for e in self.engines:
            lines.append(f"{e['label']}: {e['frames']} frames from stream(s) {', '.join(e['streams']) or '-'}")
        top = ", ".join(f"{name} {n}" for name, n in sorted(self.per_class.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"{self.detections} detections" + (f": {top}" if top else ""))
        for sid, a in self.analytics.items():
            for name, c in a.get("lines", {}).items():
                lines.append(f"line {name} [{sid}]: in {sum(c['in'].values())} {dict(c['in'])}, "
                             f"out {sum(c['out'].values())} {dict(c['out'])}")
            for name, z in a.get("zones", {}).items():
                lines.append(f"zone {name} [{sid}]: {z['enters']} enters, {z['exits']} exits, "
                             f"max occupancy {z['max_occupancy']}")
        for name, s in self.stages.items():
            lines.append(f"  {name:<18} {s.ms_per_frame:7.2f} ms/frame   batch p50 {s.p50_ms:7.2f} ms  p99 {s.p99_ms:7.2f} ms")
        if self.latency is not None and self.latency.count:
            lines.append(f"  {'end-to-end latency':<18} p50 {self.latency.p50_ms:.1f} ms  p99 {self.latency.p99_ms:.1f} ms")
        if len(self.streams) > 1 or any(s.get("live") for s in self.streams.values()):
            for sid, s in self.streams.items():
                lat = s.get("latency_ms") or {}
                extra = "".join(f", {k.replace('_', ' ')} {s[k]}" for k in ("dropped", "reconnects", "frames_lost")
                                if s.get(k))
                lines.append(f"  stream {sid:<10} {s['state']:<12} {s['frames']:>7} frames, latency p50 "
                             f"{lat.get('p50', 0):.1f} ms p99 {lat.get('p99', 0):.1f} ms{extra}  {s['uri']}")
                if s.get("state") == "failed" and s.get("error"):
                    lines.append(f"    failed: {s['error']}")
        if self.error:
            lines.append(f"error ({self.error['kind']}, exit {self.error['exit_code']}): {self.error['message']}")
        return "\n".join(lines)


def _threads_note(t) -> str:
    """`` (2 runs x 1 thread, no spin)`` for a CPU runner's thread plan; empty otherwise."""
    if not t or not t.get("intra_op"):
        return ""
    runs = t.get("workers", 1)
    return (f" ({runs} run{'s' if runs != 1 else ''} x {t['intra_op']} thread{'s' if t['intra_op'] != 1 else ''}"
            f"{'' if t.get('spin') else ', no spin'})")
