"""A Prometheus endpoint (``/metrics``, bound to 127.0.0.1 unless configured otherwise) over the
running pipeline: frames and fps per stream, per-stage latency histograms, queue depths, bad
frames, sink backlog and reconnects, GPU memory where NVML is available."""

from __future__ import annotations

import ctypes
import time
from typing import TYPE_CHECKING

from .http import BackgroundServer, QuietHandler
from .timing import HISTOGRAM_BUCKETS_S

if TYPE_CHECKING:
    from .pipeline import Pipeline


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


class _Nvml:
    """GPU memory through NVML (the driver's libnvidia-ml), if present."""

    def __init__(self) -> None:
        self.lib = None
        try:
            lib = ctypes.CDLL("libnvidia-ml.so.1")
            if lib.nvmlInit_v2() == 0:
                self.lib = lib
        except (OSError, AttributeError):
            pass

    def memory(self) -> list[tuple[int, int, int]]:
        if self.lib is None:
            return []

        class Memory(ctypes.Structure):
            _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]

        out = []
        count = ctypes.c_uint()
        if self.lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return []
        for i in range(count.value):
            handle = ctypes.c_void_p()
            mem = Memory()
            if self.lib.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(handle)) == 0 and \
                    self.lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(mem)) == 0:
                out.append((i, mem.used, mem.total))
        return out


def thermal_zones(root: str = "/sys/class/thermal") -> list[tuple[str, float]]:
    """(type, degrees C) of every readable thermal zone."""
    from pathlib import Path

    out = []
    for zone in sorted(Path(root).glob("thermal_zone*")):
        try:
            out.append(((zone / "type").read_text().strip(), int((zone / "temp").read_text()) / 1000))
        except (OSError, ValueError):
            continue
    return out


def power_rails(root: str = "/sys/bus/i2c/drivers/ina3221") -> list[tuple[str, float]]:
    """(rail label, watts) from Jetson's INA3221 monitors, where the kernel exposes them."""
    from pathlib import Path

    out = []
    for label in sorted(Path(root).glob("*/hwmon/hwmon*/in*_label")):
        index = label.name.split("_")[0][2:]
        try:
            volts = int((label.parent / f"in{index}_input").read_text()) / 1000
            amps = int((label.parent / f"curr{index}_input").read_text()) / 1000
            out.append((label.read_text().strip(), volts * amps))
        except (OSError, ValueError):
            continue
    return out


class MetricsServer:
    def __init__(self, pipeline: "Pipeline", host: str = "127.0.0.1", port: int = 9400):
        self.pipeline = pipeline
        self.nvml = _Nvml()
        self._started = time.monotonic()
        outer = self

        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                self.reply(200, outer.render().encode(), "text/plain; version=0.0.4; charset=utf-8")

        self._http = BackgroundServer("metrics", Handler, host, port)
        self.server = self._http.server
        self.address = self._http.address

    def render(self) -> str:
        p = self.pipeline
        s = p.summary
        out: list[str] = []

        def metric(name, kind, help_text, samples):
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(samples)

        elapsed = max(time.monotonic() - self._started, 1e-9)
        per_stream = dict(p.frames_per_stream)
        metric("streamtrt_frames_total", "counter", "Frames through the pipeline, per stream.",
               [f'streamtrt_frames_total{{stream="{_label(k)}"}} {v}' for k, v in per_stream.items()])
        metric("streamtrt_fps", "gauge", "Frames per second over the last seconds, per stream.",
               [f'streamtrt_fps{{stream="{_label(k)}"}} {v:.3f}' for k, v in p.recent_fps().items()])
        streams = p.stream_status()
        metric("streamtrt_bad_frames_total", "counter", "Frames that could not be decoded.",
               [f'streamtrt_bad_frames_total{{stream="{_label(st["id"])}"}} {st["bad_frames"]}' for st in streams])
        metric("streamtrt_dropped_frames_total", "counter", "Frames dropped by the latency policy (files never drop).",
               [f'streamtrt_dropped_frames_total{{stream="{_label(st["id"])}"}} {st["dropped"]}' for st in streams])
        metric("streamtrt_stream_reconnects_total", "counter", "Reconnections of a live source.",
               [f'streamtrt_stream_reconnects_total{{stream="{_label(st["id"])}"}} {st["reconnects"]}'
                for st in streams])
        metric("streamtrt_stream_frames_lost_total", "counter",
               "Frames a live source did not deliver (outages, gaps), estimated from its frame rate.",
               [f'streamtrt_stream_frames_lost_total{{stream="{_label(st["id"])}"}} {st["frames_lost"]}'
                for st in streams])
        metric("streamtrt_stream_up", "gauge", "1 while a stream delivers frames, 0 while it (re)connects or has ended.",
               [f'streamtrt_stream_up{{stream="{_label(st["id"])}",state="{_label(st["state"])}"}} '
                f'{1 if st["state"] == "running" else 0}' for st in streams])
        metric("streamtrt_stream_last_frame_age_seconds", "gauge", "Seconds since a stream's last frame reached the sinks.",
               [f'streamtrt_stream_last_frame_age_seconds{{stream="{_label(st["id"])}"}} {st["last_frame_age_s"]}'
                for st in streams if st["last_frame_age_s"] is not None])
        lat = []
        for st in streams:
            if st["latency_ms"]:
                for q, key in (("0.5", "p50"), ("0.99", "p99")):
                    lat.append(f'streamtrt_stream_latency_seconds{{stream="{_label(st["id"])}",quantile="{q}"}} '
                               f'{st["latency_ms"][key] / 1e3:.6f}')
        metric("streamtrt_stream_latency_seconds", "summary",
               "Per-frame latency from decode to sink, per stream (over the most recent frames).", lat)
        metric("streamtrt_detections_total", "counter", "Detections written to the sinks.",
               [f"streamtrt_detections_total {s.detections}"])
        hist = []
        stage_fps = []
        for stage in p.timers():
            cumulative, count, total = stage.histogram()
            label = _label(stage.name)
            for bound, c in zip([*HISTOGRAM_BUCKETS_S, "+Inf"], cumulative):
                hist.append(f'streamtrt_stage_seconds_bucket{{stage="{label}",le="{bound}"}} {c}')
            hist.append(f'streamtrt_stage_seconds_count{{stage="{label}"}} {count}')
            hist.append(f'streamtrt_stage_seconds_sum{{stage="{label}"}} {total:.6f}')
            stats = stage.stats()
            stage_fps.append(f'streamtrt_stage_fps{{stage="{label}"}} {stats.frames / elapsed:.3f}')
        metric("streamtrt_stage_seconds", "histogram", "Time per batch in each stage (latency for end_to_end).", hist)
        metric("streamtrt_stage_fps", "gauge", "Frames each stage handled per second since the start.", stage_fps)
        metric("streamtrt_queue_depth", "gauge", "Batches waiting between stages.",
               [f'streamtrt_queue_depth{{queue="{_label(n)}"}} {d}' for n, d in p.queue_depths().items()])
        backlog, delivered, dropped, reconnects = [], [], [], []
        for st in (sink.stats() for sink in p.sinks):
            if st is None:
                continue
            label = _label(st.uri)
            backlog.append(f'streamtrt_outbox_pending{{sink="{label}"}} {st.pending}')
            delivered.append(f'streamtrt_outbox_delivered_total{{sink="{label}"}} {st.delivered}')
            dropped.append(f'streamtrt_outbox_dropped_total{{sink="{label}"}} {st.dropped}')
            reconnects.append(f'streamtrt_reconnects_total{{sink="{label}"}} {st.reconnects}')
        metric("streamtrt_outbox_pending", "gauge", "Records waiting in a sink's outbox.", backlog)
        metric("streamtrt_outbox_delivered_total", "counter", "Records a sink delivered.", delivered)
        metric("streamtrt_outbox_dropped_total", "counter", "Records dropped because an outbox was full.", dropped)
        metric("streamtrt_reconnects_total", "counter", "Reconnections of network sinks.", reconnects)
        temps = [f'streamtrt_temperature_celsius{{zone="{_label(name)}"}} {value:.1f}' for name, value in thermal_zones()]
        if temps:
            metric("streamtrt_temperature_celsius", "gauge", "Thermal zones (sysfs; on Jetson: CPU, GPU, SoC).", temps)
        power = [f'streamtrt_power_watts{{rail="{_label(n)}"}} {w:.3f}' for n, w in power_rails()]
        if power:
            metric("streamtrt_power_watts", "gauge", "Power rails (INA3221 on Jetson, via hwmon).", power)
        gpu = [f'streamtrt_gpu_memory_used_bytes{{gpu="{i}"}} {used}' for i, used, _ in self.nvml.memory()]
        if gpu:
            metric("streamtrt_gpu_memory_used_bytes", "gauge", "GPU memory in use (all processes).", gpu)
        return "\n".join(out) + "\n"

    def close(self) -> None:
        self._http.close()
