"""Decoded frames to BGR images: the same pixels as PyAV's own conversion, and nothing kept alive.

Seen on soak runs: every decoded frame got its own swscale context (and its pool of slice threads,
one per core) and, through ``frame.side_data``, a reference cycle that kept the frame, its pixels
and those threads alive until Python's cyclic collector ran. The thread count of a 16-core GPU
machine swung between 168 and 1,083, and resident memory crept.
"""

import gc
import os
import sys

import av
import numpy as np
import pytest

from streamtrt.config import LiveConfig, SourceConfig
from streamtrt.sources import VideoFileSource, parse_source_uri
from streamtrt.sources.live import FFmpegLiveSource
from streamtrt.sources.orientation import frame_rotation, orient
from streamtrt.sources.pixels import BgrFrames
from tests.ffmpeg_tools import CASES, needs_ffmpeg

PHONE = CASES / "phone_portrait_rotate90.mp4"  # stored sideways, with a 90-degree display matrix


def _held_frames() -> int:
    """PyAV video frames alive in this process (they are tracked by the cyclic collector)."""
    return sum(1 for o in gc.get_objects() if isinstance(o, av.VideoFrame))


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_bgr_frames_are_pyav_bgr24_turned_by_the_display_matrix():
    with av.open(str(PHONE)) as container:
        to_bgr = BgrFrames(turn=True)
        for i, vframe in enumerate(container.decode(video=0)):
            want = orient(vframe.to_ndarray(format="bgr24"), *frame_rotation(vframe))
            got = to_bgr(vframe)
            assert got.dtype == np.uint8 and np.array_equal(got, want)
            assert (to_bgr.rotation, to_bgr.mirror) == frame_rotation(vframe) == (90, False)
            if i == 5:
                break
    with av.open(str(PHONE)) as container:
        vframe = next(container.decode(video=0))
        as_stored = BgrFrames(turn=False)
        assert np.array_equal(as_stored(vframe), vframe.to_ndarray(format="bgr24"))
        assert (as_stored.rotation, as_stored.mirror) == (0, False)


def _decode_with_gc_off(frames, n: int) -> tuple[int, int, int]:
    """(frames held, threads added, most threads added) after pulling ``n`` frames with the cyclic
    collector off: anything that only the collector frees stays and is counted."""
    linux = sys.platform.startswith("linux")
    gc.collect()
    held0, threads0 = _held_frames(), _threads() if linux else 0
    most = 0
    gc.disable()
    try:
        it = iter(frames)
        for i in range(n):
            next(it)
            if linux and i % 10 == 0:
                most = max(most, _threads() - threads0)
        return _held_frames() - held0, (_threads() - threads0) if linux else 0, most
    finally:
        gc.enable()


@needs_ffmpeg
def test_a_live_source_keeps_no_decoded_frame_or_scaler_thread_alive(tmp_path):
    """200 frames of a live FFmpeg input, orientation auto, with the cyclic collector off: before
    the fix, 200 frames were held (each with its scaler's threads)."""
    sc = SourceConfig(uri="ffmpeg://testsrc2=size=320x240:rate=25", format="lavfi")
    src = FFmpegLiveSource(parse_source_uri(sc.uri), "cam", sc, LiveConfig())
    try:
        held, added, most = _decode_with_gc_off((f.image for f in src), 200)
    finally:
        src.close()
    assert held <= 4, held
    # the decoder's threads and one scaler's, made once: not a pool per frame
    assert most <= 2 * (os.cpu_count() or 1) + 8, most


@needs_ffmpeg
def test_a_file_source_keeps_no_decoded_frame_alive():
    src = VideoFileSource(str(PHONE), PHONE.name)
    try:
        held, _, _ = _decode_with_gc_off((f.image for f in src), 40)
    finally:
        src.close()
    assert held <= 4, held
