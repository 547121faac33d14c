"""Pipeline.stats(): the snapshot metrics, progress, summary and cluster workers read."""

import json

import pytest

from streamtrt import Pipeline
from streamtrt.errors import DecodeError
from tests.conftest import VIDEO, make_config


def test_stats_follow_the_lifecycle_and_count_what_reached_the_sinks(short_clip, tmp_path):
    seen = []
    with Pipeline.from_config(make_config(short_clip, tmp_path)) as pipe:
        before = pipe.stats()
        assert before.state == "created" and before.frames == 0 and before.elapsed_s == 0.0
        assert before.expected_frames == 12 and not before.expected_estimated
        assert [s.id for s in before.streams] == ["0"]
        for result in pipe:
            seen.append(pipe.stats())
        after = pipe.stats()
    assert [s.state for s in seen] == ["running"] * 12
    # frames counted before each result is handed out: 1..12 (the 12 frames of the clip)
    assert [s.frames for s in seen] == list(range(1, 13))
    assert after.state == "finished" and after.frames == 12 and after.error is None
    assert after.detections == pipe.summary.detections > 0
    stream = after.stream("0")
    assert stream.frames == 12 and stream.state == "ended" and stream.bad_frames == 0
    assert stream.latency_p50_ms is not None and stream.latency_p99_ms >= stream.latency_p50_ms
    stages = {s.name: s for s in after.stages}
    assert {"decode", "preprocess", "infer", "postprocess", "end_to_end"} <= set(stages)
    assert stages["end_to_end"].frames == 12 and stages["end_to_end"].buckets[-1] == 12
    assert after.pending_records == 0 and after.sinks == ()
    json.dumps(after.as_dict())  # JSON-ready


def test_stats_report_the_error_a_run_ended_with(tmp_path):
    truncated = tmp_path / "cut.mp4"  # the sample's index is at the front: 795 frames promised
    data = VIDEO.read_bytes()
    truncated.write_bytes(data[: len(data) // 10])
    pipe = Pipeline.from_config(make_config(truncated, tmp_path))
    with pytest.raises(DecodeError) as caught:
        list(pipe)
    stats = pipe.stats()
    assert stats.state == "finished" and 0 < stats.frames < 795
    assert stats.error == {"kind": "DecodeError", "message": str(caught.value), "exit_code": 3}
