"""The progress line and the status lines of a run (stderr)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Optional

import click

_now = time.monotonic  # the clock of the detail lines (tests replace it)

class Progress:
    """The progress line of a run, read from :meth:`Pipeline.stats() <streamtrt.runtime.pipeline.Pipeline.stats>`
    (``stats``: a callable returning a :class:`~streamtrt.runtime.stats.PipelineStats`): frames, fps and
    ETA for files (``~N`` for an estimated total); a frame counter and elapsed time otherwise.

    On a terminal the line is a `rich <https://rich.readthedocs.io>`_ live display, redrawn in place
    every ``interval`` seconds (0.25) and cut to the terminal's width; redirected, one plain
    ``streamtrt: progress ...`` line every ``interval`` seconds (10). The line is redrawn whether or not
    frames arrive, so a stream that delivers nothing still shows its state. ``extra``: ``() -> str``
    appended to the line (stream states, the sinks' backlog); ``detail``: ``() -> str`` printed on its
    own line every ``max(interval, 5)`` seconds (-v: stage timings)."""

    def __init__(self, stats: Callable[[], Any], enabled: bool, tty: bool, extra: Optional[Callable[[], str]] = None,
                 interval: Optional[float] = None, detail: Optional[Callable[[], str]] = None):
        self.stats = stats
        self.extra = extra
        self.detail = detail
        self.enabled = enabled
        self.tty = tty
        self.interval = interval or (0.25 if tty else 10.0)
        self._done = threading.Event()
        self._live = None
        self._ticker: Optional[threading.Thread] = None
        if enabled and tty:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(file=sys.stderr, highlight=False), auto_refresh=False,
                              transient=False, redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        if enabled or detail is not None:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        detail_every = max(self.interval, 5.0)
        next_detail = _now() + detail_every
        while not self._done.wait(self.interval):
            try:
                if self.enabled:
                    self._draw()
                if self.detail is not None and _now() >= next_detail:
                    next_detail = _now() + detail_every
                    line = self.detail()
                    if line:
                        self._print(f"streamtrt: {line}")
            except Exception:  # a status line must never take the run down
                pass

    def line(self) -> str:
        """The progress line now (the snapshot's text plus ``extra``)."""
        text = progress_text(self.stats())
        if self.extra is not None:
            more = self.extra()
            text += f"  {more}" if more else ""
        return text

    def _draw(self) -> None:
        if self._live is not None:
            from rich.text import Text

            self._live.update(Text(self.line(), no_wrap=True, overflow="ellipsis"), refresh=True)
        else:
            click.echo(f"streamtrt: progress {self.line()}", err=True)

    def _print(self, text: str) -> None:
        """A line of its own: above the live display on a terminal."""
        if self._live is not None:
            from rich.text import Text

            self._live.console.print(Text(text), soft_wrap=True)
        else:
            click.echo(text, err=True)

    def finish(self) -> None:
        """Stop redrawing; a terminal keeps the last line (drawn once more, with the final counts)."""
        self._done.set()
        if self._ticker is not None:
            self._ticker.join(2.0)
        if self._live is not None:
            try:
                self._draw()
            except Exception:
                pass
            self._live.stop()
            self._live = None


def progress_text(stats) -> str:
    """The progress line of a :class:`~streamtrt.runtime.stats.PipelineStats`: ``frames 50/100 ( 50.0%)
    10.0 fps  ETA 0:00:05`` with a known total (``~795`` when estimated; no ETA before the first frame,
    and no total once a run passes its estimate), else ``frames 37  9.9 fps  elapsed 0:00:03``."""
    frames, total, estimated = stats.frames, stats.expected_frames, stats.expected_estimated
    elapsed = max(stats.elapsed_s, 1e-9)
    fps = frames / elapsed
    if total and not (estimated and frames >= total):  # an estimate passed: no total
        pct = min(100.0, 100.0 * frames / total)
        shown = f"~{total}" if estimated else str(total)
        text = f"frames {frames}/{shown} ({pct:5.1f}%)  {fps:6.1f} fps"
        if frames > 0:  # a rate is known
            text += f"  ETA {'~' if estimated else ''}{_hms(max(0, total - frames) / fps)}"
    else:
        text = f"frames {frames}  {fps:6.1f} fps  elapsed {_hms(elapsed)}"
    return text


def _stream_states(stats) -> str:
    """``cam1 running 9.9 fps | cam2 reconnecting (attempt 3: Connection refused)``, for live or several
    streams, from a :class:`~streamtrt.runtime.stats.PipelineStats`."""
    streams = stats.streams
    if len(streams) <= 1 and not any(st.live for st in streams):
        return ""
    parts = []
    for st in streams:
        text = f"{st.id} {st.state}"
        if st.state == "running":
            text += f" {st.fps:.1f} fps"
        elif st.error and st.state in ("reconnecting", "connecting", "failed"):
            text += f" ({st.error[:60]})"
        if st.dropped:
            text += f" dropped {st.dropped}"
        if st.reconnects:
            text += f" reconnects {st.reconnects}"
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


def _stage_timings(stats) -> str:
    """-v, every status interval: per-stage milliseconds per frame so far and the queue depths."""
    parts = [f"{t.name} {1e3 * t.busy_s / t.frames:.1f}" for t in stats.stages if t.batches and t.frames]
    depths = " ".join(f"{k} {v}" for k, v in stats.queues.items())
    return f"stages (ms/frame): {', '.join(parts) or 'none yet'}; queues: {depths}"


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
