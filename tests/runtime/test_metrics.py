"""/metrics: prometheus_client's exposition of Pipeline.stats(), started by serve() (not by the Pipeline)."""

import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamtrt import Pipeline
from streamtrt.config import load_config
from streamtrt.runtime.metrics import StatsCollector
from streamtrt.runtime.servers import serve
from streamtrt.runtime.stats import PipelineStats, SinkStats, StageStats, StreamStats
from streamtrt.runtime.timing import HISTOGRAM_BUCKETS_S
from tests.conftest import VIDEO, make_config


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a text exposition, read by prometheus_client's parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(address) -> dict[tuple, float]:
    url = "http://%s:%d/metrics" % address[:2]
    return samples(urllib.request.urlopen(url, timeout=5).read().decode())


def test_a_scrape_during_the_run_shows_what_the_run_produced(tmp_path):
    cfg = load_config(make_config(VIDEO, tmp_path, runtime={"max_frames": 30}), ["metrics.enabled=true",
                                                                                  "metrics.port=0"])
    got, scraped = [], {}
    with Pipeline(cfg) as pipe, serve(pipe, cfg) as servers:
        assert servers.metrics.address[0] == "127.0.0.1" and servers.control is None
        for result in pipe:
            got.append(result)
            if len(got) == 21:  # counted here, before the next frame is taken
                scraped = scrape(servers.metrics.address)
                detections = sum(len(r.detections) for r in got)
    stream = (("stream", "0"),)
    assert scraped[("streamtrt_frames_total", stream)] == 21
    assert scraped[("streamtrt_detections_total", ())] == detections > 0
    assert scraped[("streamtrt_stage_seconds_count", (("stage", "end_to_end"),))] == 21
    assert scraped[("streamtrt_fps", stream)] > 0
    assert scraped[("streamtrt_bad_frames_total", stream)] == 0
    assert scraped[("streamtrt_dropped_frames_total", stream)] == 0
    # one state at a time; by frame 21 of 30 the decoder may already have read the last frame (ended)
    up = {dict(labels)["state"]: v for (name, labels), v in scraped.items()
          if name == "streamtrt_stream_up" and dict(labels)["stream"] == "0"}
    assert up in ({"running": 1}, {"ended": 0}), up  # 1 while it delivers frames, 0 once ended
    assert ("streamtrt_queue_depth", (("queue", "batches"),)) in scraped
    p50 = scraped[("streamtrt_stream_latency_seconds", (("quantile", "0.5"), ("stream", "0")))]
    assert 0 < p50 <= scraped[("streamtrt_stream_latency_seconds", (("quantile", "0.99"), ("stream", "0")))]
    buckets = [scraped[("streamtrt_stage_seconds_bucket", (("le", le), ("stage", "infer")))]
               for le in [str(b) for b in HISTOGRAM_BUCKETS_S] + ["+Inf"]]
    assert buckets == sorted(buckets) and buckets[-1] == scraped[("streamtrt_stage_seconds_count",
                                                                  (("stage", "infer"),))]
    assert len(got) == 30


def test_the_exposition_of_a_snapshot_has_every_name_and_label():
    """Values from a hand-made snapshot, so each number below is known without running anything."""
    stats = PipelineStats(
        run_id="r", state="running", elapsed_s=10.0, frames=50, detections=7,
        streams=(StreamStats("cam", "rtsp://***@h/x", "reconnecting", "cpu", True, frames=50, dropped=3,
                             bad_frames=2, reconnects=4, frames_lost=9, fps=0.0, last_frame_age_s=1.5,
                             latency_p50_ms=20.0, latency_p99_ms=80.0),),
        stages=(StageStats("infer", 2, 50, 0.25, 100.0, 150.0, (0,) * 10 + (2,) * (len(HISTOGRAM_BUCKETS_S) - 9)),),
        queues={"batches": 1}, sinks=(SinkStats("mqtt://b:1883/t", pending=5, delivered=40, dropped=1, reconnects=2),))
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(lambda: stats))
    got = samples(generate_latest(registry).decode())
    cam, sink = (("stream", "cam"),), (("sink", "mqtt://b:1883/t"),)
    assert got[("streamtrt_frames_total", cam)] == 50
    assert ("streamtrt_fps", cam) not in got  # no frames over the last seconds
    assert got[("streamtrt_dropped_frames_total", cam)] == 3 and got[("streamtrt_bad_frames_total", cam)] == 2
    assert got[("streamtrt_stream_reconnects_total", cam)] == 4
    assert got[("streamtrt_stream_frames_lost_total", cam)] == 9
    assert got[("streamtrt_stream_up", (("state", "reconnecting"), ("stream", "cam")))] == 0
    assert got[("streamtrt_stream_last_frame_age_seconds", cam)] == 1.5
    assert got[("streamtrt_stream_latency_seconds", (("quantile", "0.99"), ("stream", "cam")))] == 0.08
    assert got[("streamtrt_detections_total", ())] == 7
    assert got[("streamtrt_stage_seconds_count", (("stage", "infer"),))] == 2
    assert got[("streamtrt_stage_seconds_sum", (("stage", "infer"),))] == 0.25
    assert got[("streamtrt_stage_fps", (("stage", "infer"),))] == 5.0  # 50 frames in 10 s
    assert got[("streamtrt_queue_depth", (("queue", "batches"),))] == 1
    assert got[("streamtrt_outbox_pending", sink)] == 5 and got[("streamtrt_outbox_delivered_total", sink)] == 40
    assert got[("streamtrt_outbox_dropped_total", sink)] == 1 and got[("streamtrt_reconnects_total", sink)] == 2


def test_a_pipeline_alone_serves_nothing(tmp_path):
    """Library embedders start the endpoints with serve(); iterating a Pipeline opens no port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = load_config(make_config(VIDEO, tmp_path, runtime={"max_frames": 3}), ["metrics.enabled=true",
                                                                                 f"metrics.port={port}"])
    with Pipeline(cfg) as pipe:
        for _ in pipe:
            with pytest.raises(urllib.error.URLError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
