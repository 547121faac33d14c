"""Presentation timestamps of a video file's frames, read from its packets without decoding.

The GPU file path (DALI's ``inputs.video`` on NVDEC) yields frames without their timestamps; these
give each decoded frame its own time. The packets are put in presentation order and timed by the
same :class:`~streamtrt.sources.clock.PresentationClock` as the CPU path
(:class:`~streamtrt.sources.file.VideoFileSource`), with the same rules (resets continue one frame
on; forward jumps only break the clock in ``AVFMT_TS_DISCONT`` formats), so both paths give the
same timestamps.
"""

from __future__ import annotations

import heapq
from typing import Optional

from .clock import PresentationClock
from .file import AVFMT_TS_DISCONT, has_timestamps, stream_rate

REORDER_DEPTH = 16
"""Packets are in decode order; B-frames put a frame at most this many packets early."""


def presentation_times(path: str, fps: Optional[float] = None, display: str = "") -> Optional[list[float]]:
    """Seconds since the first shown frame, one per video packet in presentation order (packets an
    edit list hides are left out, as players do): what the CPU path's frames carry.

    A raw elementary stream (no timestamps) is timed by its rate (the codec's timing info, or
    ``fps``), one frame per packet (FFmpeg's parser splits the stream into frames), as the CPU path
    times it. ``None`` if a packet of a timed file has no PTS, or there are no packets: the caller
    then spaces frames at the rate. ``display`` names the file in the log (a clock break is
    logged once). Raises PyAV's errors."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        rate = stream_rate(stream, container, fps, display)
        if not has_timestamps(container):
            clock = PresentationClock(None, float(rate) if rate else None, display)
            return [clock(None) for packet in _packets(container, stream) if packet.size] or None
        may_jump = bool(container.format.flags & AVFMT_TS_DISCONT)
        frame = float(1 / rate) if rate else 0.04
        big_jump = max(1, round(REORDER_DEPTH * frame / float(time_base))) if time_base else 1  # in ticks
        held: list[tuple[int, int]] = []  # (pts, duration)
        ordered: list[tuple[int, int]] = []
        latest: Optional[int] = None  # the highest pts since the last reset
        last_dts: Optional[int] = None
        for packet in _packets(container, stream):
            if not packet.size or packet.is_discard:  # frames an edit list hides (an MP4 cut with -c copy)
                continue
            if packet.pts is None or time_base is None:
                return None
            # A reset (joined segments): the decode clock goes back (or, without DTS, the PTS goes back
            # further than B-frames reorder); what is held came before it.
            dts, prev_dts = packet.dts, last_dts
            last_dts = dts
            if dts is not None and prev_dts is not None:
                reset = dts < prev_dts
            else:
                reset = latest is not None and packet.pts < latest - big_jump
            if reset:
                ordered += sorted(held)
                held = []
                latest = None
            latest = packet.pts if latest is None else max(latest, packet.pts)
            heapq.heappush(held, (packet.pts, packet.duration or 0))
            if len(held) > REORDER_DEPTH:
                ordered.append(heapq.heappop(held))
        ordered += sorted(held)
    if not ordered:
        return None
    clock = PresentationClock(time_base, float(rate) if rate else None, display, may_jump=may_jump)
    return [clock(pts, duration) for pts, duration in ordered]


def _packets(container, stream):
    """The stream's packets up to the end, or up to a demuxer error (a truncated file)."""
    import av

    try:
        yield from container.demux(stream)
    except av.error.FFmpegError:
        return
