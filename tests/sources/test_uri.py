import pytest

from streamtrt.errors import SourceError, UnsupportedSourceError
from streamtrt.redact import redact
from streamtrt.sources.uri import parse_source_uri


@pytest.mark.parametrize(
    "text, kind, location",
    [
        ("video.mp4", "file", "video.mp4"),
        ("file:///data/cam 1.mkv", "file", "/data/cam 1.mkv"),
        ("file:///data/cam%201.mkv", "file", "/data/cam 1.mkv"),
        ("frames/*.jpg", "images", "frames/*.jpg"),
        ("still.png", "images", "still.png"),
        ("rtsp://user:pw@10.0.0.2:554/stream1", "rtsp", "rtsp://user:pw@10.0.0.2:554/stream1"),
        ("https://example.com/live.m3u8", "http", "https://example.com/live.m3u8"),
        ("v4l2:///dev/video2", "v4l2", "/dev/video2"),
        ("/dev/video0", "v4l2", "/dev/video0"),
        ("1", "v4l2", "/dev/video1"),
        ("csi://0", "csi", "0"),
    ],
)
def test_parse(text, kind, location):
    uri = parse_source_uri(text)
    assert (uri.kind, uri.location) == (kind, location)


def test_folder_is_images(tmp_path):
    assert parse_source_uri(str(tmp_path)).kind == "images"


def test_unsupported_scheme_names_it():
    with pytest.raises(UnsupportedSourceError, match=r"unsupported source scheme 'ftp://'"):
        parse_source_uri("ftp://host/video.mp4")


def test_unsupported_scheme_message_hides_credentials():
    with pytest.raises(UnsupportedSourceError) as info:
        parse_source_uri("smb://admin:secret@nas/video.mp4")
    assert "secret" not in str(info.value)


def test_empty_source():
    with pytest.raises(SourceError):
        parse_source_uri("  ")


def test_live_flag_and_redaction():
    uri = parse_source_uri("rtsp://admin:hunter2@cam.local/stream")
    assert uri.is_live
    assert uri.display == "rtsp://***@cam.local/stream"
    assert "hunter2" not in str(uri)
    assert not parse_source_uri("a.mp4").is_live


def test_redact_in_free_text():
    text = "failed rtsp://u:p@h/a and http://x:y@z/b twice"
    assert redact(text) == "failed rtsp://***@h/a and http://***@z/b twice"
