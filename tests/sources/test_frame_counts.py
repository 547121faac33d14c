"""Frame counts that tell the truth: only frames that really failed are bad."""

import pytest

from streamtrt.sources import VideoFileSource, decode_error_for
from tests.conftest import VIDEO
from tests.ffmpeg_tools import CASES, counted_frames, ffmpeg, needs_ffmpeg, small_clip, video_stream


def _run(path):
    src = VideoFileSource(str(path), path.name)
    n = sum(1 for _ in src)
    return src, n


@needs_ffmpeg
@pytest.mark.parametrize("name", ["mkv_audio_longer_than_video.mkv", "vfr_10fps_then_2fps.mkv",
                                  "ts_concat_pts_reset.ts", "raw_h264_10fps.h264"])
def test_case_files_have_no_bad_frames(name):
    path = CASES / name
    src, n = _run(path)
    assert n == counted_frames(path)
    assert src.stats.bad_frames == 0 and decode_error_for(name, src.stats) is None
    # these containers do not index every frame: any count is an estimate
    assert src.info.frame_count_estimated


@needs_ffmpeg
def test_audio_longer_than_video_is_not_counted_as_frames():
    path = CASES / "mkv_audio_longer_than_video.mkv"
    src, n = _run(path)
    assert n == 30
    assert src.info.frame_count == 30  # the video track's own duration (3 s at 10 fps), not the file's 5 s


@needs_ffmpeg
def test_mp4_with_longer_audio(tmp_path):
    path = tmp_path / "audio_longer.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=5", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", path)
    src, n = _run(path)
    assert n == int(video_stream(path)["nb_frames"]) == counted_frames(path) == 20
    assert src.info.frame_count == 20 and not src.info.frame_count_estimated
    assert src.stats.bad_frames == 0


@needs_ffmpeg
def test_mp4_trimmed_with_stream_copy_has_an_edit_list(tmp_path):
    clip = small_clip(tmp_path / "clip.mp4", 4.0, "64x48", 10, "-c:v", "libx264", "-g", "10", "-bf", "2")
    trimmed = tmp_path / "trimmed.mp4"
    ffmpeg("-ss", "1.35", "-i", clip, "-t", "1.5", "-c", "copy", trimmed)
    packets = int(video_stream(trimmed)["nb_frames"])
    shown = counted_frames(trimmed)
    assert packets > shown  # the edit list hides the packets before the cut
    src, n = _run(trimmed)
    assert n == shown
    assert src.info.frame_count == shown and not src.info.frame_count_estimated
    assert src.stats.bad_frames == 0


def test_truncated_mp4_is_still_an_error(tmp_path):
    p = tmp_path / "truncated.mp4"
    data = VIDEO.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    src, n = _run(p)
    assert not src.info.frame_count_estimated and src.info.frame_count == 795
    assert 300 < n < 500 and src.stats.bad_frames == 795 - n
    assert f"{795 - n} frame(s) could not be decoded" in str(decode_error_for("truncated.mp4", src.stats))
