"""Live sources against real servers: GStreamer's RTSP server (killed and restarted mid-stream,
never started, serving corrupt data) and an MJPEG HTTP server slower or faster than declared."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

from streamtrt import Pipeline
from streamtrt.runtime.servers import serve
from tests.conftest import ROOT, SAMPLES, decode_frames, make_config
from tests.sources.live_servers import MjpegServer, RtspServer, free_port, rtsp_server_missing, write_camera_clip

needs_rtsp = pytest.mark.skipif(bool(rtsp_server_missing()), reason=str(rtsp_server_missing()))
FAST_RECONNECT = {"reconnect_initial_s": 0.2, "reconnect_max_s": 0.5, "stall_timeout_s": 2.0, "open_timeout_s": 3.0}


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory):
    """30 s of the sample at 10 fps, half size, a keyframe every second (like an IP camera)."""
    return write_camera_clip(tmp_path_factory.mktemp("live") / "camera.mp4", 300)


def live_config(uri, tmp_path, supervision=None, **source):
    cfg = make_config("unused", tmp_path)
    del cfg["source"]
    cfg["sources"] = [{"uri": uri, "id": "cam", **source}]
    cfg["live"] = {**FAST_RECONNECT, **(supervision or {})}
    return cfg


def run_until(cfg: dict, count: int, limit_s: float = 120.0):
    """Run a live pipeline until ``count`` results have arrived (or ``limit_s`` passed: then the
    caller's count assertion fails), then stop it gracefully; (pipeline, the first ``count``
    results, wall seconds). The batches in flight at the stop still arrive, and are left out."""
    pipe = Pipeline.from_config(cfg)
    results = []
    watchdog = threading.Timer(limit_s, pipe.stop)
    watchdog.start()
    t0 = time.monotonic()
    try:
        with pipe:
            for r in pipe:
                results.append(r)
                if len(results) == count:
                    pipe.stop()
    finally:
        watchdog.cancel()
    return pipe, results[:count], time.monotonic() - t0


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("streamtrt-")]


@needs_rtsp
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_normal_run(camera_clip, tmp_path, transport):
    # Every frame, however busy the machine: the queue policy that keeps them (the default drops
    # stale frames when inference falls behind; test_mjpeg_faster_than_inference_drops_stale_frames).
    with RtspServer(camera_clip) as server:
        cfg = live_config(server.url, tmp_path, supervision={"drop_stale": False}, transport=transport)
        cfg["runtime"]["max_frames"] = 25
        t0 = time.monotonic()
        with Pipeline.from_config(cfg) as pipe:
            results = list(pipe)
        wall = time.monotonic() - t0
    assert [r.frame_index for r in results] == list(range(25))
    assert pipe.summary.streams["cam"]["dropped"] == 0
    assert (results[0].width, results[0].height) == (384, 288)
    ts = [r.timestamp for r in results]
    # real time: the server sends one frame per 0.1 s, and a timestamp is when the frame came
    assert ts == sorted(ts) and 1.5 < ts[-1] - ts[0] <= wall
    assert sum(len(r.detections) for r in results) > 0
    assert pipe.summary.streams["cam"]["reconnects"] == 0


@needs_rtsp
@pytest.mark.slow
def test_rtsp_server_killed_and_restarted_three_times(camera_clip, tmp_path):
    server = RtspServer(camera_clip)
    server.start()
    threads_before, fds_before = set(live_threads()), fd_count()
    cfg = live_config(server.url, tmp_path)
    pipe = Pipeline.from_config(cfg)
    arrivals: list[float] = []
    returns: list[float] = []
    errors: list[BaseException] = []

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 120
        while len(arrivals) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(arrivals)} results, waited for {count}")
            time.sleep(0.05)

    def chaos():
        try:
            for _ in range(3):
                wait_for(5 + 10 * len(returns))
                server.kill()
                time.sleep(1.5)  # down for a while: the client fails, backs off, retries
                returns.append(server.start())
            wait_for(len(arrivals) + 5)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            pipe.stop()

    t = threading.Thread(target=chaos)
    t.start()
    started = time.monotonic()
    try:
        for _ in pipe:
            arrivals.append(time.monotonic())
    finally:
        t.join(30)
        server.kill()
        pipe.close()
    assert not errors
    assert len(returns) == 3
    # A reconnect takes no longer than the first connection did (connect, wait for a keyframe,
    # infer: as slow as this machine is) plus the longest backoff.
    bound = max(2.0, 2 * (arrivals[0] - started) + FAST_RECONNECT["reconnect_max_s"])
    for back in returns:
        first_after = min(a for a in arrivals if a > back)
        assert first_after - back < bound, f"resumed {first_after - back:.2f} s after the server returned"
    status = pipe.summary.streams["cam"]
    assert status["reconnects"] == 3
    assert status["frames_lost"] >= 3 * 10  # 1.5 s down at 10 fps, each time
    time.sleep(0.3)
    assert set(live_threads()) <= threads_before
    assert fd_count() <= fds_before + 2


def test_server_that_never_comes_up_backs_off_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    cfg_path = tmp_path / "live.yaml"
    cfg = live_config(f"rtsp://admin:hunter2@127.0.0.1:{port}/cam", tmp_path)
    cfg_path.write_text(json.dumps(cfg))
    proc = subprocess.Popen([sys.executable, "-m", "streamtrt", "run", str(cfg_path), "--progress",
                             "--status-interval", "0.3"], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("reconnecting" in l and "cam" in l for l in lines):
        time.sleep(0.1)
    time.sleep(1.5)  # a few attempts
    proc.send_signal(signal.SIGINT)
    code = proc.wait(60)  # it would retry forever otherwise
    reader.join(5)
    text = "".join(lines)
    assert code == 130, text
    assert "Traceback" not in text
    assert "hunter2" not in text  # credentials never printed
    assert "rtsp://***@127.0.0.1" in text
    assert "reconnecting in" in text and "refused" in text.lower()
    assert "cam reconnecting" in text  # the status line names the stream and its state


@needs_rtsp
@pytest.mark.slow
def test_corrupt_stream_data_is_survived(camera_clip, tmp_path):
    data = bytearray(camera_clip.read_bytes())
    rng = np.random.default_rng(3)
    start = len(data) // 4
    for pos in rng.integers(start, len(data) - 1000, 60):  # damage scattered through the stream
        data[pos:pos + 200] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))
    with RtspServer(corrupt) as server:
        cfg = live_config(server.url, tmp_path)  # stale frames dropped: stream time runs as fast as the clock
        pipe = Pipeline.from_config(cfg)
        seen, times = [], []
        watchdog = threading.Timer(120.0, pipe.stop)
        watchdog.start()
        try:
            for r in pipe:
                seen.append(r.frame_index)
                times.append(r.timestamp)
                if r.timestamp >= 12.0:  # past the first damage, at a quarter of the clip (7.5 s)
                    pipe.stop()
        finally:
            watchdog.cancel()
            pipe.close()
    # frames kept flowing past the damage (or after a reconnect)
    assert times[-1] >= 12.0 and sum(t > 7.5 for t in times) >= 3
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


@pytest.fixture(scope="module")
def mjpeg_frames():
    return [np.ascontiguousarray(f[::2, ::2]) for f in decode_frames(SAMPLES / "vtest.mp4", 20)]


def test_mjpeg_slower_than_declared_is_not_a_stall(tmp_path, mjpeg_frames):
    """FFmpeg assumes 25 fps for MJPEG; this camera sends 4 fps. Nothing is lost or reconnected."""
    with MjpegServer(mjpeg_frames, fps=4) as server:
        cfg = live_config(server.url, tmp_path, supervision={"stall_timeout_s": 2.0, "drop_stale": False})
        pipe, results, wall = run_until(cfg, 12)
    assert [r.frame_index for r in results] == list(range(12))
    status = pipe.summary.streams["cam"]
    assert status["dropped"] == 0 and status["reconnects"] == 0
    ts = [r.timestamp for r in results]
    # timestamps follow arrival (0.25 s apart, or later when inference is slower), not the
    # declared 25 fps (0.04 s), and never run ahead of the clock
    assert np.median(np.diff(ts)) > 0.2 and ts[-1] - ts[0] <= wall


def test_a_consumer_that_holds_back_a_kept_stream_is_not_a_stall(tmp_path, mjpeg_frames):
    """With every frame kept (drop_stale false), a full lane blocks the reader: back-pressure,
    not a camera that stopped sending, so no reconnect and no frame lost."""
    with MjpegServer(mjpeg_frames, fps=10) as server:
        cfg = live_config(server.url, tmp_path, supervision={"stall_timeout_s": 1.0, "drop_stale": False})
        pipe = Pipeline.from_config(cfg)
        results = []
        watchdog = threading.Timer(120.0, pipe.stop)
        watchdog.start()
        try:
            with pipe:
                for r in pipe:
                    results.append(r.frame_index)
                    if len(results) == 3:
                        time.sleep(3.0)  # every queue fills; the reader waits far past the stall timeout
                    if len(results) == 20:
                        pipe.stop()
        finally:
            watchdog.cancel()
    assert results[:20] == list(range(20))
    assert pipe.summary.streams["cam"]["reconnects"] == 0 and pipe.summary.streams["cam"]["dropped"] == 0


def test_mjpeg_faster_than_inference_drops_stale_frames(tmp_path, mjpeg_frames):
    """A 150 fps camera outruns CPU inference: stale frames are dropped, latency stays bounded."""
    with MjpegServer(mjpeg_frames, fps=150) as server:
        cfg = live_config(server.url, tmp_path)
        pipe, results, _ = run_until(cfg, 40)
    status = pipe.summary.streams["cam"]
    assert len(results) == 40
    assert status["dropped"] > len(results)  # most frames were stale by the time inference was free
    # No queue building up: latency stays within a few frames' work, however long this machine
    # takes for one (with a growing queue, result k would wait for the k before it).
    per_frame_ms = sum(st.ms_per_frame for st in pipe.summary.stages.values())
    late = [r.latency_ms for r in results[len(results) // 2:]]
    assert max(late) < 20 * per_frame_ms, (late, per_frame_ms)


def test_queue_policy_keeps_every_frame_of_a_live_source(tmp_path, mjpeg_frames):
    """With drop_stale off, a burst faster than inference queues up instead (and is all processed)."""
    with MjpegServer(mjpeg_frames, fps=100, count=60) as server:
        cfg = live_config(server.url, tmp_path, supervision={"drop_stale": False})
        pipe, results, _ = run_until(cfg, 60)
    assert [r.frame_index for r in results] == list(range(60))
    assert pipe.summary.streams["cam"]["dropped"] == 0


def test_ffmpeg_escape_hatch_and_missing_camera(tmp_path):
    cfg = live_config("ffmpeg://testsrc2=size=320x240:rate=25", tmp_path, format="lavfi", live=False)
    cfg["runtime"]["max_frames"] = 8
    with Pipeline.from_config(cfg) as pipe:
        results = list(pipe)
    assert len(results) == 8 and (results[0].width, results[0].height) == (320, 240)

    cfg = live_config("v4l2:///dev/video97", tmp_path, supervision={"max_reconnects": 1})
    from streamtrt.errors import PipelineError, SourceError

    with pytest.raises((SourceError, PipelineError), match=r"/dev/video97.*gave up after 2 failed connection attempts"):
        with Pipeline.from_config(cfg) as pipe:
            list(pipe)


def test_credentials_never_leak(tmp_path, caplog):
    """Status, metrics, the summary, logs and errors show the URI with its credentials hidden."""
    port = free_port()
    cfg = live_config(f"rtsp://admin:hunter2@127.0.0.1:{port}/cam", tmp_path,
                      supervision={"max_reconnects": 12, "reconnect_initial_s": 0.3, "reconnect_max_s": 0.6})
    cfg["metrics"] = {"enabled": True, "port": 0}
    cfg["sinks"] = [f"summary:{tmp_path / 's.json'}", f"jsonl:{tmp_path / 'd.jsonl'}"]
    pipe = Pipeline.from_config(cfg)
    seen: dict[str, str] = {}
    ready = threading.Event()
    address = {}

    def scrape():
        ready.wait(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(s["state"] == "reconnecting" for s in pipe.stream_status()):
            time.sleep(0.05)  # then scraped while it retries (12 attempts: ~6 s of backoff in all)
        seen["status"] = json.dumps(pipe.stream_status())
        url = "http://%s:%d/metrics" % address["metrics"][:2]
        seen["metrics"] = urllib.request.urlopen(url, timeout=5).read().decode()

    t = threading.Thread(target=scrape)
    t.start()
    with pytest.raises(Exception) as err:
        with pipe, serve(pipe, pipe.config) as servers:
            address["metrics"] = servers.metrics.address
            ready.set()
            list(pipe)
    ready.set()
    t.join()
    texts = [str(err.value), seen.get("status", ""), seen.get("metrics", ""), caplog.text,
             (tmp_path / "s.json").read_text(), pipe.summary.format()]
    assert "rtsp://***@127.0.0.1" in str(err.value)
    for text in texts:
        assert "hunter2" not in text and "admin:" not in text
    assert "rtsp://***@" in seen["status"]
    from prometheus_client.parser import text_string_to_metric_families

    up = [(s.labels, s.value) for f in text_string_to_metric_families(seen["metrics"]) for s in f.samples
          if s.name == "streamtrt_stream_up"]
    assert up == [({"stream": "cam", "state": "reconnecting"}, 0)]


def test_control_endpoint_adds_and_removes_streams(tmp_path, camera_clip):
    cfg = make_config(camera_clip, tmp_path, runtime={"max_frames": 400})
    cfg["sources"] = [{"uri": str(camera_clip), "id": "a", "pace": True}]
    del cfg["source"]
    cfg["control"] = {"enabled": True, "port": 0}
    pipe = Pipeline.from_config(cfg)
    seen: dict[str, int] = {}
    replies: dict[str, object] = {}
    address: dict[str, tuple] = {}

    def call(method, path, body=None):
        host, port = address["control"][:2]
        req = urllib.request.Request(f"http://{host}:{port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def wait(condition):
        deadline = time.monotonic() + 120
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    def drive():
        try:
            wait(lambda: "control" in address and seen.get("a"))
            assert address["control"][0] == "127.0.0.1"
            replies["add"] = call("POST", "/streams", {"uri": str(camera_clip), "id": "b", "pace": True})
            replies["dup"] = call("POST", "/streams", {"uri": str(camera_clip), "id": "b"})
            replies["bad"] = call("POST", "/streams", {"uri": "nope://x"})
            replies["unknown"] = call("POST", "/streams", {"uri": str(camera_clip), "bogus": 1})
            wait(lambda: seen.get("b", 0) >= 5)
            replies["list"] = call("GET", "/streams")
            replies["del"] = call("DELETE", "/streams/a")
            replies["del404"] = call("DELETE", "/streams/zzz")
            replies["del_b"] = call("DELETE", "/streams/b")
            time.sleep(0.5)
        finally:
            pipe.stop()

    t = threading.Thread(target=drive)
    t.start()
    with pipe, serve(pipe, pipe.config) as servers:
        address["control"] = servers.control.address
        for r in pipe:
            seen[r.stream_id] = seen.get(r.stream_id, 0) + 1
    t.join(10)
    assert replies["add"] == (201, {"id": "b"})
    assert replies["dup"][0] == 409
    assert replies["bad"][0] == 400 and "unsupported source scheme" in replies["bad"][1]["error"]
    assert replies["unknown"][0] == 400 and "unknown key 'bogus'" in replies["unknown"][1]["error"]
    assert {s["id"]: s["state"] for s in replies["list"][1]} == {"a": "running", "b": "running"}
    assert replies["del"][0] == 200 and replies["del404"][0] == 404
    assert seen["b"] >= 5 and pipe.summary.streams["a"]["state"] == "removed"
