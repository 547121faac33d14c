"""Stop signals through the real command line: SIGTERM, SIGINT and SIGHUP finalise every output
(a playable MP4 with one frame per JSONL line, a summary that says it was interrupted and by what)
and exit with 128 + the signal; SIGINT ignored at start stays ignored; a second signal aborts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_CONFIG
from tests.sources.live_servers import RtspServer, free_port, rtsp_server_missing, write_camera_clip

needs_rtsp = pytest.mark.skipif(bool(rtsp_server_missing()), reason=str(rtsp_server_missing()))


def start(*args, ignore_sigint: bool = False) -> subprocess.Popen:
    def child_setup():
        if ignore_sigint:  # as a shell does for a background job of a script
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen([sys.executable, "-m", "streamtrt", "run", str(SAMPLE_CONFIG), "--no-progress",
                             *map(str, args)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=child_setup)


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    """Wait until ``path`` holds ``count`` complete lines (fails if the process ends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"streamtrt ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"fewer than {count} lines in {path} after {timeout} s")


def probe(path: Path) -> dict:
    """ffprobe's frame count and duration of the first video stream (fails without a moov atom)."""
    proc = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                           "stream=nb_read_frames,duration", "-of", "json", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["streams"][0]


def outputs(tmp_path: Path) -> tuple[Path, Path, Path, list[str]]:
    jsonl, video, summary = tmp_path / "d.jsonl", tmp_path / "a.mp4", tmp_path / "s.json"
    return jsonl, video, summary, ["--sink", f"jsonl:{jsonl}", "--sink", f"video:{video}",
                                   "--sink", f"summary:{summary}"]


def assert_finalised(jsonl: Path, video: Path, summary: Path, reason: str) -> dict:
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]  # every line complete
    info = probe(video)
    assert int(info["nb_read_frames"]) == len(records) > 0
    assert float(info["duration"]) > 0
    s = json.loads(summary.read_text())
    assert s["interrupted"] is True and s["stop_reason"] == reason and s["error"] is None
    assert s["frames"] == len(records)
    return s


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_signal_stops_a_file_run_and_finalises_every_output(tmp_path, sig):
    jsonl, video, summary, sinks = outputs(tmp_path)
    proc = start(*sinks)
    wait_for_lines(jsonl, 10, proc)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, sig), err
    assert "Traceback" not in err and f"stopped by {sig}" in err and "outputs flushed" in err
    s = assert_finalised(jsonl, video, summary, sig)
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame_index"] for r in records] == list(range(len(records))) and len(records) < 795
    assert s["bad_frames"] == 0


def test_sigint_ignored_at_start_stays_ignored_and_sigterm_still_stops(tmp_path):
    jsonl, video, summary, sinks = outputs(tmp_path)
    proc = start(*sinks, ignore_sigint=True)
    wait_for_lines(jsonl, 5, proc)
    proc.send_signal(signal.SIGINT)
    seen = jsonl.read_text().count("\n")
    wait_for_lines(jsonl, seen + 10, proc)  # still running, ten frames later
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert_finalised(jsonl, video, summary, "SIGTERM")


def test_second_signal_aborts_and_still_closes_the_outputs(tmp_path):
    """A webhook on a port nobody listens on never delivers, so a graceful stop would wait the whole
    exit flush (10 s) for it; the second signal cuts that short."""
    jsonl, video, summary, sinks = outputs(tmp_path)
    port = free_port()  # nothing listens there
    proc = start(*sinks, "--sink", f"http://127.0.0.1:{port}/hook?outbox={tmp_path / 'outbox.db'}")
    wait_for_lines(jsonl, 10, proc)
    proc.send_signal(signal.SIGTERM)
    before = []
    for line in proc.stderr:  # the first was handled (a signal sent before that merges with it)
        before.append(line)
        if "SIGTERM: stopping" in line:
            break
    proc.send_signal(signal.SIGINT)  # another signal: a repeat of the first within 1 s counts once
    second = time.monotonic()
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - second
    err = "".join(before) + err
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "aborted by SIGTERM" in err and "still pending" in err
    assert_finalised(jsonl, video, summary, "SIGTERM")
    # the exit flush (10 s for a receiver that never answers) was cut short
    assert took < 10.0, err


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory):
    """20 s at 10 fps, 384x288, a keyframe every second, like an IP camera."""
    return write_camera_clip(tmp_path_factory.mktemp("live") / "camera.mp4", 200)


@needs_rtsp
@pytest.mark.parametrize("sig", ["SIGTERM", pytest.param("SIGINT", marks=pytest.mark.slow),
                                 pytest.param("SIGHUP", marks=pytest.mark.slow)])
def test_signal_stops_a_live_rtsp_run(tmp_path, camera_clip, sig):
    jsonl, video, summary, sinks = outputs(tmp_path)
    with RtspServer(camera_clip) as server:
        proc = start("--source", server.url, *sinks)
        wait_for_lines(jsonl, 10, proc)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + getattr(signal, sig), err
    assert "Traceback" not in err and f"stopped by {sig}" in err
    s = assert_finalised(jsonl, video, summary, sig)
    assert s["streams"]["0"]["live"] is True


def test_a_repeated_signal_at_once_counts_once_and_another_one_aborts():
    """``timeout`` sends SIGTERM to the process and to its group: two at once are one request."""
    from streamtrt.signals import StopSignals

    calls = []
    sig = StopSignals()
    sig.attach(lambda n: calls.append(("stop", n)), lambda n: calls.append(("abort", n)))
    sig._handle(signal.SIGTERM, None)
    sig._handle(signal.SIGTERM, None)
    assert calls == [("stop", "SIGTERM")] and sig.exit_code == 143
    sig._handle(signal.SIGINT, None)
    assert calls[-1] == ("abort", "SIGINT") and sig.exit_code == 143


def test_a_signal_before_the_pipeline_exists_exits_with_its_status():
    from streamtrt.signals import SignalInterrupt, StopSignals

    with pytest.raises(SignalInterrupt) as info:
        StopSignals()._handle(signal.SIGHUP, None)
    assert info.value.exit_code == 129
