"""The real-world input cases (tests/data/cases), run as a user runs them: the CLI, the sample
model, the CPU path. Expected values come from ffprobe, the geometry and arithmetic."""

import json
from fractions import Fraction
from urllib.parse import quote

import pytest

from streamtrt.sinks.schema import FRAME_SCHEMA
from tests.conftest import SAMPLE_CONFIG, VIDEO
from tests.ffmpeg_tools import (CASES, continued_times, counted_frames, displayed_size, frame_pts, frame_times,
                                needs_ffmpeg, rate)
from tests.test_cli import assert_one_line_error, streamtrt

pytestmark = needs_ffmpeg
CPU = ("--set", "runtime.decoder=cpu", "--set", "runtime.runner=onnxruntime-cpu")


def run_case(tmp_path, source, *extra):
    out, summary = tmp_path / "d.jsonl", tmp_path / "s.json"
    proc = streamtrt("run", SAMPLE_CONFIG, "--source", source, "--sink", f"jsonl:{out}",
                     "--sink", f"summary:{summary}", *CPU, *extra)
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    frames = [r for r in records if r.get("schema") == "streamtrt.frame/1"]
    return proc, frames, json.loads(summary.read_text()) if summary.exists() else None


def assert_valid(records):
    jsonschema = pytest.importorskip("jsonschema")
    for r in records:
        jsonschema.validate(r, FRAME_SCHEMA)


def persons(records) -> int:
    return sum(1 for r in records for d in r["detections"] if d["class_name"] == "person")


@pytest.mark.slow
def test_phone_portrait_rotate90(tmp_path):
    path = CASES / "phone_portrait_rotate90.mp4"
    proc, frames, summary = run_case(tmp_path, path)
    assert proc.returncode == 0, proc.stderr
    w, h = displayed_size(path)
    assert (w, h) == (768, 576)
    assert len(frames) == counted_frames(path) == 40
    assert all((r["width"], r["height"]) == (w, h) for r in frames)
    assert all(0 <= d["bbox"][0] <= d["bbox"][2] <= w and 0 <= d["bbox"][1] <= d["bbox"][3] <= h
               for r in frames for d in r["detections"])
    # the same 40 frames of the upright sample clip find as many people
    _, upright, _ = run_case(tmp_path / "upright", VIDEO, "--set", "runtime.max_frames=40")
    assert persons(upright) > 150
    assert abs(persons(frames) - persons(upright)) <= 0.1 * persons(upright)
    assert_valid(frames)


def test_mkv_audio_longer_than_video(tmp_path):
    path = CASES / "mkv_audio_longer_than_video.mkv"
    proc, frames, summary = run_case(tmp_path, path)
    assert proc.returncode == 0, proc.stderr
    assert "could not be decoded" not in proc.stderr
    probe = frame_times(path)
    assert len(frames) == len(probe) == 30 and summary["bad_frames"] == 0
    assert [r["timestamp"] for r in frames] == pytest.approx([t - probe[0] for t in probe], abs=1e-6)


def test_vfr_10fps_then_2fps(tmp_path):
    path = CASES / "vfr_10fps_then_2fps.mkv"
    proc, frames, summary = run_case(tmp_path, path)
    assert proc.returncode == 0, proc.stderr
    probe = frame_times(path)
    assert len(frames) == len(probe) == 28 and summary["bad_frames"] == 0
    assert [r["timestamp"] for r in frames] == pytest.approx([t - probe[0] for t in probe], abs=1e-6)
    assert [r["pts"] for r in frames] == frame_pts(path)


@pytest.mark.slow  # over 4 s on a busy 2-core machine: keeps the default run under 6 minutes
def test_ts_concat_pts_reset(tmp_path):
    path = CASES / "ts_concat_pts_reset.ts"
    proc, frames, summary = run_case(tmp_path, path)
    assert proc.returncode == 0, proc.stderr
    probe = frame_times(path)
    ts = [r["timestamp"] for r in frames]
    assert len(frames) == len(probe) == 60
    assert all(b > a for a, b in zip(ts, ts[1:]))
    assert ts == pytest.approx(continued_times(probe, float(1 / rate(path))), abs=1e-6)
    assert ts[-1] == pytest.approx(5.9)
    # each record traces back to its frame in the file
    assert [r["pts"] for r in frames] == frame_pts(path)
    assert {r["time_base"] for r in frames} == {"1/90000"}
    assert proc.stderr.count("PTS clock goes back") == 1  # the reset is logged once
    assert_valid(frames)


@pytest.mark.slow  # over 4 s on a busy 2-core machine: keeps the default run under 6 minutes
def test_raw_h264_10fps(tmp_path):
    path = CASES / "raw_h264_10fps.h264"
    proc, frames, summary = run_case(tmp_path, path)
    assert proc.returncode == 0, proc.stderr
    fps = rate(path)
    assert fps == 10
    assert len(frames) == counted_frames(path) == 30
    assert [r["timestamp"] for r in frames] == pytest.approx([i / float(fps) for i in range(30)], abs=1e-6)
    assert all(r["pts"] is None and r["time_base"] is None for r in frames)
    assert_valid(frames)


def test_raw_h264_with_stated_fps(tmp_path):
    path = CASES / "raw_h264_10fps.h264"
    cfg = tmp_path / "job.yaml"
    cfg.write_text(SAMPLE_CONFIG.read_text().replace("source: ../samples/vtest.mp4",
                                                     f"sources:\n  - uri: {json.dumps(str(path))}\n    fps: 5"))
    cfg_model = str(SAMPLE_CONFIG.parent.parent / "samples" / "nanodet-m-416.onnx")
    out = tmp_path / "d.jsonl"
    proc = streamtrt("run", cfg, "--sink", f"jsonl:{out}", *CPU, "--set", f"model.path={cfg_model}",
                     "--set", "runtime.max_frames=6")
    assert proc.returncode == 0, proc.stderr
    ts = [json.loads(line)["timestamp"] for line in out.read_text().splitlines()]
    assert ts == pytest.approx([i / 5 for i in range(6)])


def test_framerate_option_on_a_file_is_refused(tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text(SAMPLE_CONFIG.read_text().replace(
        "source: ../samples/vtest.mp4",
        f"sources:\n  - uri: {json.dumps(str(CASES / 'raw_h264_10fps.h264'))}\n    options: {{framerate: '10'}}"))
    proc = streamtrt("run", cfg)
    assert_one_line_error(proc, "sources.0.options", "does not apply to a video file")
    assert proc.returncode == 2


@pytest.mark.parametrize("how", ["path", "file-uri", "folder"])
def test_brackets_in_names(tmp_path, how):
    video = CASES / "brackets" / "Camera 1 [2024-05-01].mp4"
    folder = CASES / "brackets" / "Camera 1 [2024-05-01]"
    source = {"path": str(video), "file-uri": "file://" + quote(str(video)), "folder": str(folder)}[how]
    proc, frames, summary = run_case(tmp_path, source)
    assert proc.returncode == 0, proc.stderr
    if how == "folder":
        names = sorted(p.name for p in folder.iterdir())
        assert [r["source_file"] for r in frames] == names
        assert all("pts" not in r for r in frames)
    else:
        assert len(frames) == counted_frames(video)
        assert (frames[0]["width"], frames[0]["height"]) == displayed_size(video)
        tb = Fraction(frames[0]["time_base"])
        assert [r["timestamp"] for r in frames] == pytest.approx(
            [(p - frames[0]["pts"]) * tb for p in (r["pts"] for r in frames)], abs=1e-6)
    assert_valid(frames)


@pytest.mark.slow
def test_phone_portrait_rotate90_annotated_video_is_upright(tmp_path):
    """The annotated video of the rotated case, as a user opens it: 768x576 with no rotation left in
    its metadata, and its first frame is ffmpeg's autorotated first frame of the input (drawing off:
    a score threshold no detection reaches)."""
    import cv2
    import numpy as np

    from tests.ffmpeg_tools import ffmpeg, video_stream

    path = CASES / "phone_portrait_rotate90.mp4"
    video = tmp_path / "annotated.mp4"
    proc, frames, _ = run_case(tmp_path, path, "--sink", f"video:{video}", "--set", "runtime.max_frames=3",
                               "--set", "postprocess.score_threshold=1.0")
    assert proc.returncode == 0, proc.stderr
    assert len(frames) == 3 and not any(r["detections"] for r in frames)
    s = video_stream(video)
    assert (int(s["width"]), int(s["height"]), s["rotation"]) == (768, 576, 0)
    assert not s.get("side_data_list")  # no display matrix: already upright
    want_png, got_png = tmp_path / "input.png", tmp_path / "output.png"
    ffmpeg("-i", path, "-frames:v", "1", want_png)  # ffmpeg autorotates the input
    ffmpeg("-i", video, "-frames:v", "1", got_png)
    want, got = cv2.imread(str(want_png)).astype(int), cv2.imread(str(got_png)).astype(int)
    assert want.shape == got.shape == (576, 768, 3)
    print("mean abs diff, output vs ffmpeg's upright input:", np.abs(got - want).mean())
    assert np.abs(got - want).mean() < 4  # an H.264 re-encode of the same picture
    assert np.abs(got - np.ascontiguousarray(want[::-1, ::-1])).mean() > 20  # not upside down
