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


def test_config_requires_tracking_for_analytics():
    from streamtrt.config import load_config
    from streamtrt.errors import ConfigError

    with pytest.raises(ConfigError, match="set tracker.enabled: true"):
        load_config({"source": "a.mp4", "model": {"path": "m.onnx"},
                     "analytics": {"lines": [{"name": "l", "start": [0, 0], "end": [1, 1]}]}})
