"""Live-source failures in words: an unknown host, FFmpeg's own timeouts, and inputs that can never
open (a bad format, filter graph or option) fail at once instead of retrying forever."""

from __future__ import annotations

import errno

import av
import pytest

from streamtrt.config import LiveConfig, SourceConfig
from streamtrt.errors import SourceError
from streamtrt.sources.live import FFmpegLiveSource, _stall_is_named
from streamtrt.sources.supervisor import StallError
from streamtrt.sources.uri import parse_source_uri
from tests.conftest import SAMPLE_CONFIG
from tests.test_cli import assert_one_line_error, streamtrt

EXIT = av.error.ExitError(-1414092869, "Immediate exit requested")


def source(uri: str, **sc) -> FFmpegLiveSource:
    return FFmpegLiveSource(parse_source_uri(uri), "0", SourceConfig(uri=uri, **sc), LiveConfig(open_timeout_s=3))


def test_unknown_host_reads_as_such():
    exc = source("rtsp://cam.invalid/stream")._open_failure(av.error.OSError(errno.EIO, "Input/output error", "x"))
    assert str(exc).startswith("cannot resolve host cam.invalid (")  # RFC 6761: .invalid never resolves


def test_ffmpeg_timeouts_read_as_timeouts_and_stalls():
    assert str(source("rtsp://127.0.0.1:9/x")._open_failure(EXIT)) == "no answer within 3 s (open timeout)"

    def packets():
        yield 1
        raise EXIT

    got = _stall_is_named(packets(), 5.0)
    assert next(got) == 1
    with pytest.raises(StallError, match=r"^no frame for 5 s \(stall\)$"):
        next(got)


def test_inputs_that_can_never_open_are_not_retried():
    bad_graph = av.error.ArgumentError(errno.EINVAL, "Invalid argument", "testsrc2=size=abc")
    lavfi = source("ffmpeg://testsrc2=size=abc", format="lavfi")
    assert isinstance(lavfi._open_failure(bad_graph), SourceError)
    missing = source("ffmpeg://testsrc2=size=320x240")._open_failure(
        av.error.FileNotFoundError(errno.ENOENT, "No such file or directory", "testsrc2"))
    assert isinstance(missing, SourceError) and "format lavfi" in str(missing)
    camera = source("rtsp://127.0.0.1:9/x")
    camera.supervisor.connected_once = True  # it worked before: keep trying
    assert not isinstance(camera._open_failure(bad_graph), SourceError)


def test_set_reaches_the_source_given_with_source(tmp_path):
    out = tmp_path / "d.jsonl"
    # live.drop_stale=false: on a busy machine a live source's stale frames are dropped, and the
    # count of records would then depend on the machine's speed
    proc = streamtrt("run", SAMPLE_CONFIG, "--source", "ffmpeg://testsrc2=size=320x240:rate=10", "--set",
                     "sources.0.format=lavfi", "--set", "runtime.max_frames=5", "--set", "live.drop_stale=false",
                     "--sink", f"jsonl:{out}")
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 5


def test_a_filter_graph_without_its_format_fails_at_once(tmp_path):
    proc = streamtrt("run", SAMPLE_CONFIG, "--source", "ffmpeg://testsrc2=size=320x240:rate=10",
                     "--sink", f"jsonl:{tmp_path / 'd.jsonl'}", timeout=120)
    assert_one_line_error(proc, "cannot open", "format lavfi", "not retrying")
    assert proc.returncode == 3


def test_unknown_host_through_the_cli(tmp_path):
    proc = streamtrt("run", SAMPLE_CONFIG, "--source", "rtsp://cam.invalid/stream", "--set", "live.max_reconnects=0",
                     "--sink", f"jsonl:{tmp_path / 'd.jsonl'}", timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "cannot resolve host cam.invalid" in proc.stderr.splitlines()[-1]
    assert "Input/output error" not in proc.stderr
