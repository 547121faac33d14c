"""Memory on 24/7 runs: every structure that is fed per frame or per track stays bounded."""

import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from streamtrt.config import AnalyticsConfig, TrackerConfig
from streamtrt.postprocess.detections import Detections
from streamtrt.runtime.timing import _RECENT, StageTimer, merge_timers
from streamtrt.runtime.tracking import StreamTracking


def traced_growth(setup, step, n: int) -> int:
    """Bytes still allocated after ``n`` more calls of ``step`` (tracemalloc)."""
    tracemalloc.start()
    try:
        state = setup()
        step(state, 0)
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1, n + 1):
            step(state, i)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_stage_timer_does_not_grow_with_samples():
    """Seen: a 20-minute soak grew ~80 KB a minute: the timers' sample deques filling up (32 bytes
    a sample, 10,000 samples per timer, half an hour at 5 fps). Their ring is now allocated up front."""
    grew = traced_growth(lambda: StageTimer("infer"), lambda t, i: t.add(0.001 * (i % 50)), 3 * _RECENT)
    assert grew < 4096, grew


def test_stage_timer_percentiles_cover_the_most_recent_samples_and_merge():
    t = StageTimer("x", capacity=100)
    for i in range(250):
        t.add(1.0 if i < 150 else 0.002)  # the first 150 samples are old news
    s = t.stats()
    assert s.count == 250 and s.frames == 250
    assert s.p99_ms == pytest.approx(2.0)  # only the last 100 samples count for percentiles
    assert s.mean_ms == pytest.approx(1e3 * (150 * 1.0 + 100 * 0.002) / 250)
    u = StageTimer("x", capacity=100)
    for _ in range(10):
        u.add(0.5, frames=4)
    (merged,) = merge_timers([t, u])
    m = merged.stats()
    assert m.count == 260 and m.frames == 290 and len(merged.samples()) == 110
    assert m.p50_ms == pytest.approx(2.0)
    assert StageTimer("empty").stats().count == 0


def walkers(frame: int, life: int = 40, every: int = 10):
    """Synthetic people: one appears every ``every`` frames at the left, walks right across a line
    at x=320 and a zone, and is gone after ``life`` frames. About life/every are on screen at once."""
    boxes = []
    for start in range(max(0, frame - life + 1) // every * every, frame + 1, every):
        if start <= frame < start + life:
            x = 40 + 14 * (frame - start)
            y = 40 + (start * 7) % 300
            boxes.append([x, y, x + 30, y + 60])
    n = len(boxes)
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), [0.9] * n, [0] * n, ["person"] * n)


def test_tracker_and_analytics_hold_only_live_tracks_after_2k_frames():
    analytics = AnalyticsConfig(lines=[{"name": "l", "start": [320, 0], "end": [320, 480]}],
                                zones=[{"name": "z", "points": [[200, 0], [500, 0], [500, 480], [200, 480]]}])
    tracking = StreamTracking(TrackerConfig(enabled=True, track_buffer_s=1.0), analytics, 0.35, fps=10.0)
    max_live, events = 0, 0
    for f in range(2_000):
        meta = SimpleNamespace(stream_id="0", index=f, timestamp=f / 10)
        dets = walkers(f)
        _, ev = tracking.update(dets, meta)
        events += len(ev)
        max_live = max(max_live, len(dets))
    # Hundreds of tracks came and went; what is held is of the order of those on screen plus the
    # lost ones still inside the track buffer (1 s = 10 frames, one new walker per 10 frames).
    assert tracking.tracker.next_id > 180 and events > 180
    line, zone = tracking.analytics.lines[0], tracking.analytics.zones[0]
    assert len(tracking.tracker.tracks) <= max_live + 2
    assert len(line.state) <= max_live + 2 and len(zone.inside) <= max_live + 2
    assert sum(line.counts_in.values()) + sum(line.counts_out.values()) > 180


def test_soak_growth_is_the_slope_after_warm_up_projected_to_a_day():
    from streamtrt.soak import format_soak, growth

    times = [5.0 * i for i in range(200)]  # 1,000 s
    rss = [500.0 if t < 100 else 300.0 + 0.001 * (t - 100) for t in times]  # warm-up, then 3.6 MB/h
    g = growth(times, rss, warmup_s=100)
    assert g["at_warmup"] == 300.0 and g["per_hour"] == pytest.approx(3.6)
    assert g["per_day"] == pytest.approx(86.4) and g["pct_per_day"] == pytest.approx(28.8)
    assert growth(times, [None] * 200, 100) is None  # e.g. no GPU
    report = {"minutes": 1000 / 60, "frames": 10, "fps": 1.0, "warmup_s": 100,
              "growth": {"rss_mb": g, "fds": growth(times, [10] * 200, 100), "threads": None, "gpu_mb": None}}
    table = format_soak(report)
    assert "RSS MB" in table and "86.40" in table and "28.80" in table and "GPU MB" not in table
