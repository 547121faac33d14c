"""Display rotation: which way, the displayed size, the exact GPU graph (run in DALI on the CPU),
and frame times read from packets. The truth is ffmpeg's autorotated output and ffprobe."""

import json
import shutil
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from streamtrt.preprocess.dali import dali_available
from streamtrt.preprocess.frametimes import presentation_times
from streamtrt.preprocess.orientation import (clockwise_from_display_matrix, display_size, normalize_rotation,
                                               probe_stored_video, rot90_k, rotate_frame)

CASES = Path(__file__).resolve().parents[1] / "data" / "cases"
ROTATED = CASES / "phone_portrait_rotate90.mp4"  # stored 576x768, ffprobe rotation=90, shown 768x576
VFR = CASES / "vfr_10fps_then_2fps.mkv"
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                  reason="needs ffmpeg and ffprobe")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


def ffprobe_frame_times(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
                          "-of", "json", str(path)], check=True, capture_output=True, text=True).stdout
    return [float(f["pts_time"]) for f in json.loads(out)["frames"]]


def first_stored_frame(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="bgr24")


def ffmpeg_shows(path, tmp_path) -> np.ndarray:
    """The first frame as ffmpeg shows it (autorotation on, its default)."""
    png = tmp_path / (Path(path).stem + ".png")
    ffmpeg("-i", path, "-frames:v", "1", png)
    return cv2.imread(str(png))


@pytest.mark.parametrize("degrees, want", [(0, 0), (90, 90), (-90, 270), (270, 270), (450, 90), (-180, 180),
                                           (89.99, 90), (None, 0)])
def test_normalize_rotation(degrees, want):
    assert normalize_rotation(degrees) == want


def test_rotation_not_a_multiple_of_90_is_refused():
    with pytest.raises(ValueError, match="multiple of 90"):
        normalize_rotation(45)


def test_geometry_in_displayed_pixels():
    assert display_size(768, 576, 90) == (576, 768)
    assert display_size(768, 576, 270) == (576, 768)
    assert display_size(768, 576, 180) == (768, 576)
    assert [rot90_k(r) for r in (0, 90, 180, 270)] == [0, 3, 2, 1]
    img = np.arange(6).reshape(2, 3)
    assert rotate_frame(img, 90).tolist() == [[3, 0], [4, 1], [5, 2]]  # clockwise: the left column on top
    assert clockwise_from_display_matrix(90.0) == 270 and clockwise_from_display_matrix(-90.0) == 90


@needs_ffmpeg
def test_the_phone_case_turns_as_ffmpeg_shows_it(tmp_path):
    stored = probe_stored_video(ROTATED)
    assert (stored.height, stored.width, stored.rotation) == (768, 576, 270)
    assert stored.display_size == (576, 768)
    truth = ffmpeg_shows(ROTATED, tmp_path)
    raw = first_stored_frame(ROTATED)
    assert np.abs(rotate_frame(raw, stored.rotation).astype(int) - truth).mean() < 1
    assert np.abs(rotate_frame(raw, (stored.rotation + 180) % 360).astype(int) - truth).mean() > 20


@needs_ffmpeg
@pytest.mark.parametrize("tag", [90, 180, 270])
def test_every_quarter_turn_matches_ffmpeg(tmp_path, tag):
    src = tmp_path / "src.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=10", "-frames:v", "3", "-pix_fmt", "yuv420p", src)
    rotated = tmp_path / f"rot{tag}.mp4"
    ffmpeg("-i", src, "-c", "copy", "-metadata:s:v:0", f"rotate={tag}", rotated)  # the legacy clockwise tag
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream_side_data=rotation", "-of", "json", str(rotated)],
                         check=True, capture_output=True, text=True).stdout
    ccw = int(json.loads(out)["streams"][0]["side_data_list"][0]["rotation"])  # the matrix turns counter-clockwise
    stored = probe_stored_video(rotated)
    assert (stored.height, stored.width, stored.rotation) == (64, 96, (-ccw) % 360)
    truth = ffmpeg_shows(rotated, tmp_path)
    assert truth.shape[:2] == stored.display_size
    raw = first_stored_frame(rotated)
    assert np.abs(rotate_frame(raw, stored.rotation).astype(int) - truth).mean() < 1
    for other in {90, 180, 270} - {stored.rotation}:
        if rotate_frame(raw, other).shape == truth.shape:
            assert np.abs(rotate_frame(raw, other).astype(int) - truth).mean() > 20


@pytest.mark.skipif(not dali_available(), reason="DALI is not installed")
@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_dali_orientation_graph_equals_rot90(rotation):
    """The transpose/flip graph the NVDEC decoder uses, run by DALI on the CPU: exact."""
    from nvidia import dali
    from nvidia.dali import fn, types

    from streamtrt.preprocess.dali import orient_sequence

    frames = np.random.default_rng(1).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    pipe = dali.Pipeline(batch_size=1, num_threads=1, device_id=None, exec_async=False, exec_pipelined=False)
    with pipe:
        pipe.set_outputs(orient_sequence(fn, fn.external_source(name="f", layout="FHWC", dtype=types.UINT8),
                                         rotation))
    pipe.build()
    pipe.feed_input("f", [frames])
    (out,) = pipe.run()
    want = np.stack([rotate_frame(f, rotation) for f in frames])
    assert np.array_equal(np.asarray(out[0]), want)


@needs_ffmpeg
def test_frame_times_from_packets_keep_variable_rate():
    times = presentation_times(str(VFR))
    assert times == pytest.approx(ffprobe_frame_times(VFR), abs=1e-6)


@needs_ffmpeg
def test_frame_times_leave_out_what_an_edit_list_hides(tmp_path):
    from tests.conftest import VIDEO

    trimmed = tmp_path / "trimmed.mp4"
    ffmpeg("-ss", "1.05", "-i", VIDEO, "-t", "2", "-c", "copy", trimmed)  # starts between keyframes
    want = ffprobe_frame_times(trimmed)
    with av.open(str(trimmed)) as c:
        assert c.streams.video[0].frames > len(want)  # the container counts the hidden packets too
    assert presentation_times(str(trimmed)) == pytest.approx(want, abs=1e-6)


@needs_ffmpeg
def test_frame_times_continue_across_a_clock_reset(tmp_path):
    parts = []
    for i in range(2):
        part = tmp_path / f"p{i}.ts"
        ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "30", "-pix_fmt", "yuv420p",
               "-c:v", "libx264", "-bf", "3", part)
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))  # as `cat` joins NVR segments: the clock restarts
    times = presentation_times(str(joined), 10.0)
    assert times == pytest.approx([i / 10 for i in range(60)], abs=1e-3)


@needs_ffmpeg
def test_raw_streams_have_no_packet_times(tmp_path):
    raw = tmp_path / "raw.h264"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "5", "-pix_fmt", "yuv420p", "-c:v",
           "libx264", "-f", "h264", raw)
    assert presentation_times(str(raw)) is None


@pytest.mark.skipif(not dali_available(), reason="DALI is not installed")
@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_the_gpu_decoder_graph_on_the_phone_case_equals_the_cpu_path(resize):
    """The decoder's graph after NVDEC (orientation, resize, letterbox, normalisation, kept frames),
    run by DALI on the CPU on FFmpeg's stored frames: the CPU path's tensor of the upright frames."""
    from nvidia import dali
    from nvidia.dali import fn, types

    from streamtrt.preprocess.dali import sequence_graph
    from streamtrt.preprocess.opencv import OpenCVPreprocessor
    from streamtrt.preprocess.spec import PreprocessSpec

    spec = PreprocessSpec(416, 416, resize, "bgr", (103.53, 116.28, 123.675), (57.375, 57.12, 58.395))
    stored = probe_stored_video(ROTATED)
    with av.open(str(ROTATED)) as c:
        rgb = [f.to_ndarray(format="rgb24") for _, f in zip(range(4), c.decode(video=0))]
    upright = [rotate_frame(np.ascontiguousarray(f[..., ::-1]), stored.rotation) for f in rgb]
    geom = spec.geometry(*stored.display_size)
    pipe = dali.Pipeline(batch_size=1, num_threads=1, device_id=None, exec_async=False, exec_pipelined=False)
    with pipe:
        frames = fn.external_source(name="video", layout="FHWC", dtype=types.UINT8)
        pipe.set_outputs(*sequence_graph(fn, types, frames, spec, geom, stored.rotation, keep_frames=True))
    pipe.build()
    pipe.feed_input("video", [np.stack(rgb)])
    tensor, kept = (np.asarray(o[0]) for o in pipe.run())
    assert np.array_equal(kept, np.stack(upright))
    expected, geoms = OpenCVPreprocessor(spec)(upright)
    assert geoms[0] == geom and (geom.pad_y > 0) == (resize == "letterbox")
    assert tensor.shape == expected.shape == (4, 3, 416, 416)
    pixel = np.abs(tensor - expected) * np.asarray(spec.std, np.float32).reshape(1, 3, 1, 1)
    assert pixel.mean() < 0.5, pixel.mean()
