"""A Prometheus endpoint (``/metrics``) over a pipeline's :class:`~streamtrt.runtime.stats.PipelineStats`
snapshot: frames and fps per stream, per-stage latency histograms, queue depths, bad frames, sink
backlog and reconnects; GPU memory (NVML), temperatures and power rails where the machine has them.

:class:`StatsCollector` is a ``prometheus_client`` custom collector: every scrape takes one
``stats()`` snapshot and reads nothing else of the pipeline. :func:`start_metrics_server` serves it
with ``prometheus_client``'s own HTTP server (bound to 127.0.0.1 unless configured otherwise).

Metric names and labels (unchanged since the hand-written exposition): ``streamtrt_frames_total``,
``streamtrt_fps``, ``streamtrt_bad_frames_total``, ``streamtrt_dropped_frames_total``,
``streamtrt_stream_reconnects_total``, ``streamtrt_stream_frames_lost_total`` (label ``stream``);
``streamtrt_stream_up`` (``stream``, ``state``); ``streamtrt_stream_last_frame_age_seconds``;
``streamtrt_stream_latency_seconds`` (``stream``, ``quantile`` 0.5/0.99); ``streamtrt_detections_total``;
``streamtrt_stage_seconds`` (histogram, ``stage``); ``streamtrt_stage_fps``; ``streamtrt_queue_depth``
(``queue``); ``streamtrt_outbox_pending``, ``streamtrt_outbox_delivered_total``,
``streamtrt_outbox_dropped_total``, ``streamtrt_reconnects_total`` (``sink``);
``streamtrt_temperature_celsius`` (``zone``), ``streamtrt_power_watts`` (``rail``),
``streamtrt_gpu_memory_used_bytes`` (``gpu``).
"""

from __future__ import annotations

from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ..errors import StreamTRTError
from ..hardware import gpu_memory, power_rails, thermal_zones
from .stats import PipelineStats
from .timing import HISTOGRAM_BUCKETS_S


class StatsCollector:
    """Collects the metrics above from ``stats()`` (e.g. ``pipeline.stats``) at each scrape."""

    def __init__(self, stats: Callable[[], PipelineStats]):
        self._stats = stats

    def describe(self) -> list:
        return []  # no scrape at registration; the families depend on the run

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        streams = s.streams

        def per_stream(family, name: str, doc: str, value, keep=lambda st: True):
            m = family(name, doc, labels=["stream"])
            for st in streams:
                if keep(st):
                    m.add_metric([st.id], value(st))
            return m

        yield per_stream(CounterMetricFamily, "streamtrt_frames_total", "Frames through the pipeline, per stream.",
                         lambda st: st.frames, lambda st: st.frames > 0)
        yield per_stream(GaugeMetricFamily, "streamtrt_fps", "Frames per second over the last seconds, per stream.",
                         lambda st: st.fps, lambda st: st.fps > 0)
        yield per_stream(CounterMetricFamily, "streamtrt_bad_frames_total", "Frames that could not be decoded.",
                         lambda st: st.bad_frames)
        yield per_stream(CounterMetricFamily, "streamtrt_dropped_frames_total",
                         "Frames dropped by the latency policy (files never drop).", lambda st: st.dropped)
        yield per_stream(CounterMetricFamily, "streamtrt_stream_reconnects_total", "Reconnections of a live source.",
                         lambda st: st.reconnects)
        yield per_stream(CounterMetricFamily, "streamtrt_stream_frames_lost_total",
                         "Frames a live source did not deliver (outages, gaps), estimated from its frame rate.",
                         lambda st: st.frames_lost)
        up = GaugeMetricFamily("streamtrt_stream_up", "1 while a stream delivers frames, 0 while it (re)connects "
                               "or has ended.", labels=["stream", "state"])
        for st in streams:
            up.add_metric([st.id, st.state], 1 if st.state == "running" else 0)
        yield up
        yield per_stream(GaugeMetricFamily, "streamtrt_stream_last_frame_age_seconds",
                         "Seconds since a stream's last frame reached the sinks.", lambda st: st.last_frame_age_s,
                         lambda st: st.last_frame_age_s is not None)
        lat = Metric("streamtrt_stream_latency_seconds",
                     "Per-frame latency from decode to sink, per stream (over the most recent frames).", "summary")
        for st in streams:
            if st.latency_p50_ms is not None:
                for q, ms in (("0.5", st.latency_p50_ms), ("0.99", st.latency_p99_ms)):
                    lat.add_sample("streamtrt_stream_latency_seconds", {"stream": st.id, "quantile": q}, ms / 1e3)
        yield lat
        det = CounterMetricFamily("streamtrt_detections_total", "Detections written to the sinks.")
        det.add_metric([], s.detections)
        yield det
        yield from _stages(s)
        queues = GaugeMetricFamily("streamtrt_queue_depth", "Batches waiting between stages.", labels=["queue"])
        for name, depth in s.queues.items():
            queues.add_metric([name], depth)
        yield queues
        yield from _sinks(s)
        yield from _hardware()


def _stages(s: PipelineStats) -> Iterator[Metric]:
    hist = HistogramMetricFamily("streamtrt_stage_seconds", "Time per batch in each stage (latency for end_to_end).",
                                 labels=["stage"])
    fps = GaugeMetricFamily("streamtrt_stage_fps", "Frames each stage handled per second since the start.",
                            labels=["stage"])
    elapsed = max(s.elapsed_s, 1e-9)
    for stage in s.stages:
        bounds = [str(b) for b in HISTOGRAM_BUCKETS_S] + ["+Inf"]
        hist.add_metric([stage.name], list(zip(bounds, stage.buckets)), stage.busy_s)
        fps.add_metric([stage.name], round(stage.frames / elapsed, 3) if s.elapsed_s > 0 else 0.0)
    yield hist
    yield fps


def _sinks(s: PipelineStats) -> Iterator[Metric]:
    families = [
        (GaugeMetricFamily("streamtrt_outbox_pending", "Records waiting in a sink's outbox.", labels=["sink"]),
         lambda k: k.pending),
        (CounterMetricFamily("streamtrt_outbox_delivered_total", "Records a sink delivered.", labels=["sink"]),
         lambda k: k.delivered),
        (CounterMetricFamily("streamtrt_outbox_dropped_total", "Records dropped because an outbox was full.",
                             labels=["sink"]), lambda k: k.dropped),
        (CounterMetricFamily("streamtrt_reconnects_total", "Reconnections of network sinks.", labels=["sink"]),
         lambda k: k.reconnects),
    ]
    for family, value in families:
        for sink in s.sinks:
            family.add_metric([sink.uri], value(sink))
        yield family


def _gauge(name: str, help_text: str, label: str, samples: list[tuple[str, float]]) -> Iterator[Metric]:
    """One gauge family with a sample per (label value, value); nothing when there are no samples."""
    if samples:
        family = GaugeMetricFamily(name, help_text, labels=[label])
        for key, value in samples:
            family.add_metric([key], value)
        yield family


def _hardware() -> Iterator[Metric]:
    yield from _gauge("streamtrt_temperature_celsius", "Thermal zones (sysfs; on Jetson: CPU, GPU, SoC).", "zone",
                      [(name, round(value, 1)) for name, value in thermal_zones()])
    yield from _gauge("streamtrt_power_watts", "Power rails (INA3221 on Jetson, via hwmon).", "rail",
                      [(name, round(watts, 3)) for name, watts in power_rails()])
    yield from _gauge("streamtrt_gpu_memory_used_bytes", "GPU memory in use (all processes).", "gpu",
                      [(str(index), used) for index, used, _total in gpu_memory()])


class MetricsServer:
    """``/metrics`` of ``stats`` served on ``host:port`` (port 0: a free one) until :meth:`close`.
    Raises :class:`~streamtrt.errors.StreamTRTError` when the address cannot be bound."""

    def __init__(self, stats: Callable[[], PipelineStats], host: str = "127.0.0.1", port: int = 9400):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StatsCollector(stats))
        try:
            self.server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise StreamTRTError(f"metrics: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.address = self.server.server_address

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5.0)
