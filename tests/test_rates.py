"""One fallback frame rate: every place that times a stream without a stated rate uses FALLBACK_FPS
(the annotated video's IMAGES_VIDEO_FPS is the one documented exception)."""

from fractions import Fraction

import pytest

from streamtrt.analytics.clock import StreamClock
from streamtrt.config import FALLBACK_FPS, IMAGES_VIDEO_FPS, TrackerConfig
from streamtrt.sinks.video import video_rate
from streamtrt.track.bytetrack import ByteTracker


def test_the_analytics_clock_and_the_tracker_agree_on_an_unknown_rate():
    clock = StreamClock(None)
    assert clock(int(FALLBACK_FPS) * 2, None) == pytest.approx(2.0)  # two seconds of frames
    assert ByteTracker(TrackerConfig(), 0.35).frame_rate == FALLBACK_FPS


def test_the_video_of_a_sequence_without_a_rate():
    assert video_rate(None) == Fraction(IMAGES_VIDEO_FPS) == Fraction(10)
    assert video_rate(0) == Fraction(10)
    assert video_rate(30000 / 1001) == Fraction(30000, 1001)
