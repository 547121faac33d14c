"""Presentation timestamps of a video file's frames, read from its packets without decoding.

The GPU file path (DALI's ``inputs.video`` on NVDEC) yields frames without their timestamps; these
give each decoded frame its own time, so a variable-frame-rate file keeps its timing there too.
"""

from __future__ import annotations

import heapq
from typing import Optional

REORDER_DEPTH = 16
"""Packets are in decode order; B-frames put a frame at most this many packets early."""


def presentation_times(path: str, fps: Optional[float] = None) -> Optional[list[float]]:
    """Seconds since the first shown frame, one per video packet in presentation order (packets an
    edit list hides are left out, as players do), never going back:
    after a clock reset (joined MPEG-TS segments) time continues one frame duration after the last
    frame. ``None`` when packets carry no timestamps (raw elementary streams); raises PyAV's errors."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate or fps
        frame = float(1 / rate) if rate else 0.04
        big_jump = max(1, round(REORDER_DEPTH * frame / float(time_base)))  # in ticks
        held: list[int] = []
        ordered: list[int] = []
        latest: Optional[int] = None  # the highest pts since the last reset
        for packet in _packets(container, stream):
            if not packet.size or packet.is_discard:  # frames an edit list hides (an MP4 cut with -c copy)
                continue
            if packet.pts is None or time_base is None:
                return None
            if latest is not None and packet.pts < latest - big_jump:  # a reset: what is held came before it
                ordered += sorted(held)
                held = []
                latest = None
            latest = packet.pts if latest is None else max(latest, packet.pts)
            heapq.heappush(held, packet.pts)
            if len(held) > REORDER_DEPTH:
                ordered.append(heapq.heappop(held))
        ordered += sorted(held)
    if not ordered:
        return None
    times: list[float] = []
    offset = 0.0
    for pts in ordered:
        t = float((pts - ordered[0]) * time_base) + offset
        if times and t <= times[-1]:
            offset += times[-1] + frame - t
            t = times[-1] + frame
        times.append(t)
    return times


def _packets(container, stream):
    """The stream's packets up to the end, or up to a demuxer error (a truncated file)."""
    import av

    try:
        yield from container.demux(stream)
    except av.error.FFmpegError:
        return
