import json

import av
import numpy as np
import pytest

from streamtrt.errors import SinkError
from streamtrt.postprocess import Detections
from streamtrt.runtime.messages import FrameResult
from streamtrt.runtime.summary import RunSummary
from streamtrt.sinks import AnnotatedVideoSink, JsonlSink, SummarySink, open_sink
from streamtrt.sinks.annotate import draw_detections


def result(i, image=None, fps=10):
    det = Detections(np.array([[10, 20, 110, 220]]), [0.75], [0], ["person"])
    return FrameResult("cam", i, i / fps, 320, 240, det, image)


def test_open_sink_by_uri_and_suffix(tmp_path):
    assert isinstance(open_sink("jsonl:-"), JsonlSink)
    assert isinstance(open_sink(str(tmp_path / "a.jsonl")), JsonlSink)
    assert isinstance(open_sink("video:" + str(tmp_path / "a.mp4")), AnnotatedVideoSink)
    assert isinstance(open_sink(str(tmp_path / "a.avi")), AnnotatedVideoSink)
    assert isinstance(open_sink("summary:" + str(tmp_path / "s.json")), SummarySink)


@pytest.mark.parametrize("uri, message", [
    ("out.txt", "cannot tell the kind"),
    ("video:", "missing path"),
    ("kafka://broker/topic", "unsupported scheme 'kafka://'"),
    ("video:out.gif", "unsupported container"),
])
def test_bad_sink_uris(uri, message):
    with pytest.raises(SinkError, match=message):
        open_sink(uri)


def test_jsonl_writes_each_line_as_it_arrives(tmp_path):
    path = tmp_path / "sub" / "d.jsonl"
    sink = JsonlSink(str(path))
    sink.open(10.0)
    sink.write(result(0))
    # readable before close: nothing is buffered
    line = json.loads(path.read_text().splitlines()[0])
    assert line == {"schema": "streamtrt.frame/1", "stream_id": "cam", "frame_index": 0, "timestamp": 0.0, "width": 320, "height": 240,
                    "detections": [{"bbox": [10.0, 20.0, 110.0, 220.0], "score": 0.75, "class_id": 0,
                                    "class_name": "person"}], "pts": None, "time_base": None}
    sink.write(result(1))
    sink.close()
    assert len(path.read_text().splitlines()) == 2


def test_jsonl_to_stdout(capsys):
    sink = JsonlSink("-")
    sink.open(None)
    sink.write(result(3))
    sink.close()
    assert json.loads(capsys.readouterr().out)["frame_index"] == 3


def test_jsonl_unwritable_path(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkError, match="cannot write"):
        JsonlSink(str(tmp_path / "file" / "d.jsonl")).open(None)


def test_annotated_video_has_every_frame_at_the_input_fps(tmp_path):
    path = tmp_path / "a.mp4"
    sink = AnnotatedVideoSink(str(path))
    sink.open(12.5)
    frames = [np.full((240, 320, 3), 40 * i, np.uint8) for i in range(5)]
    for i, f in enumerate(frames):
        sink.write(result(i, f, fps=12.5))
    sink.close()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        decoded = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
        assert float(s.average_rate) == pytest.approx(12.5)
    assert len(decoded) == 5 and decoded[0].shape == (240, 320, 3)
    # the box outline is drawn where the detection is
    assert np.abs(decoded[2][20:220, 10].astype(int) - 80).mean() > 30


def test_draw_detections_leaves_the_input_untouched():
    img = np.zeros((240, 320, 3), np.uint8)
    out = draw_detections(img, result(0).detections)
    assert img.sum() == 0 and out.sum() > 0


def test_summary_sink_writes_json_on_close(tmp_path):
    path = tmp_path / "s.json"
    summary = RunSummary(source="x", plan={"decoder": "cpu"}, frames=3, wall_s=1.5)
    summary.per_class.update(["person", "person", "car"])
    sink = SummarySink(str(path))
    sink.open(None)
    sink.close(summary)
    data = json.loads(path.read_text())
    assert data["frames"] == 3 and data["fps"] == 2.0
    assert data["detections_per_class"] == {"person": 2, "car": 1}


def test_keypoints_are_drawn_and_written_in_the_frame_schema(tmp_path):
    import jsonschema

    from streamtrt.sinks.schema import FRAME_SCHEMA

    kpts = np.array([[[60, 50, 0.9], [200, 200, 0.1]]], np.float32)  # one visible, one not
    det = Detections(np.array([[10, 20, 110, 220]]), [0.75], [0], ["person"], keypoints=kpts)
    out = draw_detections(np.zeros((240, 320, 3), np.uint8), det)
    assert out[50, 60].sum() > 0 and out[200, 200].sum() == 0
    path = tmp_path / "d.jsonl"
    sink = JsonlSink(str(path))
    sink.open(10.0)
    sink.write(FrameResult("cam", 0, 0.0, 320, 240, det, None))
    sink.close()
    record = json.loads(path.read_text())
    assert record["detections"][0]["keypoints"] == [[60.0, 50.0, 0.9], [200.0, 200.0, 0.1]]
    jsonschema.validate(record, FRAME_SCHEMA)
    with pytest.raises(ValueError, match="keypoints"):
        Detections(np.array([[0, 0, 1, 1]]), [0.5], [0], ["a"], keypoints=np.zeros((2, 17, 3)))
