"""MQTT, webhooks, the durable outbox, schemas and filters, against real servers (metrics: tests/runtime/test_metrics.py)."""

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from streamtrt import Pipeline
from streamtrt.config import load_config
from streamtrt.errors import ConfigError, SinkError
from streamtrt.retry import Backoff
from streamtrt.sinks import open_sink
from streamtrt.sinks.outbox import Outbox
from streamtrt.sinks.schema import EVENT_SCHEMA, FRAME_SCHEMA
from tests.conftest import ROOT, SAMPLE_CONFIG, make_config, wait_for
from tests.sinks.servers import MOSQUITTO, Broker, Subscriber, Webhook
from tests.test_cli import assert_one_line_error, streamtrt

needs_broker = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (.ci/run installs it)")


def pipeline_cfg(source, tmp_path, sinks, **runtime):
    cfg = make_config(source, tmp_path, sinks=sinks, runtime=runtime)
    return load_config(cfg)


# -- outbox -------------------------------------------------------------------------------------
def test_outbox_is_durable_ordered_and_bounded(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", max_records=5)
    for i in range(8):
        box.put(f"m{i}", f"payload {i}".encode())
    assert box.dropped == 3 and box.pending() == 5
    rows = box.peek(2)
    assert [m for _, m, _ in rows] == ["m3", "m4"]  # the oldest were dropped to make room
    box.ack([seq for seq, _, _ in rows])
    box.close()
    again = Outbox(tmp_path / "o.sqlite")  # a new process sees what is still pending
    assert [m for _, m, _ in again.peek(10)] == ["m5", "m6", "m7"]


# -- schema, filters, CSV -----------------------------------------------------------------------
@pytest.mark.slow
def test_records_validate_against_the_versioned_schemas(tmp_path):
    out = tmp_path / "d.jsonl"
    cfg = load_config(ROOT / "configs" / "sample-tracking.yaml",
                      ["runtime.max_frames=150", f"sinks=[jsonl:{out}]", "runtime.decoder=cpu",
                       "runtime.runner=onnxruntime-cpu"])
    with Pipeline(cfg) as pipe:
        pipe.run()
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    frames = [l for l in lines if l["schema"] == FRAME_SCHEMA["$id"]]
    events = [l for l in lines if l["schema"] == EVENT_SCHEMA["$id"]]
    assert len(frames) == 150 and events
    for record in frames:
        jsonschema.validate(record, FRAME_SCHEMA)
    for record in events:
        jsonschema.validate(record, EVENT_SCHEMA)
    assert len({l["message_id"] for l in lines}) == len(lines)


def test_per_sink_filters(tmp_path, short_clip):
    people, cars, other = tmp_path / "p.jsonl", tmp_path / "c.csv", tmp_path / "o.jsonl"
    cfg = pipeline_cfg(short_clip, tmp_path, [f"jsonl:{people}?classes=person&min_score=0.6",
                                              f"csv:{cars}?classes=car,truck", f"jsonl:{other}?streams=0"])
    with Pipeline(cfg) as pipe:
        pipe.run()
    dets = [d for l in people.read_text().splitlines() for d in json.loads(l)["detections"]]
    assert dets and all(d["class_name"] == "person" and d["score"] >= 0.6 for d in dets)
    rows = cars.read_text().splitlines()
    assert rows[0].startswith("stream_id,frame_index,timestamp,class_id,class_name,score,x1")
    assert len(rows) > 1 and all(r.split(",")[4] in ("car", "truck") for r in rows[1:])
    assert len(other.read_text().splitlines()) == len(people.read_text().splitlines())  # stream "0": every frame
    # a stream that is not configured: a config error (exit 2), before any sink is opened
    with pytest.raises(ConfigError, match=r"sinks\.0 \(\?streams=\): unknown stream 'cam9'"):
        Pipeline(pipeline_cfg(short_clip, tmp_path, [f"jsonl:{tmp_path / 'x.jsonl'}?streams=cam9"]))
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(SinkError, match="unknown option"):
        open_sink(f"jsonl:{people}?clases=person")


def test_malformed_network_uris():
    for uri, message in [("mqtt://:1883/topic", "missing broker host"), ("mqtt://host:1883/", "need a topic"),
                         ("mqtt://host:1883/a/#", "without wildcards"), ("mqtt://host:99999/t", "invalid port")]:
        with pytest.raises(SinkError, match=message):
            open_sink(uri)
    assert_one_line_error(streamtrt("run", SAMPLE_CONFIG, "--sink", "mqtt://broker:1883/"), "need a topic")


# -- MQTT ---------------------------------------------------------------------------------------
@needs_broker
@pytest.mark.slow
def test_broker_down_for_30_s_loses_nothing(tmp_path):
    broker = Broker(tmp_path)
    broker.start()
    sub = Subscriber(broker.port, "cam/dets")
    outbox = tmp_path / "outbox.sqlite"
    cfg = pipeline_cfg(ROOT / "samples" / "vtest.mp4", tmp_path,
                       [f"mqtt://127.0.0.1:{broker.port}/cam/dets?outbox={outbox}"], max_frames=500)
    pipe = Pipeline(cfg)
    sink = pipe.sinks[0]
    sink.drain_s = 60
    runner = threading.Thread(target=pipe.run)
    runner.start()
    while pipe.summary.frames < 40:
        time.sleep(0.05)
    broker.stop()
    time.sleep(30)
    assert wait_for(lambda: pipe.summary.frames > 100, 300)  # the pipeline went on (at this machine's pace)
    assert sink.pending() > 0  # records waited
    broker.start()
    runner.join(600)
    assert not runner.is_alive()
    deadline = time.time() + 30
    while len(sub.ids()) < pipe.summary.frames and time.time() < deadline:
        time.sleep(0.2)
    sub.close()
    broker.stop()
    ids = sub.ids()  # after dedup by id
    assert len(ids) == pipe.summary.frames == 500
    assert ids == {f"{pipe.run_id}:0:{i}" for i in range(500)}


def paced_config(tmp_path, frames: int, sinks: list[str]) -> Path:
    """The sample clip replayed at its 10 fps like a camera, ``frames`` frames: a run of frames/10 s."""
    cfg = make_config(ROOT / "samples" / "vtest.mp4", tmp_path, sinks=sinks, runtime={"max_frames": frames})
    cfg["sources"] = [{"uri": cfg.pop("source"), "pace": True}]
    path = tmp_path / "paced.yaml"
    path.write_text(json.dumps(cfg))
    return path


def jsonl_ids(path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(l)["message_id"] for l in path.read_text().splitlines() if l.strip().endswith("}")}


@needs_broker
@pytest.mark.slow
def test_broker_down_8_s_in_a_12_s_run_every_record_arrives_before_exit(tmp_path):
    """Seen: with the broker down from second 3 to 11 of a 12 s run, 226 of 250 records were left
    in the outbox at exit, the reconnect backoff having grown past the exit flush."""
    broker = Broker(tmp_path)
    broker.start()
    sub = Subscriber(broker.port, "cam/dets")
    jsonl = tmp_path / "d.jsonl"
    config = paced_config(tmp_path, 120, [f"mqtt://127.0.0.1:{broker.port}/cam/dets?outbox={tmp_path / 'o.sqlite'}",
                                          f"jsonl:{jsonl}"])
    run = subprocess.Popen([sys.executable, "-m", "streamtrt", "run", str(config)], cwd=ROOT,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while len(jsonl_ids(jsonl)) < 30 and time.time() < deadline and run.poll() is None:
            time.sleep(0.05)
        broker.stop()  # about second 3 of the run
        time.sleep(8)
        assert run.poll() is None  # the run went on meanwhile
        broker.start()
        _, stderr = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr
    assert "still pending" not in stderr, stderr
    written = jsonl_ids(jsonl)
    assert len([i for i in written if i.count(":") == 2]) == 120  # 120 frame records, plus events
    deadline = time.time() + 20  # acknowledged by the broker before exit; the subscriber may lag
    while not written <= sub.ids() and time.time() < deadline:
        time.sleep(0.2)
    got = sub.ids()
    sub.close()
    broker.stop()
    assert written <= got


class Record:
    def __init__(self, i: int):
        self.i = i

    def to_record(self) -> dict:
        return {"message_id": f"r{self.i}", "i": self.i}


@pytest.mark.slow
def test_records_flow_soon_after_the_receiver_returns_whatever_the_backoff(tmp_path):
    """The backoff may have grown to many seconds; a receiver's return cuts it short: records flow
    within about 2 s (bound 5 s), for MQTT (the client reconnects) and webhooks (a TCP probe)."""
    from tests.sinks.servers import free_port

    cases = []
    if MOSQUITTO is not None:
        broker = Broker(tmp_path)
        cases.append(("mqtt", f"mqtt://127.0.0.1:{broker.port}/t?outbox={tmp_path / 'm.sqlite'}&drain=0", broker))
    port = free_port()
    cases.append(("webhook", f"http://127.0.0.1:{port}/hook?outbox={tmp_path / 'w.sqlite'}&drain=0", port))
    for kind, uri, server in cases:
        sink = open_sink(uri)
        sink.backoff = Backoff(60.0, 120.0)  # the next retry would come 30-60 s after a failure
        sink.open(None)
        try:
            for i in range(20):
                sink.write_event(Record(i))
            assert wait_for(lambda: sink.failures >= 1, 30)  # it tried, failed, and now backs off
            time.sleep(1.5)
            assert sink.pending() == 20
            if kind == "mqtt":
                server.start()
                received = Subscriber(server.port, "t").ids
            else:
                hook = Webhook(port=server)
                received = lambda: {r["message_id"] for r in hook.records()}  # noqa: E731
            back = time.monotonic()
            assert wait_for(lambda: sink.pending() == 0, 5.0), (kind, sink.pending(), sink.last_error)
            assert time.monotonic() - back < 5.0
            assert wait_for(lambda: len(received()) == 20, 10.0), kind
        finally:
            sink.close()
            if kind == "mqtt":
                server.stop()
            else:
                hook.close()


def test_an_outbox_has_one_owner_at_a_time(tmp_path, short_clip):
    """Seen: two runs with the same sink URI shared the default outbox and reported
    "-1 records still pending". Now the second run stops with a clear error (exit 7)."""
    from tests.sinks.servers import free_port

    path = tmp_path / "shared.sqlite"
    first = Outbox(path)
    with pytest.raises(SinkError, match=r"in use by another streamtrt process .*\?outbox=PATH"):
        Outbox(path)
    proc = streamtrt("run", SAMPLE_CONFIG, "--source", short_clip, "--sink",
                     f"mqtt://127.0.0.1:{free_port()}/t?outbox={path}&drain=0")
    assert proc.returncode == 7, proc.stderr
    assert_one_line_error(proc, str(path), f"(pid {os.getpid()})", "?outbox=PATH")
    first.close()
    Outbox(path).close()  # released: the next owner may take it


def test_outbox_counts_are_never_negative(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.put("a", b"1")
    rows = box.peek(5)
    box.ack([seq for seq, _, _ in rows])
    box.ack([seq for seq, _, _ in rows])  # acknowledged twice (a retry after a lost reply)
    assert box.pending() == 0
    box.close()


def test_drain_option_and_config_default(tmp_path):
    from streamtrt.config import DeliveryConfig

    assert open_sink("mqtt://h:1883/t").drain_s == DeliveryConfig().drain_s == 10.0
    assert open_sink("mqtt://h:1883/t?drain=30").drain_s == 30.0
    assert open_sink("http://h/x?drain=0").drain_s == 0.0
    assert open_sink("mqtt://h:1883/t", DeliveryConfig(drain_s=4)).drain_s == 4.0
    assert open_sink("mqtt://h:1883/t?drain=2", DeliveryConfig(drain_s=4)).drain_s == 2.0
    for bad in ("mqtt://h:1883/t?drain=-1", "mqtt://h:1883/t?drain=soon"):
        with pytest.raises(SinkError, match="drain must be a number of seconds"):
            open_sink(bad)
    cfg = load_config(make_config(ROOT / "samples" / "vtest.mp4", tmp_path, sinks=["mqtt://h:1883/t"]),
                      ["delivery.drain_s=25"])
    assert Pipeline(cfg).sinks[0].drain_s == 25.0


@needs_broker
@pytest.mark.slow
def test_killed_process_leaves_records_that_the_next_run_delivers(tmp_path, short_clip):
    broker = Broker(tmp_path)  # not started: the first process cannot deliver
    outbox = tmp_path / "outbox.sqlite"
    jsonl = tmp_path / "d.jsonl"
    sink = f"mqtt://127.0.0.1:{broker.port}/cam/dets?outbox={outbox}"
    first = subprocess.Popen([sys.executable, "-m", "streamtrt", "run", str(SAMPLE_CONFIG), "--sink", sink,
                              "--sink", f"jsonl:{jsonl}"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and (not jsonl.exists() or len(jsonl.read_text().splitlines()) < 40):
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    written = {json.loads(l)["message_id"] for l in jsonl.read_text().splitlines() if l.strip().endswith("}")}
    assert len(written) >= 40
    broker.start()
    sub = Subscriber(broker.port, "cam/dets")
    second = streamtrt("run", SAMPLE_CONFIG, "--source", short_clip, "--sink", sink, "--set", "runtime.max_frames=2")
    assert second.returncode == 0, second.stderr
    assert "pending; sending them first" in second.stderr
    deadline = time.time() + 20
    while not written <= sub.ids() and time.time() < deadline:
        time.sleep(0.2)
    got = sub.ids()
    sub.close()
    broker.stop()
    assert written <= got  # every frame the killed process had written arrived
    assert Outbox(outbox).pending() == 0


@needs_broker
@pytest.mark.slow
def test_wrong_credentials_are_one_clear_line(tmp_path, short_clip, monkeypatch):
    broker = Broker(tmp_path, users={"cam": "right"})
    broker.start()
    try:
        env = dict(os.environ, STREAMTRT_MQTT_USERNAME="cam", STREAMTRT_MQTT_PASSWORD="wrong")
        proc = subprocess.run([sys.executable, "-m", "streamtrt", "run", str(SAMPLE_CONFIG), "--source", str(short_clip),
                               "--sink", f"mqtt://127.0.0.1:{broker.port}/t?outbox={tmp_path / 'o.sqlite'}"],
                              cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
        assert_one_line_error(proc, "refused the connection")
        assert "wrong" not in proc.stderr
        env["STREAMTRT_MQTT_PASSWORD"] = "right"
        sub = Subscriber(broker.port, "t", "cam", "right")
        ok = subprocess.run([sys.executable, "-m", "streamtrt", "run", str(SAMPLE_CONFIG), "--source", str(short_clip),
                             "--sink", f"mqtt://127.0.0.1:{broker.port}/t?outbox={tmp_path / 'o2.sqlite'}"],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
        assert ok.returncode == 0, ok.stderr
        deadline = time.time() + 30
        while len(sub.ids()) < 12 and time.time() < deadline:
            time.sleep(0.1)
        assert len(sub.ids()) == 12
        sub.close()
    finally:
        broker.stop()


@pytest.mark.slow
def test_unreachable_broker_is_a_status_and_nothing_is_lost(tmp_path, short_clip):
    from tests.sinks.servers import free_port

    outbox = tmp_path / "o.sqlite"
    port = free_port()
    proc = streamtrt("run", SAMPLE_CONFIG, "--source", short_clip, "--sink",
                     f"mqtt://127.0.0.1:{port}/t?outbox={outbox}&drain=3")
    assert proc.returncode == 0, proc.stderr
    assert "broker not reachable yet" in proc.stderr and "12 records still pending" in proc.stderr
    # The exit drain says what it waits for, about once a second, for ?drain=3 seconds.
    progress = [l for l in proc.stderr.splitlines() if "records left" in l]
    assert 1 <= len(progress) <= 4, proc.stderr
    assert f"mqtt://127.0.0.1:{port}/t: 12 records left, broker not connected (retrying)" in progress[0]
    assert Outbox(outbox).pending() == 12


# -- webhook ------------------------------------------------------------------------------------
def test_webhook_retries_through_500s_and_signs(tmp_path, short_clip, monkeypatch):
    monkeypatch.setenv("STREAMTRT_WEBHOOK_SECRET", "s3cret")
    hook = Webhook(fail=3)
    cfg = pipeline_cfg(short_clip, tmp_path, [f"{hook.url}?outbox={tmp_path / 'o.sqlite'}"])
    with Pipeline(cfg) as pipe:
        pipe.sinks[0].backoff = Backoff(0.05, 0.05)
        pipe.run()
        sink = pipe.sinks[0]
    assert sink.failures >= 3 and sink.pending() == 0
    records = hook.records()
    assert {r["message_id"] for r in records} == {f"{pipe.run_id}:0:{i}" for i in range(12)}
    for headers, body in hook.requests:
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["X-Streamtrt-Signature"] == expected
    hook.close()


def test_webhook_rejecting_a_batch_does_not_block_the_rest(tmp_path, short_clip):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Reject(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Reject)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/x?outbox={tmp_path / 'o.sqlite'}"
    with Pipeline(pipeline_cfg(short_clip, tmp_path, [url])) as pipe:
        pipe.run()
        assert pipe.sinks[0].rejected == 12 and pipe.sinks[0].pending() == 0
    server.shutdown()
