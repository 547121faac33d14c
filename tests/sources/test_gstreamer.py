import pytest

from streamtrt.errors import BackendUnavailableError, SourceError
from streamtrt.sources.gstreamer import decode_pipeline, gstreamer_available
from tests.conftest import SAMPLE_CONFIG
from tests.test_cli import assert_one_line_error, streamtrt


@pytest.mark.parametrize("path, codec, parts", [
    ("/v/cam.mp4", "h264", ["filesrc location=/v/cam.mp4", "qtdemux", "h264parse", "nvv4l2decoder", "nvvidconv"]),
    ("/v/cam.mkv", "hevc", ["matroskademux", "h265parse", "nvv4l2decoder"]),
    ("/v/cam.ts", "h264", ["tsdemux", "h264parse"]),
    ("/v/my cam.mp4", "h264", ["filesrc location='/v/my cam.mp4'"]),
])
def test_pipeline_strings(path, codec, parts):
    text = decode_pipeline(path, codec)
    assert all(p in text for p in parts) and text.endswith("video/x-raw,format=BGR ! appsink drop=false sync=false")


def test_software_decoder_variant():
    text = decode_pipeline("/v/a.mp4", "h264", decoder="avdec_h264")
    assert "avdec_h264 ! videoconvert" in text and "nvvidconv" not in text


def test_unsupported_inputs():
    with pytest.raises(SourceError, match="H.264/H.265"):
        decode_pipeline("/v/a.avi", "mpeg4")


@pytest.mark.skipif(gstreamer_available() is None, reason="GStreamer hardware decode is available here")
def test_requesting_gstreamer_where_it_is_missing_is_one_line(short_clip):
    proc = streamtrt("run", SAMPLE_CONFIG, "--source", short_clip, "--set", "runtime.decoder=gstreamer")
    assert_one_line_error(proc, "runtime.decoder gstreamer")
    assert proc.returncode == BackendUnavailableError.exit_code


@pytest.mark.skipif(gstreamer_available() is not None, reason=f"no GStreamer hardware decode here: {gstreamer_available()}")
def test_gstreamer_decodes_every_frame(short_clip):
    from streamtrt.sources.gstreamer import GStreamerFileSource

    frames = list(GStreamerFileSource(str(short_clip), "clip"))
    assert len(frames) == 12 and frames[0].image.shape == (576, 768, 3)
