"""The tracker on synthetic detections with known answers."""

import itertools

import numpy as np
import pytest

from streamtrt.config import TrackerConfig
from streamtrt.postprocess.detections import Detections
from streamtrt.track import ByteTracker, KalmanBoxFilter
from streamtrt.track.assignment import linear_assignment
from streamtrt.track.kalman import xyah_to_xyxy, xyxy_to_xyah


def dets(boxes, scores=None, classes=None):
    n = len(boxes)
    scores = [0.9] * n if scores is None else scores
    classes = [0] * n if classes is None else classes
    names = ["person" if c == 0 else "car" for c in classes]
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), scores, classes, names)


def box(x, y, w=20, h=40):
    return [x, y, x + w, y + h]


def run(tracker, frames):
    return [tracker.update(d) for d in frames]


def ids_of(out):
    return out.tracker_id.tolist()


def test_assignment_is_optimal():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n, m = (int(v) for v in rng.integers(1, 6, 2))
        cost = rng.random((n, m))
        pairs = linear_assignment(cost)
        if n <= m:
            best = min(sum(cost[i, j] for i, j in enumerate(p)) for p in itertools.permutations(range(m), n))
        else:
            best = min(sum(cost[i, j] for j, i in enumerate(p)) for p in itertools.permutations(range(n), m))
        assert len(pairs) == min(n, m) and sum(cost[i, j] for i, j in pairs) == pytest.approx(best)


def test_kalman_learns_constant_velocity():
    kf = KalmanBoxFilter()
    mean, cov = kf.initiate(xyxy_to_xyah(np.array(box(0, 0), float)))
    for t in range(1, 15):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, xyxy_to_xyah(np.array(box(5 * t, 0), float)))
    mean, _ = kf.predict(mean, cov)
    assert xyah_to_xyxy(mean)[0] == pytest.approx(75, abs=1.0)


def test_two_walkers_keep_their_ids():
    tracker = ByteTracker(TrackerConfig(enabled=True), output_threshold=0.35)
    frames = [dets([box(10 + 4 * t, 50), box(300 - 4 * t, 200)]) for t in range(30)]
    outs = run(tracker, frames)
    assert ids_of(outs[0]) == [1, 2]
    assert all(ids_of(o) == [1, 2] for o in outs)


def test_new_tracks_wait_for_a_second_hit():
    tracker = ByteTracker(TrackerConfig(enabled=True), output_threshold=0.35)
    tracker.update(dets([box(10, 10)]))
    second = tracker.update(dets([box(12, 10), box(200, 200)]))  # a newcomer on frame 2
    assert ids_of(second) == [1, -1]
    third = tracker.update(dets([box(14, 10), box(201, 200)]))
    assert ids_of(third) == [1, 2]


def test_occlusion_within_the_buffer_keeps_the_id():
    tracker = ByteTracker(TrackerConfig(enabled=True, track_buffer_s=1.0), output_threshold=0.35, frame_rate=10)
    for t in range(10):
        tracker.update(dets([box(10 + 5 * t, 50)]))
    for t in range(10, 15):  # hidden for 5 frames (0.5 s)
        tracker.update(dets([]))
    back = tracker.update(dets([box(10 + 5 * 15, 50)]))  # where constant velocity predicts it
    assert ids_of(back) == [1]


def test_occlusion_past_the_buffer_gets_a_new_id_and_memory_is_purged():
    tracker = ByteTracker(TrackerConfig(enabled=True, track_buffer_s=0.3), output_threshold=0.35, frame_rate=10)
    for t in range(5):
        tracker.update(dets([box(10 + 5 * t, 50)]))
    for _ in range(10):
        tracker.update(dets([]))
    assert tracker.tracks == []
    tracker.update(dets([box(100, 50)]))
    again = tracker.update(dets([box(105, 50)]))
    assert ids_of(again) == [2]


def test_low_score_detections_continue_a_track():
    """ByteTrack's second stage: a partly occluded person scores 0.2 but keeps its id."""
    tracker = ByteTracker(TrackerConfig(enabled=True), output_threshold=0.35)
    for t in range(5):
        tracker.update(dets([box(10 + 3 * t, 50)]))
    low = tracker.update(dets([box(25, 50)], scores=[0.2]))
    assert ids_of(low) == [1] and low.confidence.tolist() == [pytest.approx(0.2)]
    unrelated = tracker.update(dets([box(28, 50), box(300, 300)], scores=[0.9, 0.2]))
    assert ids_of(unrelated) == [1]  # a lone low-score detection starts nothing and is not output


def test_crossing_objects_of_different_classes_do_not_swap():
    tracker = ByteTracker(TrackerConfig(enabled=True), output_threshold=0.35)
    outs = run(tracker, [dets([box(10 + 10 * t, 100), box(200 - 10 * t, 100)], classes=[0, 1]) for t in range(20)])
    for o in outs[1:]:
        by_class = dict(zip(o.class_id.tolist(), ids_of(o)))
        assert by_class == {0: 1, 1: 2}


def test_memory_stays_bounded_on_a_long_busy_stream():
    tracker = ByteTracker(TrackerConfig(enabled=True, track_buffer_s=0.5), output_threshold=0.35, frame_rate=10)
    rng = np.random.default_rng(0)
    for t in range(2000):
        n = int(rng.integers(0, 6))
        tracker.update(dets([box(float(x), float(y)) for x, y in rng.uniform(0, 1000, (n, 2))]))
    assert len(tracker.tracks) < 40


# -- thresholds that fit the detector ----------------------------------------------------------

def test_default_thresholds_follow_the_peers_and_never_exceed_the_detectors():
    """Ultralytics bytetrack.yaml and supervision ByteTrack: 0.25 high, 0.1 low; new tracks from what
    the detector reports (supervision's effective 0.25 + 0.1 for the sample's 0.35)."""
    cfg = TrackerConfig(enabled=True)
    assert cfg.thresholds(0.35) == (0.25, 0.1, 0.35)
    assert cfg.thresholds(0.2) == (0.2, 0.1, 0.2)   # a lower detector threshold lowers them
    assert cfg.thresholds(0.05) == (0.05, 0.05, 0.05)
    assert TrackerConfig(enabled=True, high_threshold=0.3).thresholds(0.35) == (0.3, 0.1, 0.35)
    assert TrackerConfig(enabled=True, new_track_threshold=0.25).thresholds(0.35) == (0.25, 0.1, 0.25)


@pytest.mark.parametrize("key", ["high_threshold", "new_track_threshold"])
def test_thresholds_that_would_leave_reported_detections_untracked_are_rejected(key):
    from streamtrt.config import load_config
    from streamtrt.errors import ConfigError

    raw = {"source": "a.mp4", "model": {"path": "m.onnx"}, "postprocess": {"score_threshold": 0.35},
           "tracker": {"enabled": True, key: 0.5}}
    with pytest.raises(ConfigError, match=rf"tracker\.{key}: 0\.5 is above postprocess\.score_threshold 0\.35"):
        load_config(raw)
    raw["tracker"]["enabled"] = False  # off: nothing to check
    load_config(raw)
    with pytest.raises(ConfigError, match="low_threshold"):
        load_config({**raw, "tracker": {"enabled": True, "high_threshold": 0.2, "low_threshold": 0.3}})
    with pytest.raises(ConfigError, match=key):  # the tracker refuses them too when built by hand
        ByteTracker(TrackerConfig(enabled=True, **{key: 0.5}), output_threshold=0.35)


def test_a_modest_detector_is_tracked_with_one_id():
    """Scores 0.3-0.5, missed in a quarter of the frames, reported above 0.35: one id, and every
    reported detection is in a track (confirmed after its second hit)."""
    rng = np.random.default_rng(1)
    tracker = ByteTracker(TrackerConfig(enabled=True), output_threshold=0.35, frame_rate=10)
    seen, ids = 0, set()
    for t in range(100):
        if t > 0 and rng.random() < 0.25:
            tracker.update(dets([]))
            continue
        score = float(rng.uniform(0.3, 0.5))
        out = tracker.update(dets([box(100 + 2 * t + rng.normal(0, 1), 80 + rng.normal(0, 1), 30, 80)], [score]))
        if score >= 0.35:
            assert len(out) == 1  # what the sinks show is never dropped
        seen += len(out)
        ids |= {i for i in ids_of(out) if i > 0}
        assert all(i > 0 for i in ids_of(out)) or t == 0
    assert ids == {1} and seen >= 70


def test_the_sample_case_person_gets_an_id():
    """The issue's case: configs/sample.yaml (score_threshold 0.35) with tracking on; a person detected
    in 75 of 100 frames at scores 0.36-0.53 gets a tracker_id (the old 0.6 new-track default gave none)."""
    from streamtrt.config import load_config
    from tests.conftest import ROOT

    cfg = load_config(ROOT / "configs" / "sample.yaml", ["tracker.enabled=true"])
    tracker = ByteTracker(cfg.tracker, cfg.postprocess.score_threshold, frame_rate=10)
    rng = np.random.default_rng(7)
    detected = np.zeros(100, bool)
    detected[rng.choice(100, 75, replace=False)] = True
    tracked = 0
    for t in range(100):
        frame = [box(200 + t, 150, 30, 80)] if detected[t] else []
        out = tracker.update(dets(frame, [float(rng.uniform(0.36, 0.53))] * len(frame)))
        assert len(out) == len(frame)
        tracked += int(np.sum(out.tracker_id > 0))
    assert tracked >= 70 and tracker.next_id == 2


def test_tentative_records_say_so():
    from streamtrt.sinks.schema import FRAME_SCHEMA

    tracker = ByteTracker(TrackerConfig(enabled=True), output_threshold=0.35)
    tracker.update(dets([box(10, 10)]))
    out = tracker.update(dets([box(12, 10), box(200, 200)]))
    records = out.to_records()
    assert [(r["tracker_id"], r["track_state"]) for r in records] == [(1, "confirmed"), (None, "tentative")]
    props = FRAME_SCHEMA["properties"]["detections"]["items"]["properties"]
    assert props["track_state"]["enum"] == ["confirmed", "tentative"]


def test_batched_kalman_matches_one_box_at_a_time():
    kf = KalmanBoxFilter()
    rng = np.random.default_rng(3)
    boxes = rng.uniform(10, 200, (5, 4))
    boxes[:, 2:] = boxes[:, :2] + rng.uniform(10, 80, (5, 2))
    meas = xyxy_to_xyah(boxes)
    mean, cov = kf.initiate(meas)
    mean, cov = kf.predict(mean, cov)
    mean2, cov2 = kf.update(mean, cov, meas + 1.0)
    for i in range(5):
        m, c = kf.initiate(meas[i])
        m, c = kf.predict(m, c)
        m, c = kf.update(m, c, meas[i] + 1.0)
        assert np.allclose(m, mean2[i]) and np.allclose(c, cov2[i])
