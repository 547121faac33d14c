"""The progress line and the status lines of a run (stderr)."""

from __future__ import annotations

import threading
import time
from typing import Optional

import click



class Progress:
    """Frames, fps and ETA for files; a live frame counter and per-stream states for streams.
    Drawn on stderr by a ticker thread, so a stream that delivers nothing still shows its state:
    redrawn in place on a terminal, else one plain ``streamtrt: progress ...`` line per interval.

    ``estimated``: ``total`` is an estimate (shown as ``~795``). The ETA shows once a rate is known."""

    def __init__(self, total: Optional[int], enabled: bool, tty: bool, extra=None,
                 interval: Optional[float] = None, estimated: bool = False, detail=None):
        self.total = total
        self.estimated = estimated
        self.extra = extra  # () -> str appended to the line, e.g. the sinks' backlog
        self.detail = detail  # () -> str logged on its own line each interval (-v: stage timings)
        self.enabled = enabled
        self.tty = tty
        self.interval = interval or (0.25 if tty else 10.0)
        self.start = time.perf_counter()
        self.last = 0.0
        self.frames = 0
        self._done = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        if enabled or detail is not None:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    def update(self, _result=None) -> None:
        self.frames += 1

    def _tick(self) -> None:
        detail_every = max(self.interval, 5.0)
        next_detail = time.perf_counter() + detail_every
        while not self._done.wait(self.interval):
            self.last = time.perf_counter()
            try:
                if self.enabled:
                    self._draw(self.last)
                if self.detail is not None and self.last >= next_detail:
                    next_detail = self.last + detail_every
                    line = self.detail()
                    if line:
                        click.echo(("\r\x1b[K" if self.tty and self.enabled else "") + f"streamtrt: {line}", err=True)
            except Exception:  # a status line must never take the run down
                pass

    def text(self, now: float) -> str:
        """The status line at ``now`` (a ``time.perf_counter()`` value)."""
        elapsed = max(now - self.start, 1e-9)
        fps = self.frames / elapsed
        if self.total and not (self.estimated and self.frames >= self.total):  # an estimate passed: no total
            pct = min(100.0, 100.0 * self.frames / self.total)
            total = f"~{self.total}" if self.estimated else str(self.total)
            text = f"frames {self.frames}/{total} ({pct:5.1f}%)  {fps:6.1f} fps"
            if self.frames > 0:  # a rate is known
                text += f"  ETA {'~' if self.estimated else ''}{_hms(max(0, self.total - self.frames) / fps)}"
        else:
            text = f"frames {self.frames}  {fps:6.1f} fps  elapsed {_hms(elapsed)}"
        if self.extra is not None:
            more = self.extra()
            text += f"  {more}" if more else ""
        return text

    def _draw(self, now: float) -> None:
        text = self.text(now)
        click.echo(("\r" + text + "  ") if self.tty else f"streamtrt: progress {text}", err=True, nl=not self.tty)

    def finish(self) -> None:
        self._done.set()
        if self._ticker is not None:
            self._ticker.join(2.0)
        if self.enabled and self.tty and self.last:
            click.echo("", err=True)


def _stream_states(pipeline) -> str:
    """``cam1 running 9.9 fps | cam2 reconnecting (attempt 3: Connection refused)``, for live or several streams."""
    streams = pipeline.stream_status(latency=False)
    if len(streams) <= 1 and not any(st["live"] for st in streams):
        return ""
    fps = pipeline.recent_fps()
    parts = []
    for st in streams:
        text = f"{st['id']} {st['state']}"
        if st["state"] == "running":
            text += f" {fps.get(st['id'], 0.0):.1f} fps"
        elif st.get("error") and st["state"] in ("reconnecting", "connecting", "failed"):
            text += f" ({st['error'][:60]})"
        if st["dropped"]:
            text += f" dropped {st['dropped']}"
        if st["reconnects"]:
            text += f" reconnects {st['reconnects']}"
        parts.append(text)
    return " | ".join(parts)


def _describe_run(pipeline) -> None:
    """-v: what was chosen and why, the inputs, the model input and the outputs."""
    import logging

    log = logging.getLogger("streamtrt")
    log.info("plan:\n%s", pipeline.plan.format(indent="  "))
    for st in pipeline.stream_status(latency=False):
        info = pipeline.streams[st["id"]].info
        log.info("stream %s: %s, %sx%s, %s fps, %s, %s frames, decoder %s", st["id"], st["uri"], info.width,
                 info.height, f"{info.fps:g}" if info.fps else "?", info.codec or "?",
                 pipeline.streams[st["id"]].expected_frames or "live/unknown", pipeline.streams[st["id"]].decoder)
    spec = pipeline.spec
    log.info("model: %s, input %dx%d %s, batch %d, slots %d", pipeline.config.model.path, spec.width, spec.height,
             spec.dtype, pipeline.config.runtime.batch_size, pipeline.config.runtime.slots)
    log.info("sinks: %s", ", ".join(f"{type(s).__name__} {getattr(s, 'display', None) or getattr(s, 'path', '')}"
                                    for s in pipeline.sinks) or "none")


def _stage_timings(pipeline) -> str:
    """-v, every status interval: per-stage milliseconds per frame so far and the queue depths."""
    parts = [f"{t.name} {t.stats().ms_per_frame:.1f}" for t in pipeline.timers() if t.stats().count]
    depths = " ".join(f"{k} {v}" for k, v in pipeline.queue_depths().items())
    return f"stages (ms/frame): {', '.join(parts) or 'none yet'}; queues: {depths}"


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
