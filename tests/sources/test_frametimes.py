"""Frame times read from packets (the GPU file path, where NVDEC gives frames without times) are
the CPU path's frame timestamps, on every case file and made inputs of each timing kind; and
they match ffprobe's frame times (an independent reference) where the file's clock is clean."""

import pytest

from streamtrt.sources import VideoFileSource
from streamtrt.sources.frametimes import presentation_times
from tests.conftest import VIDEO
from tests.ffmpeg_tools import (CASES, continued_times, counted_frames, ffmpeg, frame_times, needs_ffmpeg, rate,
                                small_clip)

pytestmark = needs_ffmpeg


def cpu_times(path) -> list:
    with VideoFileSource(str(path), path.name) as src:
        return [f.timestamp for f in src]


def made(kind: str, folder):
    """Inputs of each timing kind, made with the ffmpeg tool."""
    if kind == "hevc_join":  # NVR segments joined with cat: the clock restarts
        parts = [small_clip(folder / f"seg{i}.ts", 1.0, "64x48", 10, "-c:v", "libx265", "-x265-params",
                            "log-level=none") for i in range(2)]
    elif kind == "h264_bframes_join":
        parts = [small_clip(folder / f"p{i}.ts", 3.0, "64x48", 10, "-c:v", "libx264", "-bf", "3") for i in range(2)]
    elif kind == "hour_jump":  # a segment an hour later (an AVFMT_TS_DISCONT format: a break)
        parts = [small_clip(folder / "a.ts", 1.0, "64x48", 10, "-c:v", "libx264"),
                 small_clip(folder / "b.ts", 1.0, "64x48", 10, "-c:v", "libx264", "-output_ts_offset", "3600")]
    elif kind == "wrap":  # the 33-bit MPEG-TS clock wraps around within the clip
        return small_clip(folder / "wrap.ts", 2.0, "64x48", 10, "-c:v", "libx264", "-output_ts_offset", "95441")
    elif kind == "mkv_gap":  # a long gap in a format without discontinuities: kept
        a = small_clip(folder / "a.mkv", 1.0, "64x48", 10, "-c:v", "libx264")
        out = folder / "gap.mkv"
        ffmpeg("-i", a, "-itsoffset", "30", "-i", a, "-filter_complex", "[0:v][1:v]concat=n=2:v=1", "-vsync", "vfr",
               "-c:v", "libx264", out)
        return out
    elif kind == "trimmed_mp4":  # cut with -c copy between keyframes: an edit list hides packets
        clip = small_clip(folder / "clip.mp4", 4.0, "64x48", 10, "-c:v", "libx264", "-g", "10", "-bf", "2")
        out = folder / "trimmed.mp4"
        ffmpeg("-ss", "1.35", "-i", clip, "-t", "1.5", "-c", "copy", out)
        return out
    elif kind == "vfr_mp4":
        out = folder / "vfr.mp4"
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1", "-f", "lavfi", "-i",
               "testsrc2=size=64x48:rate=2:duration=2", "-filter_complex", "[0:v][1:v]concat=n=2:v=1",
               "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p", out)
        return out
    else:
        raise ValueError(kind)
    joined = folder / f"{kind}.ts"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    return joined


CASE_FILES = ["ts_concat_pts_reset.ts", "vfr_10fps_then_2fps.mkv", "mkv_audio_longer_than_video.mkv",
              "phone_portrait_rotate90.mp4"]


@pytest.mark.parametrize("name", CASE_FILES)
def test_packet_times_are_the_cpu_paths_times_on_the_cases(name):
    path = CASES / name
    times = presentation_times(str(path), display=name)
    assert times is not None and len(times) == counted_frames(path)
    assert times == cpu_times(path)


@pytest.mark.parametrize("kind", ["hevc_join", "h264_bframes_join", "hour_jump", "wrap", "mkv_gap", "trimmed_mp4",
                                  "vfr_mp4"])
def test_packet_times_are_the_cpu_paths_times_on_made_inputs(tmp_path, kind):
    path = made(kind, tmp_path)
    times = presentation_times(str(path))
    assert times is not None and len(times) == counted_frames(path)
    assert times == cpu_times(path)


@pytest.mark.parametrize("name, codec", [("raw_h264_10fps.h264", None), ("made.h265", "libx265")])
def test_raw_streams_are_timed_by_the_rate_on_both_paths(tmp_path, name, codec):
    """A raw stream has no timestamps: one time per frame at the codec's rate (ffprobe's
    r_frame_rate), as the CPU path times it; the count is ffprobe's too."""
    path = CASES / name if codec is None else small_clip(tmp_path / name, 1.2, "64x48", 5, "-c:v", codec,
                                                          "-x265-params", "log-level=none")
    fps = float(rate(path))
    times = presentation_times(str(path))
    assert times == pytest.approx([i / fps for i in range(counted_frames(path))], abs=1e-9)
    assert times == cpu_times(path)


# -- against ffprobe -------------------------------------------------------------------------------
def test_variable_frame_rate_is_kept():
    path = CASES / "vfr_10fps_then_2fps.mkv"
    probe = frame_times(path)
    assert presentation_times(str(path)) == pytest.approx([t - probe[0] for t in probe], abs=1e-6)


def test_what_an_edit_list_hides_is_left_out(tmp_path):
    trimmed = tmp_path / "trimmed.mp4"
    ffmpeg("-ss", "1.05", "-i", VIDEO, "-t", "2", "-c", "copy", trimmed)  # starts between keyframes
    import av

    want = frame_times(trimmed)
    with av.open(str(trimmed)) as c:
        assert c.streams.video[0].frames > len(want)  # the container counts the hidden packets too
    assert presentation_times(str(trimmed)) == pytest.approx([t - want[0] for t in want], abs=1e-6)


def test_times_continue_across_a_clock_reset(tmp_path):
    path = made("h264_bframes_join", tmp_path)
    probe = frame_times(path)
    assert min(b - a for a, b in zip(probe, probe[1:])) < 0  # the file's clock does go back
    assert presentation_times(str(path)) == pytest.approx(continued_times(probe, 0.1), abs=1e-6)
    assert presentation_times(str(path)) == pytest.approx([i / 10 for i in range(60)], abs=1e-6)
