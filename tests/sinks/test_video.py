"""The annotated video as people open it: H.264/yuv420p/even sizes/faststart MP4, real timestamps,
the input's rate and duration, a size in proportion, labels inside the frame. Expected values
come from ffprobe, the file's bytes and arithmetic."""

import json
import logging
import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from streamtrt.errors import SinkError
from streamtrt.postprocess import Detections
from streamtrt.runtime.messages import FrameResult
from streamtrt.sinks import video as video_mod
from streamtrt.sinks.annotate import draw_detections, label_rects
from streamtrt.sinks.video import FALLBACK_RATE, AnnotatedVideoSink

from ..conftest import VIDEO

CASES = Path(__file__).resolve().parents[1] / "data" / "cases"
VFR = CASES / "vfr_10fps_then_2fps.mkv"
NONE = Detections(np.zeros((0, 4)), [], [], [])

pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe")


def ffprobe(path, *args) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def stream_info(path) -> dict:
    return ffprobe(path, "-select_streams", "v:0", "-show_streams", "-show_format")


def frame_times(path) -> list[float]:
    frames = ffprobe(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time")["frames"]
    return [float(f["pts_time"]) for f in frames]


def annotate_file(src: Path, out: Path, detections=NONE) -> AnnotatedVideoSink:
    """Decode ``src`` as a CPU source does (PyAV, timestamps from pts) and write every frame."""
    with av.open(str(src)) as c:
        st = c.streams.video[0]
        rate = st.average_rate or st.guessed_rate
        sink = AnnotatedVideoSink(str(out))
        sink.open(float(rate) if rate else None)
        start = st.start_time or 0
        for i, f in enumerate(c.decode(st)):
            img = f.to_ndarray(format="bgr24")
            sink.write(FrameResult("0", i, float((f.pts - start) * st.time_base), img.shape[1], img.shape[0],
                                   detections, img))
    sink.close()
    return sink


def top_level_atoms(path: Path) -> list[str]:
    names, data, pos = [], path.read_bytes(), 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        names.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return names


def gradient(h, w) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([(x * 255 // w), (y * 255 // h), ((x + y) * 255 // (w + h))]).astype(np.uint8)


def test_odd_sizes_are_padded_to_even_h264_yuv420p_with_moov_first(tmp_path):
    path = tmp_path / "odd.mp4"
    sink = AnnotatedVideoSink(str(path))
    sink.open(10.0)
    img = np.repeat(gradient(575, 767)[..., :1], 3, axis=2)  # grey: 4:2:0 chroma cannot bleed into the pad
    for i in range(5):
        sink.write(FrameResult("0", i, i / 10, 767, 575, NONE, img))
    sink.close()
    s = stream_info(path)["streams"][0]
    assert (s["codec_name"], s["pix_fmt"], s["width"], s["height"]) == ("h264", "yuv420p", 768, 576)
    atoms = top_level_atoms(path)
    assert atoms.index("moov") < atoms.index("mdat")  # +faststart: a browser plays it while it loads
    with av.open(str(path)) as c:
        out = next(c.decode(video=0)).to_ndarray(format="bgr24")
    # padded, not cropped or scaled: the input sits at the top-left, the added column/row is black
    assert np.abs(out[:575, :767].astype(int) - img).mean() < 3
    assert out[:570, 767].max() < 30 and out[575, :760].max() < 30


def test_vfr_file_keeps_its_timestamps_and_duration(tmp_path):
    out = tmp_path / "vfr.mp4"
    annotate_file(VFR, out)
    want = frame_times(VFR)
    assert len(want) == 28 and want[-1] == pytest.approx(5.5)  # 10 fps for 2 s, then 2 fps
    assert frame_times(out) == pytest.approx(want, abs=1e-3)
    duration = float(stream_info(out)["format"]["duration"])
    assert duration == pytest.approx(float(stream_info(VFR)["format"]["duration"]), abs=0.01)  # 5.6 s


def test_ntsc_rate_is_kept_as_30000_over_1001(tmp_path):
    src = tmp_path / "ntsc.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30000/1001",
                    "-frames:v", "30", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(src)], check=True)
    assert stream_info(src)["streams"][0]["avg_frame_rate"] == "30000/1001"
    out = tmp_path / "out.mp4"
    annotate_file(src, out)
    s = stream_info(out)
    assert s["streams"][0]["avg_frame_rate"] == "30000/1001"
    assert s["streams"][0]["r_frame_rate"] == "30000/1001"
    assert float(s["format"]["duration"]) == pytest.approx(30 * 1001 / 30000, abs=1e-3)
    assert frame_times(out) == pytest.approx(frame_times(src), abs=1e-4)


def test_size_stays_in_proportion_to_the_input(tmp_path):
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(VIDEO), "-t", "10", "-c", "copy", "-an", str(clip)],
                   check=True)
    out = tmp_path / "out.mp4"
    boxes = Detections(np.array([[100, 100, 160, 260], [400, 200, 450, 330]], float), [0.8, 0.6], [0, 0],
                       ["person", "person"])
    annotate_file(clip, out, boxes)
    ratio = out.stat().st_size / clip.stat().st_size
    assert ratio < 1.0, ratio  # OpenCV's mp4v gave 2.3x the input
    assert float(stream_info(out)["format"]["duration"]) == pytest.approx(
        float(stream_info(clip)["format"]["duration"]), abs=0.05)


def test_frames_without_timestamps_run_at_the_fallback_rate(tmp_path):
    path = tmp_path / "images.mp4"
    sink = AnnotatedVideoSink(str(path))
    sink.open(None)
    for i in range(7):
        sink.write(FrameResult("0", i, None, 64, 48, NONE, np.zeros((48, 64, 3), np.uint8)))
    sink.close()
    assert float(stream_info(path)["format"]["duration"]) == pytest.approx(7 / float(FALLBACK_RATE), abs=1e-3)


def test_timestamps_that_go_back_are_shown_one_frame_later(tmp_path, caplog):
    path = tmp_path / "back.mp4"
    sink = AnnotatedVideoSink(str(path))
    sink.open(10.0)
    with caplog.at_level(logging.WARNING, "streamtrt"):
        for i, ts in enumerate([0.0, 0.1, 0.2, 0.0, 0.1]):  # a clock reset
            sink.write(FrameResult("0", i, ts, 64, 48, NONE, np.zeros((48, 64, 3), np.uint8)))
        sink.close()
    assert frame_times(path) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=1e-3)
    assert sum("not after the previous frame" in r.message for r in caplog.records) == 1


def test_portrait_frames_keep_their_size(tmp_path):
    path = tmp_path / "portrait.mp4"
    sink = AnnotatedVideoSink(str(path))
    sink.open(10.0)
    for i in range(3):
        sink.write(FrameResult("0", i, i / 10, 576, 768, NONE, gradient(768, 576)))
    sink.close()
    s = stream_info(path)["streams"][0]
    assert (s["width"], s["height"]) == (576, 768)


@pytest.mark.parametrize("suffix, codec", [(".mkv", "h264"), (".mov", "h264"), (".avi", "mjpeg")])
def test_other_containers(tmp_path, suffix, codec):
    path = tmp_path / ("v" + suffix)
    sink = AnnotatedVideoSink(str(path))
    sink.open(12.5)
    for i in range(10):
        sink.write(FrameResult("0", i, i / 12.5, 64, 48, NONE, np.full((48, 64, 3), 20 * i, np.uint8)))
    sink.close()
    info = stream_info(path)
    assert info["streams"][0]["codec_name"] == codec
    assert len(frame_times(path)) == 10
    assert float(info["format"]["duration"]) == pytest.approx(0.8, abs=0.01)
    if suffix == ".mov":
        atoms = top_level_atoms(path)
        assert atoms.index("moov") < atoms.index("mdat")


def test_without_h264_it_falls_back_to_mpeg4_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(video_mod, "H264_ENCODERS", ("no-such-encoder",))
    monkeypatch.setattr(video_mod.pick_encoder, "__defaults__", (("no-such-encoder",),))
    path = tmp_path / "m.mp4"
    sink = AnnotatedVideoSink(str(path))
    sink.open(10.0)
    with caplog.at_level(logging.WARNING, "streamtrt"):
        for i in range(3):
            sink.write(FrameResult("0", i, i / 10, 64, 48, NONE, np.zeros((48, 64, 3), np.uint8)))
        sink.close()
    assert stream_info(path)["streams"][0]["codec_name"] == "mpeg4"
    assert any("no H.264 encoder" in r.message for r in caplog.records)


def test_close_finishes_the_file_and_is_idempotent(tmp_path):
    path = tmp_path / "c.mp4"
    sink = AnnotatedVideoSink(str(path))
    sink.open(10.0)
    for i in range(4):
        sink.write(FrameResult("0", i, i / 10, 64, 48, NONE, np.zeros((48, 64, 3), np.uint8)))
    sink.close()
    size = path.stat().st_size
    sink.close()
    assert path.stat().st_size == size
    assert len(frame_times(path)) == 4  # the held last frame and the encoder's delayed ones are written
    with pytest.raises(SinkError, match="after close"):
        sink.write(FrameResult("0", 4, 0.4, 64, 48, NONE, np.zeros((48, 64, 3), np.uint8)))


def test_no_frames_no_file(tmp_path):
    sink = AnnotatedVideoSink(str(tmp_path / "none.mp4"))
    sink.open(10.0)
    sink.close()
    assert not (tmp_path / "none.mp4").exists()


def _dets(boxes):
    n = len(boxes)
    return Detections(np.array(boxes, float), [0.9] * n, [0] * n, ["person"] * n)


@pytest.mark.parametrize("box", [[300, 0, 320, 40], [0, 0, 30, 239], [290, 200, 320, 240], [-5, 230, 12, 250]])
def test_labels_stay_inside_the_frame(box):
    img = np.zeros((240, 320, 3), np.uint8)
    dets = _dets([box])
    (x1, y1, x2, y2), = label_rects(dets, img.shape)
    assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 240
    out = draw_detections(img, dets)
    # the label's background is drawn whole: its corners carry the class colour
    color = out[y1, x1]
    assert color.max() > 60
    for y, x in [(y1, x2 - 1), (y2 - 1, x1), (y2 - 1, x2 - 1)]:
        assert (out[y, x] == color).all()


def test_labels_of_overlapping_boxes_do_not_overlap():
    img = np.zeros((240, 320, 3), np.uint8)
    rects = label_rects(_dets([[100, 50, 200, 150], [104, 52, 204, 152], [98, 48, 198, 148]]), img.shape)
    for i in range(len(rects)):
        for j in range(i):
            a, b = rects[i], rects[j]
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (a, b)


def test_analytics_labels_stay_inside_and_apart():
    from types import SimpleNamespace

    from streamtrt.sinks.annotate import draw_analytics

    canvas = np.zeros((120, 160, 3), np.uint8)
    cfg = SimpleNamespace(
        lines=[SimpleNamespace(name="a-long-line-name", start=(150, 2), end=(150, 100))],
        zones=[SimpleNamespace(name="zone-at-the-edge", points=[(152, 4), (159, 4), (159, 60)])])
    draw_analytics(canvas, cfg, {})
    cyan = (canvas[..., 0] < 60) & (canvas[..., 1] > 200) & (canvas[..., 2] > 200)  # the line's label (0, 255, 255)
    orange = (canvas[..., 0] > 200) & (canvas[..., 1] > 100) & (canvas[..., 1] < 160) & (canvas[..., 2] < 60)
    cols = np.where(cyan.any(axis=0))[0]
    assert cols.min() < 140, "the line's label is drawn to the left, inside the frame"
    # the two labels do not share rows and columns where both have text
    assert not (cyan & orange).any()
    rows_cyan, rows_orange = set(np.where(cyan[:, :140].any(axis=1))[0]), set(np.where(orange[:, :140].any(axis=1))[0])
    assert rows_cyan and rows_orange and not (rows_cyan & rows_orange)
