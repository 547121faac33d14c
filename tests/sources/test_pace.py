"""PacedSource: frames no earlier than their timestamps after the first, like a camera; the rest is
the wrapped source's, through the FrameSource interface (no attribute forwarding)."""

import threading
import time

import numpy as np
import pytest

from streamtrt.sources.base import Frame, FrameSource, SourceInfo, SourceStats
from streamtrt.sources.pace import Pacer, PacedSource


class Recorded(FrameSource):
    kind = "file"
    def __init__(self, timestamps, fps=None):
        self.info = SourceInfo("0", "test://", fps=fps)
        self.stats = SourceStats(decoded=len(timestamps))
        self.timestamps = timestamps
        self.bound, self.closed = None, False

    def __iter__(self):
        image = np.zeros((2, 2, 3), np.uint8)
        return iter([Frame(image, i, t) for i, t in enumerate(self.timestamps)])

    def bind_stop(self, *events):
        self.bound = events

    def status(self):
        return {"state": "running", "reconnects": 2}

    def close(self):
        self.closed = True


def test_each_frame_comes_no_earlier_than_its_time():
    times = [0.0, 0.05, 0.06, 0.2]  # not evenly spaced
    inner = Recorded(times)
    out = []
    for frame in PacedSource(inner):
        out.append((time.perf_counter(), frame))
    start = out[0][0]
    assert [f.index for _, f in out] == [0, 1, 2, 3]
    for (at, frame), t in zip(out, times):
        assert at - start >= t - 1e-3  # a lower bound only: a busy machine may be later, never earlier


def test_frames_without_times_are_spaced_at_the_rate_or_30_fps():
    p = Pacer(10.0)
    p.start(100.0)
    assert [p.due(i, None) for i in range(3)] == pytest.approx([100.0, 100.1, 100.2])
    assert p.due(5, 0.42) == pytest.approx(100.42)  # a timestamp wins over the rate
    q = Pacer(None)
    q.start(0.0)
    assert q.due(3, None) == pytest.approx(0.1)  # 30 fps where the rate is unknown


def test_a_stop_ends_the_wait_and_a_due_frame_does_not_wait():
    stop = threading.Event()
    stop.set()
    assert Pacer.wait_until(time.perf_counter() + 60, stop) is True
    assert Pacer.wait_until(time.perf_counter() - 1, stop) is False


def test_the_interface_is_the_wrapped_sources():
    inner = Recorded([0.0], fps=12.5)
    paced = PacedSource(inner)
    assert paced.info is inner.info and paced.stats is inner.stats
    assert paced.kind == inner.kind and paced.live is inner.live is False
    assert paced.status() == {"state": "running", "reconnects": 2}
    stop, abort = threading.Event(), threading.Event()
    paced.bind_stop(stop, abort)
    assert inner.bound == (stop, abort)
    paced.close()
    assert inner.closed
