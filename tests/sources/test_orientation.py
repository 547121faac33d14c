"""Orientation: frames, sizes and rotation as ffmpeg (autorotate) and players show them."""

import struct

import numpy as np
import pytest

from streamtrt.config import SourceConfig
from streamtrt.sources import VideoFileSource, open_source, parse_source_uri
from streamtrt.sources.orientation import orient, rotation_from_matrix
from tests.conftest import VIDEO, decode_frames
from tests.ffmpeg_tools import (CASES, decoded_as_displayed, displayed_size, ffmpeg, needs_ffmpeg, small_clip,
                                video_stream)

PHONE = CASES / "phone_portrait_rotate90.mp4"


def _matrix(a, b, c, d) -> bytes:
    """A display matrix [[a, b, 0], [c, d, 0], [0, 0, 1]] as FFmpeg stores it (16.16 and 2.30 fixed point)."""
    return struct.pack("<9i", int(a * 65536), int(b * 65536), 0, int(c * 65536), int(d * 65536), 0, 0, 0, 1 << 30)


@pytest.mark.parametrize("matrix, expected", [
    ((1, 0, 0, 1), (0, False)),  # identity
    ((-1, 0, 0, 1), (0, True)),  # a mirror: x -> -x
    ((1, 0, 0, -1), (180, True)),  # upside down mirror (vflip) = half turn + mirror
    ((-1, 0, 0, -1), (180, False)),
])
def test_rotation_from_matrix_flips_and_half_turn(matrix, expected):
    assert rotation_from_matrix(_matrix(*matrix)) == expected


def test_orient_matches_numpy_rot90():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for rot in (0, 90, 180, 270):
        assert np.array_equal(orient(img, rot), np.rot90(img, rot // 90))
        assert np.array_equal(orient(img, rot, True), np.fliplr(np.rot90(img, rot // 90)))


@needs_ffmpeg
def test_phone_case_is_upright_as_ffmpeg_shows_it():
    s = video_stream(PHONE)
    assert (int(s["width"]), int(s["height"]), s["rotation"]) == (576, 768, 90)  # stored sideways
    src = VideoFileSource(str(PHONE), PHONE.name)
    assert (src.info.width, src.info.height) == displayed_size(PHONE) == (768, 576)
    assert src.info.rotation == s["rotation"] and not src.info.mirror
    frames = [f.image for _, f in zip(range(3), src)]
    want = decoded_as_displayed(PHONE, 3)
    for got, ref in zip(frames, want):
        assert got.shape == ref.shape == (576, 768, 3)
        assert np.abs(got.astype(int) - ref).mean() < 2.0
    # and it is the sample clip, upright
    assert np.abs(frames[0].astype(int) - decode_frames(VIDEO, 1)[0]).mean() < 4.0


@needs_ffmpeg
def test_orientation_ignore_keeps_frames_as_stored():
    src = open_source(parse_source_uri(str(PHONE)), options=SourceConfig(uri="unused", orientation="ignore"))
    assert (src.info.width, src.info.height, src.info.rotation) == (576, 768, 0)
    assert next(iter(src)).image.shape == (768, 576, 3)


@needs_ffmpeg
@pytest.mark.parametrize("tag", [90, 180, 270])
def test_rotations_match_ffmpeg(tmp_path, tag):
    clip = small_clip(tmp_path / "clip.mp4", 0.5, "96x64", 10, "-c:v", "libx264")
    rotated = tmp_path / f"rot{tag}.mp4"
    ffmpeg("-i", clip, "-c", "copy", "-metadata:s:v:0", f"rotate={tag}", rotated)
    s = video_stream(rotated)
    assert s["rotation"] != 0
    src = VideoFileSource(str(rotated), rotated.name)
    assert (src.info.width, src.info.height) == displayed_size(rotated)
    assert src.info.rotation == s["rotation"]
    frames = [f.image for f in src]
    want = decoded_as_displayed(rotated, len(frames))
    assert len(frames) == len(want) == 5
    for got, ref in zip(frames, want):
        assert got.shape == ref.shape
        assert np.abs(got.astype(int) - ref).mean() < 2.0
        # not merely the right shape: any other quarter turn or mirror is far off
        others = [np.rot90(ref, k) for k in (1, 2, 3)] + [np.fliplr(ref)]
        assert all(o.shape != got.shape or np.abs(got.astype(int) - o).mean() > 10 for o in others)


@needs_ffmpeg
@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
@pytest.mark.parametrize("hflip", [False, True])
def test_all_eight_orientations_match_ffmpeg(tmp_path, first_frames, degrees, hflip):
    """Display matrices with mirrors (the eight EXIF orientations), written with PyAV, shown as the
    ffmpeg command-line tool shows them."""
    import av

    path = tmp_path / f"o{degrees}{'m' if hflip else ''}.mp4"
    images = [np.ascontiguousarray(f[::8, ::8]) for f in first_frames[:3]]  # 96x72, asymmetric
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
        stream.set_display_rotation(degrees, hflip=hflip)
        for img in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    src = VideoFileSource(str(path), path.name)
    frames = [f.image for f in src]
    want = decoded_as_displayed(path, 3)
    assert (src.info.width, src.info.height) == (want[0].shape[1], want[0].shape[0]) == displayed_size(path)
    assert src.info.mirror == hflip  # a mirror never cancels out with a turn
    for got, ref in zip(frames, want):
        assert got.shape == ref.shape
        assert np.abs(got.astype(int) - ref).mean() < 2.0


def test_orient_array_is_orient_for_any_array_module():
    """The helper live NVDEC uses with CuPy, here with NumPy: the same eight transforms as ``orient``."""
    from streamtrt.sources.orientation import orient_array

    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for rot in (0, 90, 180, 270):
        for mirror in (False, True):
            assert np.array_equal(orient_array(img, rot, mirror, np), orient(img, rot, mirror))


@needs_ffmpeg
@pytest.mark.parametrize("degrees", [0, 90, 270])
@pytest.mark.parametrize("hflip", [False, True])
def test_stream_display_transform_reads_the_matrix_before_any_frame(tmp_path, first_frames, degrees, hflip):
    """What live NVDEC turns by (it never sees a PyAV frame): the transform read by decoding the
    first keyframe once on the CPU is the probe's, and the stream's decoder then decodes every
    frame from that keyframe again."""
    import av

    from streamtrt.sources.orientation import stream_display_transform

    path = tmp_path / f"o{degrees}{'m' if hflip else ''}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
        stream.set_display_rotation(degrees, hflip=hflip)
        for img in first_frames[:6]:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img[::8, ::8]),
                                                                  format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    probed = VideoFileSource(str(path), path.name).info  # checked against ffmpeg above
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "SLICE"
        got, n = None, 0
        for packet in c.demux(s):
            if got is None:
                got = stream_display_transform(s, packet)
            n += len(packet.decode())
    assert got == (probed.rotation, probed.mirror)
    assert n == 6
