"""The source-kind registry: schemes, bare strings, per-kind options, and a kind added in one place."""

import re

import pytest

from streamtrt.config import SourceConfig
from streamtrt.errors import ConfigError, UnsupportedSourceError
from streamtrt.sources import SOURCES, FrameSource, SourceInfo, SourceKind, SourceStats, open_source, \
    parse_source_uri, register_source_kind
from streamtrt.sources.base import Frame
from streamtrt.sources.options import check_source_options
from streamtrt.sources.registry import SCHEMES
from streamtrt.sources.uri import SourceURI


def test_every_builtin_kind_is_registered_with_its_schemes():
    assert set(SOURCES.names()) == {"file", "images", "rtsp", "http", "v4l2", "ffmpeg", "csi", "gstreamer"}
    assert {s: SCHEMES.lookup(s).name for s in ("rtsp", "rtsps", "https", "gst", "gstreamer", "csi", "ffmpeg")} == {
        "rtsp": "rtsp", "rtsps": "rtsp", "https": "http", "gst": "gstreamer", "gstreamer": "gstreamer",
        "csi": "csi", "ffmpeg": "ffmpeg"}
    assert [k for k in SOURCES.names() if SOURCES.lookup(k).live] == ["rtsp", "http", "v4l2", "ffmpeg", "csi",
                                                                       "gstreamer"]
    assert parse_source_uri("0").kind == "v4l2" and parse_source_uri("clip.mp4").kind == "file"


@pytest.mark.parametrize("source, key, message", [
    ({"uri": "clip.mp4", "options": {"framerate": "10"}}, "options",
     "does not apply to a video file; it applies to csi, ffmpeg, http, rtsp, v4l2 sources (to state a file's "
     "frame rate use fps)"),
    ({"uri": "clip.mp4", "transport": "udp"}, "transport", "does not apply to a video file; it applies to rtsp"),
    ({"uri": "frames/*.png", "format": "mjpeg"}, "format", "does not apply to an image folder or glob"),
    ({"uri": "rtsp://cam/x", "fps": 10}, "fps", "does not apply to a rtsp source; it applies to file, images"),
    ({"uri": "gst://videotestsrc", "orientation": "ignore"}, "orientation", "does not apply to a gstreamer source"),
])
def test_options_the_kind_ignores_are_refused_with_the_key_path(source, key, message):
    sc = SourceConfig.model_construct(**{**_defaults(), **source})  # not validated: the config layer checks nothing here
    with pytest.raises(ConfigError, match="^" + re.escape(f"sources.3.{key}: {message}")):
        check_source_options(sc, "sources.3")


def _defaults():
    return {k: f.get_default(call_default_factory=True) for k, f in SourceConfig.model_fields.items() if k != "uri"}


def test_options_that_apply_or_are_defaults_pass():
    for source in [{"uri": "raw.h264", "fps": 12.5, "orientation": "ignore", "pace": True},
                   {"uri": "rtsp://cam/x", "transport": "udp", "options": {"stimeout": "5"}},
                   {"uri": "csi://0", "options": {"width": "640"}},
                   {"uri": "gst://videotestsrc", "orientation": "auto", "transport": "tcp"}]:
        check_source_options(SourceConfig.model_construct(**{**_defaults(), **source}), "sources.0")


def test_a_new_kind_is_one_registration(tmp_path):
    class Counter(FrameSource):
        kind = "count"

        def __init__(self, n, stream_id):
            self.n, self.info, self.stats = n, SourceInfo(stream_id=stream_id, uri=f"count://{n}"), SourceStats()

        def __iter__(self):
            import numpy as np

            for i in range(self.n):
                self.stats.decoded += 1
                yield Frame(np.zeros((2, 2, 3), np.uint8), i, i / 10)

    register_source_kind(SourceKind("count", lambda uri, stream_id, **kw: Counter(int(uri.location), stream_id),
                                    schemes=("count",), parse=lambda scheme, rest, raw: SourceURI("count", rest, raw)))
    try:
        src = open_source(parse_source_uri("count://3"), "s")
        assert [f.index for f in src] == [0, 1, 2] and src.status() == {} and not src.live
        assert not parse_source_uri("count://3").is_live
    finally:
        SOURCES._entries.pop("count")
        SCHEMES._entries.pop("count")
    with pytest.raises(UnsupportedSourceError, match=r"unsupported source scheme 'count://'.*rtsp://"):
        parse_source_uri("count://3")


def test_frame_says_where_its_image_lives():
    import numpy as np

    assert not Frame(np.zeros((2, 2, 3), np.uint8), 0, 0.0).on_device
