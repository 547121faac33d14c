"""Memory on 24/7 runs: every structure that is fed per frame or per track stays bounded."""

import tracemalloc
from pathlib import Path
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
    assert g["median_per_hour"] == pytest.approx(3.6) and g["median_pct_per_day"] == pytest.approx(28.8)
    assert growth(times, [None] * 200, 100) is None  # e.g. no GPU
    # A flat series with a batch in flight at the last sample: least squares reads a trend, the
    # median of pairwise slopes does not.
    spiked = growth(times, [300.0] * 199 + [310.0], 100)
    assert spiked["per_hour"] > 0.5 and spiked["median_per_hour"] == 0.0
    report = {"minutes": 1000 / 60, "frames": 10, "fps": 1.0, "warmup_s": 100,
              "growth": {"rss_mb": g, "fds": growth(times, [10] * 200, 100), "threads": None, "gpu_mb": None}}
    table = format_soak(report)
    assert "RSS MB" in table and "86.40" in table and "28.80" in table and "GPU MB" not in table
    assert "mostly noise" in table  # 15 minutes measured: the table warns that a day's projection is noise
    assert "mostly noise" not in format_soak(dict(report, minutes=30.0, warmup_s=360.0))  # 24 measured


def test_thread_names_count_native_threads_by_name():
    """The soak names the threads it counts: a pool started per call shows up under its name."""
    import sys
    import threading

    from streamtrt.soak import thread_names

    if not sys.platform.startswith("linux"):
        pytest.skip("/proc/self/task is Linux's")
    before = thread_names()
    stop = threading.Event()
    workers = [threading.Thread(target=stop.wait, name="soak-probe") for _ in range(3)]
    for w in workers:
        w.start()
    try:
        during = thread_names()
    finally:
        stop.set()
        for w in workers:
            w.join()
    # Python >= 3.12 gives Linux the thread's name (first 15 bytes); older ones leave the process's.
    grown = {n: c - before.get(n, 0) for n, c in during.items() if c != before.get(n, 0)}
    assert sum(grown.values()) == 3, (before, during)
    assert sum(during.values()) == sum(before.values()) + 3


def test_heap_trimmer_trims_at_most_once_an_interval():
    from streamtrt.runtime.heap import HeapTrimmer

    now = [100.0]
    trim = HeapTrimmer(every_s=60.0, clock=lambda: now[0])
    if not trim.available:
        pytest.skip("no malloc_trim in this C library (not glibc)")
    done = []
    for step in range(400):  # 200 s in half-second steps
        now[0] = 100.0 + step * 0.5
        done.append(trim())
    assert trim.trims == sum(done) == 3  # at 60, 120 and 180 s: never at the start, never twice in a minute
    assert [i * 0.5 for i, d in enumerate(done) if d] == [60.0, 120.0, 180.0]


def test_heap_trimmer_gives_freed_pages_back():
    """Freed small chunks in the middle of the heap stay resident until malloc_trim (glibc)."""
    import os

    from streamtrt.runtime.heap import HeapTrimmer

    trim = HeapTrimmer(every_s=0.0)
    if not trim.available or not os.path.exists("/proc/self/statm"):
        pytest.skip("glibc on Linux only")

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    blocks = [bytearray(4000) for _ in range(20_000)]  # ~80 MB in chunks below the mmap threshold
    keep = blocks[::100]  # a few survivors pin the heap's top: only a trim frees the rest
    del blocks
    before = rss()
    assert trim()
    assert before - rss() > 30 * 2**20, (before, rss())
    del keep


class _Cycle:
    def __init__(self):
        self.me = self


def test_heap_trimmer_frees_cyclic_garbage_of_the_oldest_generation():
    """Garbage in reference cycles that reached CPython's oldest generation waits for a full
    collection, which comes only once a quarter more objects got there: on a soak, minutes. The
    minute's trim collects it (every platform, with or without malloc_trim)."""
    import gc
    import weakref

    from streamtrt.runtime.heap import HeapTrimmer

    now = [0.0]
    trim = HeapTrimmer(every_s=60.0, clock=lambda: now[0])
    was = gc.isenabled()
    gc.disable()  # no automatic collection may free them behind the test's back
    try:
        objs = [_Cycle() for _ in range(500)]
        gc.collect()  # survivors of a full collection are in the oldest generation
        refs = [weakref.ref(o) for o in objs]
        del objs
        gc.collect(1)  # young collections do not look at the oldest generation
        assert sum(r() is not None for r in refs) == 500
        assert not trim()  # not yet a minute
        now[0] = 60.0
        assert trim()
        assert sum(r() is not None for r in refs) == 0 and trim.collected >= 500
    finally:
        if was:
            gc.enable()


def test_dali_runs_leave_no_cyclic_classes():
    """DALI 2.4's Pipeline.run() defines a new class per call (``_check_api_type_scope``'s
    ``api_checker``), each a reference cycle: a soak found dozens waiting for a full collection.
    streamtrt's DALI pipelines return one class's instances instead: with the automatic collector
    off, 20 runs leave no new class, and the API check still works (mixing run styles is refused)."""
    import gc

    from streamtrt.preprocess.dali import DaliCpuPreprocessor, dali_available
    from streamtrt.preprocess.spec import PreprocessSpec

    if not dali_available():
        pytest.skip("DALI is not installed")

    def checkers() -> int:
        return sum(1 for c in object.__subclasses__() if c.__name__ == "api_checker")

    pre = DaliCpuPreprocessor(PreprocessSpec(64, 96), max_batch=1, threads=1)
    frame = np.zeros((48, 64, 3), np.uint8)
    was = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        before = checkers()
        for _ in range(20):
            tensor, _ = pre([frame])
        assert checkers() - before == 0
        assert tensor.shape == (1, 3, 64, 96)
    finally:
        if was:
            gc.enable()
    with pytest.raises(RuntimeError, match="(?i)api"):  # DALI's own check, kept: run() then schedule_run()
        pre._pipe.schedule_run()


def test_soak_heap_in_use_counts_what_malloc_handed_out():
    """The soak's C-heap figure (glibc mallinfo2) follows memory held, not memory kept free."""
    from streamtrt.soak import heap_in_use_mb

    if heap_in_use_mb() is None:
        pytest.skip("mallinfo2 is glibc >= 2.33's")
    before = heap_in_use_mb()
    held = [np.ones(1 << 17, np.uint8) for _ in range(400)]  # 400 x 128 KiB = 50 MiB, through malloc
    during = heap_in_use_mb()
    del held
    after = heap_in_use_mb()
    assert 45 < during - before < 60, (before, during)
    assert abs(after - before) < 5, (before, after)


def test_soak_splits_the_resident_size_into_anonymous_and_file_backed():
    """A leak shows in the anonymous part (the kernel's RssAnon); reading a mapped file moves only
    the file-backed part (RssFile), by the bytes read."""
    import mmap

    from streamtrt.soak import rss_split_mb

    if rss_split_mb() == (None, None):
        pytest.skip("RssAnon/RssFile are Linux's /proc/self/status fields")
    anon0, file0 = rss_split_mb()
    held = np.ones(40 << 20, np.uint8)  # 40 MiB written: anonymous pages
    anon1, file1 = rss_split_mb()
    assert 35 < anon1 - anon0 < 50, (anon0, anon1)
    path = Path(__file__).resolve().parents[2] / "samples" / "vtest.mp4"
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        size = len(m)
        sum(m[i] for i in range(0, size, 4096))  # touch every page of the mapped file
        anon2, file2 = rss_split_mb()
    assert file2 - file1 > 0.8 * size / 2**20, (file1, file2, size)
    assert abs(anon2 - anon1) < 5, (anon1, anon2)
    del held
