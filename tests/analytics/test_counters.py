"""Line crossing and zones on synthetic tracks with known answers."""

import numpy as np
import pytest

from streamtrt.analytics import StreamAnalytics
from streamtrt.config import AnalyticsConfig, LineConfig, ZoneConfig
from streamtrt.postprocess.detections import Detections


def tracked(objects):
    """objects: list of (tracker_id, class_name, (x1, y1, x2, y2))."""
    if not objects:
        return Detections(np.zeros((0, 4)), [], [], [], np.zeros(0, np.int64))
    ids, names, boxes = zip(*objects)
    return Detections(np.array(boxes, np.float32), [0.9] * len(ids), [0 if n == "person" else 2 for n in names],
                      list(names), np.array(ids))


def feet_at(x, y):
    return (x - 10, y - 40, x + 10, y)  # a 20x40 box whose bottom centre is (x, y)


def run(analytics, frames, fps=10.0):
    events = []
    for i, objects in enumerate(frames):
        live = {o[0] for f in frames for o in f}
        events += analytics.update(tracked(objects), "cam", i, i / fps, live)
    return events


LINE = LineConfig(name="door", start=(100, 0), end=(100, 200))  # vertical, pointing down


def test_crossing_sense():
    from streamtrt.analytics.geometry import crossing

    a, b = np.array([100.0, 0.0]), np.array([100.0, 200.0])
    assert crossing(np.array([90.0, 50]), np.array([110.0, 50]), a, b) == 1
    assert crossing(np.array([110.0, 50]), np.array([90.0, 50]), a, b) == -1
    # stepping onto the line and then off it counts once, on the step off
    assert crossing(np.array([90.0, 50]), np.array([100.0, 50]), a, b) == 0
    assert crossing(np.array([100.0, 50]), np.array([110.0, 50]), a, b) == 1
    assert crossing(np.array([90.0, 250]), np.array([110.0, 250]), a, b) == 0  # beyond the end


def test_crossings_counted_once_with_direction():
    a = StreamAnalytics(AnalyticsConfig(lines=[LINE]), 10)
    path = [(1, "person", feet_at(x, 100)) for x in range(60, 150, 10)]  # left to right
    back = [(1, "person", feet_at(x, 100)) for x in range(140, 50, -10)]
    events = run(a, [[o] for o in path + back])
    assert [(e.kind, e.direction, e.tracker_id) for e in events] == [("line_cross", "in", 1), ("line_cross", "out", 1)]
    assert a.summary()["lines"]["door"] == {"in": {"person": 1}, "out": {"person": 1}}


def test_movement_beside_or_beyond_the_segment_is_not_a_crossing():
    a = StreamAnalytics(AnalyticsConfig(lines=[LINE]), 10)
    parallel = [[(1, "person", feet_at(90, y))] for y in range(20, 180, 10)]
    below_the_end = [[(2, "person", feet_at(x, 300))] for x in range(60, 150, 10)]
    assert run(a, parallel) == [] and run(a, below_the_end) == []


def test_class_filter_on_lines():
    a = StreamAnalytics(AnalyticsConfig(lines=[LineConfig(name="l", start=(100, 0), end=(100, 200), classes=["car"])]), 10)
    frames = [[(1, "person", feet_at(x, 100)), (2, "car", feet_at(x, 150))] for x in range(60, 150, 10)]
    events = run(a, frames)
    assert [(e.tracker_id, e.class_name) for e in events] == [(2, "car")]


def test_untracked_detections_are_ignored():
    a = StreamAnalytics(AnalyticsConfig(lines=[LINE]), 10)
    frames = [[(-1, "person", feet_at(x, 100))] for x in range(60, 150, 10)]
    assert run(a, frames) == []


def test_zone_occupancy_enter_exit_and_dwell():
    zone = ZoneConfig(name="bench", points=[(0, 0), (100, 0), (100, 100), (0, 100)])
    a = StreamAnalytics(AnalyticsConfig(zones=[zone]), 10)
    frames = []
    for t in range(30):
        objects = []
        objects.append((1, "person", feet_at(50, 50) if 5 <= t < 25 else feet_at(400, 50)))  # inside 5..24
        objects.append((2, "person", feet_at(50, 50) if 10 <= t < 15 else feet_at(300, 300)))
        frames.append(objects)
    events = run(a, frames)
    got = [(e.kind, e.tracker_id, e.frame_index, e.dwell_s) for e in events]
    assert got == [("zone_enter", 1, 5, None), ("zone_enter", 2, 10, None), ("zone_exit", 2, 15, pytest.approx(0.5)),
                   ("zone_exit", 1, 25, pytest.approx(2.0))]
    s = a.summary()["zones"]["bench"]
    assert (s["enters"], s["exits"], s["max_occupancy"], s["occupancy"]) == (2, 2, 2, {})


def test_a_missed_frame_is_not_an_exit_but_a_dropped_track_is():
    zone = ZoneConfig(name="z", points=[(0, 0), (100, 0), (100, 100), (0, 100)])
    a = StreamAnalytics(AnalyticsConfig(zones=[zone]), 10)
    inside = tracked([(7, "person", feet_at(50, 50))])
    nothing = tracked([])
    assert [e.kind for e in a.update(inside, "cam", 0, 0.0, {7})] == ["zone_enter"]
    assert a.update(nothing, "cam", 1, 0.1, {7}) == []  # track alive (occluded): still inside
    assert [e.kind for e in a.update(nothing, "cam", 2, 0.2, set())] == ["zone_exit"]  # track gone


def test_a_track_that_ends_inside_exits_at_its_last_sighting():
    """Seen inside from frame 5 to 20, then lost: the tracker keeps the track 3 s more (its lost-track
    buffer) and drops it at frame 51. That wait is not dwell: the exit is the last sighting's."""
    zone = ZoneConfig(name="z", points=[(0, 0), (100, 0), (100, 100), (0, 100)])
    a = StreamAnalytics(AnalyticsConfig(zones=[zone]), 10)
    events = []
    for i in range(60):
        seen = 5 <= i <= 20
        objects = [(4, "person", feet_at(50, 50))] if seen else []
        events += a.update(tracked(objects), "cam", i, i / 10, {4} if i <= 50 else set())
    exits = [e for e in events if e.kind == "zone_exit"]
    assert len(exits) == 1
    assert (exits[0].frame_index, exits[0].timestamp, exits[0].dwell_s) == (20, pytest.approx(2.0), pytest.approx(1.5))
    assert exits[0].to_record()["timestamp"] == 2.0
    assert a.summary()["zones"]["z"]["occupancy"] == {}


def test_config_requires_tracking_for_analytics():
    from streamtrt.config import load_config
    from streamtrt.errors import ConfigError

    with pytest.raises(ConfigError, match="set tracker.enabled: true"):
        load_config({"source": "a.mp4", "model": {"path": "m.onnx"},
                     "analytics": {"lines": [{"name": "l", "start": [0, 0], "end": [1, 1]}]}})


# -- jitter is not movement: hysteresis with a margin band --------------------------------------

def person(cx, bottom, h=80, w=36):
    return (cx - w / 2, bottom - h, cx + w / 2, bottom)


def noisy_still_frames(bottom, n=100, noise=1.5, seed=0):
    """One person who never moves, feet on ``bottom``, box edges jittering by up to ``noise`` px."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x1, y1, x2, y2 = person(182, bottom)
        jitter = rng.uniform(-noise, noise, 4)
        out.append([(1, "person", (x1 + jitter[0], y1 + jitter[1], x2 + jitter[2], y2 + jitter[3]))])
    return out


HLINE = LineConfig(name="feet", start=(150, 174.5), end=(215, 174.5))
EDGE_ZONE = ZoneConfig(name="edge", points=[(150, 174.5), (215, 174.5), (215, 260), (150, 260)])


def test_a_still_person_jittering_on_a_line_is_never_counted():
    a = StreamAnalytics(AnalyticsConfig(lines=[HLINE]), 10)
    frames = noisy_still_frames(174.5)
    # without the band, this jitter flips sides in about half of the frames
    sides = [np.sign(f[0][2][3] - 174.5) for f in frames]
    assert sum(s != p for s, p in zip(sides[1:], sides)) > 20
    assert run(a, frames) == []
    assert a.summary()["lines"]["feet"] == {"in": {}, "out": {}}


def test_a_still_person_jittering_on_a_zone_edge_neither_enters_nor_exits():
    a = StreamAnalytics(AnalyticsConfig(zones=[EDGE_ZONE]), 10)
    assert run(a, noisy_still_frames(174.5)) == []
    s = a.summary()["zones"]["edge"]
    assert (s["enters"], s["exits"]) == (0, 0)


def test_a_slow_walker_who_hesitates_on_the_line_counts_once():
    a = StreamAnalytics(AnalyticsConfig(lines=[HLINE], zones=[EDGE_ZONE]), 10)
    rng = np.random.default_rng(2)
    path = list(np.arange(140.0, 170.0, 1.0))                          # walks down towards the line
    path += list(174.5 + 4 * np.sin(np.arange(40) / 2) + rng.uniform(-1.5, 1.5, 40))  # dithers on it, 4 s
    path += list(np.arange(176.0, 215.0, 1.0))                         # and walks on
    events = run(a, [[(1, "person", person(182, y))] for y in path])
    assert [(e.kind, e.direction) for e in events] == [("line_cross", "out"), ("zone_enter", None)]
    assert a.summary()["zones"]["edge"]["enters"] == 1


def test_a_walker_who_comes_back_counts_each_real_passage():
    a = StreamAnalytics(AnalyticsConfig(lines=[HLINE]), 10)
    there = list(np.arange(140.0, 200.0, 3.0))
    frames = [[(1, "person", person(182, y))] for y in there + there[::-1] + there]
    assert [e.direction for e in run(a, frames)] == ["out", "in", "out"]


def test_a_flicker_past_the_line_and_back_counts_nothing():
    """supervision#2600: a short excursion to the far side must not count, neither way."""
    a = StreamAnalytics(AnalyticsConfig(lines=[HLINE]), 10)
    ys = [150.0] * 5 + [200.0] + [150.0] * 5   # one frame far past the line (a bad box), then back
    assert [e.direction for e in run(a, [[(1, "person", person(182, y))] for y in ys])] == ["out", "in"]
    # with a margin wider than the bad jump, nothing counts
    b = StreamAnalytics(AnalyticsConfig(lines=[HLINE.model_copy(update={"margin_px": 30.0})]), 10)
    assert run(b, [[(1, "person", person(182, y))] for y in ys]) == []


def test_margin_in_pixels_overrides_the_ratio():
    from streamtrt.analytics.counters import margins

    boxes = np.array([person(0, 100, h=80), person(0, 100, h=20)], np.float32)
    assert margins(boxes, None, 0.1).tolist() == pytest.approx([8.0, 2.0])
    assert margins(boxes, 5.0, 0.1).tolist() == [5.0, 5.0]


# -- time-safe durations --------------------------------------------------------------------------

def test_dwell_is_never_negative_when_the_clock_resets():
    """Timestamps restart at 0 after 2.9 s (MPEG-TS files joined with cat): dwell keeps counting."""
    zone = ZoneConfig(name="z", points=[(0, 0), (100, 0), (100, 100), (0, 100)])
    a = StreamAnalytics(AnalyticsConfig(zones=[zone]), 10)
    events = []
    for i in range(60):
        ts = i / 10 if i < 30 else (i - 30) / 10             # 0.0 .. 2.9, then 0.0 .. 2.9 again
        inside = 10 <= i < 50                                # in from frame 10 to 49: 4.0 s
        obj = (1, "person", feet_at(50, 50) if inside else feet_at(400, 50))
        events += a.update(tracked([obj]), "cam", i, ts, {1})
    exits = [e for e in events if e.kind == "zone_exit"]
    assert len(exits) == 1 and exits[0].dwell_s == pytest.approx(4.0)


def test_stream_clock():
    from streamtrt.analytics.clock import StreamClock

    c = StreamClock(10.0)
    assert [c(i, t) for i, t in enumerate([0.0, 0.1, 0.2, 0.0, 0.1, 0.1, 5.0])] == \
        pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.4, 5.3])
    unknown_rate = StreamClock(None)
    assert [unknown_rate(i, t) for i, t in enumerate([10.0, 10.5, 1.0, 1.5])] == pytest.approx([10.0, 10.5, 11.0, 11.5])
    no_timestamps = StreamClock(5.0)
    assert [no_timestamps(i, None) for i in range(3)] == pytest.approx([0.0, 0.2, 0.4])
