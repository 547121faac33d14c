"""The controller's status as a table (``streamtrt cluster status``), a one-line progress, and one
Prometheus endpoint for the whole cluster (labels stream, worker, node, gpu), all built from the
controller's status dict (itself built from the workers' :meth:`Pipeline.stats` snapshots)."""

from __future__ import annotations

from typing import Callable

from ..runtime.http import BackgroundServer, QuietHandler

__all__ = ["format_table", "progress_line", "render_metrics", "ClusterMetricsServer"]


def _cell(value) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _table(headers: list[str], rows: list[list]) -> list[str]:
    cells = [headers] + [[_cell(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]


def _node(ip: str, node: str) -> str:
    return f"{ip}/{node[:8]}" if node else "-"


def format_table(status: dict) -> str:
    """Streams (id, state, worker, node, gpu, fps, p99, frames, restarts) then workers (state, node,
    gpu, streams/capacity, load), then the recent events."""
    lines = [f"job {status['job']} (run {status['run_id']}), up {status['uptime_s']:.0f} s"]
    lines += _table(["STREAM", "STATE", "WORKER", "NODE", "GPU", "FPS", "P99_MS", "FRAMES", "RESTARTS", "URI"],
                    [[s["id"], s["state"], s["worker"], _node(s["ip"], s["node"]), s["gpu"], s["fps"], s["p99_ms"],
                      s["frames"], s["restarts"], s["uri"]] for s in status["streams"]])
    lines.append("")
    lines += _table(["WORKER", "STATE", "NODE", "GPU", "PID", "STREAMS", "LOAD"],
                    [[w["name"], w["state"], _node(w["ip"], w["node"]), w["gpu"], w["pid"],
                      f"{w['streams']}/{w['capacity']}", f"{w['load'] * 100:.0f}%"] for w in status["workers"]])
    if status["events"]:
        lines.append("")
        lines += [f"event: {e['event']}" for e in status["events"][-5:]]
    return "\n".join(lines)


def progress_line(status: dict) -> str:
    """``streams 3 running, 1 pending, 2 done | workers 3 ready | 1234 frames, 59.8 fps``."""
    counts: dict[str, int] = {}
    for s in status["streams"]:
        counts[s["state"]] = counts.get(s["state"], 0) + 1
    wcounts: dict[str, int] = {}
    for w in status["workers"]:
        wcounts[w["state"]] = wcounts.get(w["state"], 0) + 1
    # the controller's total counts the frames of workers that are gone (drained, dead) too
    frames = status.get("frames", sum(s["frames"] or 0 for s in status["streams"]))
    fps = sum(s["fps"] or 0.0 for s in status["streams"] if s["state"] == "running")
    return (f"streams {', '.join(f'{n} {k}' for k, n in sorted(counts.items())) or 'none'} | workers "
            f"{', '.join(f'{n} {k}' for k, n in sorted(wcounts.items())) or 'none'} | {frames} frames, {fps:.1f} fps")


def _label(value) -> str:
    return str(value if value is not None else "").replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def render_metrics(status: dict) -> str:
    """Prometheus text format: per-stream series labelled stream, worker, node, gpu (from the
    worker that runs it now), per-worker series labelled worker, node, gpu."""
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[str]) -> None:
        out.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples])

    def sl(s: dict) -> str:
        return (f'stream="{_label(s["id"])}",worker="{_label(s["worker"])}",node="{_label(s["ip"] or s["node"])}",'
                f'gpu="{_label(s["gpu"])}"')

    def wl(w: dict) -> str:
        return f'worker="{_label(w["name"])}",node="{_label(w["ip"] or w["node"])}",gpu="{_label(w["gpu"])}"'

    streams, workers = status["streams"], status["workers"]
    metric("streamtrt_cluster_stream_frames", "gauge",
           "Frames of a stream on its current worker (restarts from 0 when the stream moves).",
           [f"streamtrt_cluster_stream_frames{{{sl(s)}}} {s['frames'] or 0}" for s in streams if s["worker"]])
    metric("streamtrt_cluster_stream_fps", "gauge", "Frames per second at the sinks over the last 5 s.",
           [f"streamtrt_cluster_stream_fps{{{sl(s)}}} {s['fps'] or 0.0:.3f}" for s in streams if s["worker"]])
    metric("streamtrt_cluster_stream_latency_p99_seconds", "gauge", "Decode-to-sink latency, 99th percentile.",
           [f"streamtrt_cluster_stream_latency_p99_seconds{{{sl(s)}}} {s['p99_ms'] / 1e3:.6f}"
            for s in streams if s["worker"] and s["p99_ms"] is not None])
    metric("streamtrt_cluster_stream_up", "gauge", "1 while a stream runs on a worker, else 0 (label state).",
           [f'streamtrt_cluster_stream_up{{{sl(s)},state="{_label(s["state"])}"}} {1 if s["state"] == "running" else 0}'
            for s in streams])
    metric("streamtrt_cluster_stream_restarts_total", "counter", "Times a stream was moved after its worker failed.",
           [f'streamtrt_cluster_stream_restarts_total{{stream="{_label(s["id"])}"}} {s["restarts"]}' for s in streams])
    metric("streamtrt_cluster_worker_streams", "gauge", "Streams assigned to a worker.",
           [f"streamtrt_cluster_worker_streams{{{wl(w)}}} {w['streams']}" for w in workers])
    metric("streamtrt_cluster_worker_up", "gauge", "1 for a ready worker (label state).",
           [f'streamtrt_cluster_worker_up{{{wl(w)},state="{_label(w["state"])}"}} {1 if w["state"] == "ready" else 0}'
            for w in workers])
    busy = []
    for w in workers:
        for stage in (w.get("stats") or {}).get("stages", []):
            busy.append(f'streamtrt_cluster_stage_busy_seconds{{{wl(w)},stage="{_label(stage["name"])}"}} '
                        f'{stage["busy_s"]:.6f}')
    metric("streamtrt_cluster_stage_busy_seconds", "counter", "Time each worker spent in each stage.", busy)
    return "\n".join(out) + "\n"


class ClusterMetricsServer:
    """``http://HOST:PORT/metrics`` over ``get_status()`` (called per scrape), on the machine that
    runs ``cluster run``; loopback unless ``cluster.metrics_host`` says otherwise."""

    def __init__(self, get_status: Callable[[], dict], host: str = "127.0.0.1", port: int = 9402):
        class Handler(QuietHandler):
            def do_GET(self):  # noqa: N802
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                self.reply(200, render_metrics(get_status()).encode(), "text/plain; version=0.0.4; charset=utf-8")

        self._http = BackgroundServer("cluster metrics", Handler, host, port)
        self.address = self._http.address

    def close(self) -> None:
        self._http.close()
