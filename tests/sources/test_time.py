"""Time: presentation time since the first frame, as ffprobe reports it, never backwards."""

import logging
from fractions import Fraction

import numpy as np
import pytest

from streamtrt.config import SourceConfig
from streamtrt.sources import VideoFileSource, open_source, parse_source_uri
from streamtrt.sources.clock import PresentationClock
from tests.ffmpeg_tools import (CASES, continued_times, counted_frames, ffmpeg, frame_pts, frame_times, needs_ffmpeg,
                                rate, small_clip)


def _times(path, **kw):
    src = VideoFileSource(str(path), path.name, **kw)
    frames = list(src)
    return src, frames, [f.timestamp for f in frames]


# -- the clock, by arithmetic ----------------------------------------------------------------------
def test_clock_continues_after_a_reset_and_logs_once(caplog):
    clock = PresentationClock(Fraction(1, 90000), 10.0, "cam")
    pts = [126000 + 9000 * i for i in range(5)] * 3  # three segments, each restarting at 1.4 s
    with caplog.at_level(logging.WARNING, logger="streamtrt"):
        ts = [clock(p, 9000) for p in pts]
    assert ts == pytest.approx([0.1 * i for i in range(15)])
    assert sum("goes back" in r.getMessage() for r in caplog.records) == 1
    assert clock.breaks == 2


def test_clock_keeps_variable_frame_rate_and_forward_gaps_in_files_without_discontinuities(caplog):
    clock = PresentationClock(Fraction(1, 1000), 10.0, "vfr", may_jump=False)
    pts = [0, 100, 200, 700, 1200, 61200, 61300, 121300]
    with caplog.at_level(logging.WARNING, logger="streamtrt"):
        assert [clock(p, None) for p in pts] == pytest.approx([0, 0.1, 0.2, 0.7, 1.2, 61.2, 61.3, 121.3])
    assert [r.getMessage() for r in caplog.records if "gap" in r.getMessage()] == [
        "vfr: no frame for 60.000 s after 1.200 s (a gap in the recording; timestamps keep it)"]


def test_clock_treats_a_big_forward_jump_as_a_discontinuity_where_the_format_allows_them():
    clock = PresentationClock(Fraction(1, 90000), 10.0, "ts", may_jump=True)
    pts = [0, 9000, 18000, 18000 + 90000 * 3600, 27000 + 90000 * 3600]  # an hour later
    assert [clock(p, 9000) for p in pts] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])


def test_clock_without_pts_counts_frames_at_the_rate():
    clock = PresentationClock(None, 10.0, "raw")
    assert [clock(None, None) for _ in range(31)][-1] == pytest.approx(3.0)


# -- the case files and more of their kinds, against ffprobe ---------------------------------------
@needs_ffmpeg
def test_concatenated_ts_keeps_rising_across_the_reset():
    path = CASES / "ts_concat_pts_reset.ts"
    src, frames, ts = _times(path)
    probe = frame_times(path)
    assert len(frames) == len(probe) == counted_frames(path) == 60
    assert probe[30] < probe[29]  # the file's clock does go back
    assert ts == pytest.approx(continued_times(probe, float(1 / rate(path))), abs=1e-6)
    assert ts[-1] == pytest.approx(5.9)
    assert all(b > a for a, b in zip(ts, ts[1:]))
    assert [f.pts for f in frames] == frame_pts(path)  # the raw PTS, for tracing records back
    assert all(f.time_base == Fraction(1, 90000) for f in frames)
    assert src.stats.bad_frames == 0


@needs_ffmpeg
def test_hevc_segments_joined_with_cat(tmp_path):
    parts = []
    for i in range(2):
        part = small_clip(tmp_path / f"seg{i}.ts", 1.0, "64x48", 10, "-c:v", "libx265", "-x265-params", "log-level=none")
        parts.append(part)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    src, frames, ts = _times(joined)
    probe = frame_times(joined)
    assert len(frames) == len(probe) == 20
    assert min(np.diff(probe)) < 0  # the clock restarts
    assert ts == pytest.approx(continued_times(probe, float(1 / rate(joined))), abs=1e-6)
    assert ts[-1] == pytest.approx(1.9)
    assert src.stats.bad_frames == 0 and src.info.codec == "hevc"


@needs_ffmpeg
def test_ts_segment_an_hour_later_continues(tmp_path):
    """An NVR segment whose clock is far ahead (more than ffmpeg's 10 s dts_delta_threshold)."""
    a = small_clip(tmp_path / "a.ts", 1.0, "64x48", 10, "-c:v", "libx264")
    b = small_clip(tmp_path / "b.ts", 1.0, "64x48", 10, "-c:v", "libx264", "-output_ts_offset", "3600")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    probe = frame_times(joined)
    assert probe[10] - probe[9] > 3000  # ffprobe sees the jump
    _, frames, ts = _times(joined)
    assert ts == pytest.approx([i / 10 for i in range(20)], abs=1e-6)


@needs_ffmpeg
def test_variable_frame_rate_is_kept():
    path = CASES / "vfr_10fps_then_2fps.mkv"
    src, frames, ts = _times(path)
    probe = frame_times(path)
    assert len(frames) == len(probe) == 28
    assert ts == pytest.approx([t - probe[0] for t in probe], abs=1e-6)
    assert ts[-1] == pytest.approx(5.5) and ts[21] - ts[20] == pytest.approx(0.5)
    assert src.stats.bad_frames == 0


@needs_ffmpeg
@pytest.mark.parametrize("name, codec", [("raw_h264_10fps.h264", None), ("made.h265", "libx265"),
                                         ("made.h264", "libx264")])
def test_raw_elementary_stream_takes_the_codec_rate(tmp_path, name, codec):
    if codec is None:
        path = CASES / name
    else:  # a rate that is not FFmpeg's raw-demuxer default of 25
        path = small_clip(tmp_path / name, 1.2, "64x48", 5, "-c:v", codec,
                          *(["-x265-params", "log-level=none"] if codec == "libx265" else []))
    expected_rate = rate(path)
    assert expected_rate != 25
    src, frames, ts = _times(path)
    assert src.info.fps == pytest.approx(float(expected_rate))
    assert len(frames) == counted_frames(path)
    assert ts == pytest.approx([i / float(expected_rate) for i in range(len(frames))], abs=1e-6)
    assert all(f.pts is None for f in frames)  # a raw stream carries none
    assert src.stats.bad_frames == 0


@needs_ffmpeg
def test_fps_option_states_the_rate_of_a_raw_stream():
    path = CASES / "raw_h264_10fps.h264"
    src = open_source(parse_source_uri(str(path)), options=SourceConfig(uri="unused", fps=4.0))
    ts = [f.timestamp for f in src]
    assert src.info.fps == 4.0
    assert ts == pytest.approx([i / 4 for i in range(30)])


def test_fps_option_does_not_override_a_file_with_timestamps(short_clip, caplog):
    with caplog.at_level(logging.WARNING, logger="streamtrt"):
        src = open_source(parse_source_uri(str(short_clip)), options=SourceConfig(uri="unused", fps=4.0))
    assert src.info.fps == pytest.approx(10.0)
    assert [f.timestamp for f in src][1] == pytest.approx(0.1)
    assert any("fps 4 not used" in r.getMessage() for r in caplog.records)


@needs_ffmpeg
def test_ts_33_bit_clock_wrapping_around(tmp_path):
    """MPEG-TS timestamps are 33-bit at 90 kHz: they wrap after 95443.7 s."""
    clip = small_clip(tmp_path / "wrap.ts", 2.0, "64x48", 10, "-c:v", "libx264", "-output_ts_offset", "95441")
    pts = frame_pts(clip)
    assert min(np.diff([p % (1 << 33) for p in pts])) < 0  # the stored counter wraps within the clip
    _, frames, ts = _times(clip)
    assert ts == pytest.approx([i / 10 for i in range(20)], abs=1e-6)


@needs_ffmpeg
def test_raw_stream_without_timing_info_says_what_it_assumes(tmp_path, caplog):
    path = small_clip(tmp_path / "notiming.h265", 0.6, "64x48", 5, "-c:v", "libx265", "-x265-params",
                      "log-level=none:vui-timing-info=0:vui-hrd-info=0")
    assert rate(path) == 25  # ffprobe falls back on FFmpeg's default too
    with caplog.at_level(logging.WARNING, logger="streamtrt"):
        src = VideoFileSource(str(path), "notiming.h265")
    assert src.info.fps == 25.0
    assert any("states no frame rate" in r.getMessage() and "sources[].fps" in r.getMessage() for r in caplog.records)
    src = open_source(parse_source_uri(str(path)), options=SourceConfig(uri="unused", fps=5.0))
    assert [f.timestamp for f in src] == pytest.approx([i / 5 for i in range(3)])
