import os

import numpy as np
import pytest

from streamtrt.errors import SourceError
from streamtrt.sources import VideoFileSource, decode_error_for
from tests.conftest import VIDEO, write_video


@pytest.mark.parametrize(
    "suffix, codec",
    [(".mp4", "libx264"), (".mkv", "libx265"), (".avi", "mpeg4"), (".ts", "libx264"), (".mp4", "libx265")],
)
def test_containers_and_codecs_decode_every_frame(tmp_path, first_frames, suffix, codec):
    path = write_video(tmp_path / f"clip{suffix}", first_frames, codec)
    src = VideoFileSource(str(path), str(path))
    frames = list(src)
    assert len(frames) == len(first_frames)
    assert [f.index for f in frames] == list(range(len(first_frames)))
    assert frames[0].image.shape == (576, 768, 3) and frames[0].image.dtype == np.uint8
    # lossy codecs: close to the original, not equal
    assert np.abs(frames[5].image.astype(int) - first_frames[5].astype(int)).mean() < 12
    assert src.stats.bad_frames == 0


def test_probe_reads_metadata():
    src = VideoFileSource(str(VIDEO), "vtest.mp4")
    info = src.info
    assert (info.width, info.height, info.frame_count, info.codec) == (768, 576, 795, "h264")
    assert info.fps == pytest.approx(10.0)


def test_timestamps_follow_pts(short_clip):
    frames = list(VideoFileSource(str(short_clip), "clip"))
    ts = [f.timestamp for f in frames]
    assert ts[0] == pytest.approx(0.0)
    assert np.allclose(np.diff(ts), 0.1, atol=1e-3)


def test_missing_file():
    with pytest.raises(SourceError, match="source not found: nope.mp4"):
        VideoFileSource("nope.mp4", "nope.mp4")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_unreadable_file(tmp_path, short_clip):
    p = tmp_path / "locked.mp4"
    p.write_bytes(short_clip.read_bytes())
    p.chmod(0)
    with pytest.raises(SourceError, match="not readable"):
        VideoFileSource(str(p), str(p))


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 100)
    with pytest.raises(SourceError, match="cannot open as video"):
        VideoFileSource(str(p), str(p))


def _corrupt_copy(tmp_path, data: bytes) -> bytes:
    rng = np.random.default_rng(0)
    buf = bytearray(data)
    mid = len(buf) // 2
    buf[mid : mid + 200_000] = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    return bytes(buf)


def test_corrupt_video_decodes_the_rest_and_counts_bad_frames(tmp_path):
    p = tmp_path / "corrupt.mp4"
    p.write_bytes(_corrupt_copy(tmp_path, VIDEO.read_bytes()))
    src = VideoFileSource(str(p), "corrupt.mp4")
    n = sum(1 for _ in src)
    assert 700 < n < 795
    assert src.stats.bad_frames == 795 - n
    err = decode_error_for("corrupt.mp4", src.stats)
    assert err is not None and f"{795 - n} frame(s) could not be decoded" in str(err)


def test_truncated_video_counts_missing_frames(tmp_path):
    p = tmp_path / "truncated.mp4"
    data = VIDEO.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    src = VideoFileSource(str(p), "truncated.mp4")
    n = sum(1 for _ in src)
    assert 300 < n < 500
    assert src.stats.bad_frames == 795 - n


def test_a_source_stopped_early_counts_only_real_decode_errors(tmp_path):
    """Frames an exact count promises are missing only once the file's end is reached; packets
    the decoder rejected count as they happen."""
    import itertools

    p = tmp_path / "corrupt.mp4"
    p.write_bytes(_corrupt_copy(tmp_path, VIDEO.read_bytes()))
    src = VideoFileSource(str(p), "corrupt.mp4")
    assert sum(1 for _ in itertools.islice(iter(src), 20)) == 20  # before the damage
    assert src.stats.bad_frames == src.stats.decode_errors == 0
    src = VideoFileSource(str(p), "corrupt.mp4")
    frames = iter(src)
    n = sum(1 for _ in itertools.islice(frames, 700))  # past the damage, short of the end
    assert n == 700 and src.stats.bad_frames == src.stats.decode_errors > 0
    rest = sum(1 for _ in frames)
    assert src.stats.bad_frames == 795 - n - rest


@pytest.mark.parametrize("name", ["notes.txt", "notes.nfo", "notes.mp4"])
def test_a_text_file_is_not_a_video(tmp_path, name):
    """FFmpeg's tty demuxer renders text as ANSI art (640x400 "frames"); that is never a video."""
    p = tmp_path / name
    p.write_text("A plain text file, e.g. a README, given as the source by mistake.\n" * 40)
    with pytest.raises(SourceError, match="not a video|cannot open as video"):
        VideoFileSource(str(p), name)
