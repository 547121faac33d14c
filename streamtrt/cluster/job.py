"""``streamtrt cluster run`` for streams: start (or find) Ray, start the controller, show progress,
serve the cluster's metrics, and on Ctrl-C/SIGTERM drain every worker (every sink finalised).

The job ends by itself when every stream has ended (file streams done); with live streams it runs
until stopped. A second signal stops at once: the workers are killed."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Callable, Optional

from ..config import ClusterConfig, Config
from ..errors import ConfigError
from ..sinks import is_summary_uri
from .state import CONTROLLER_SUFFIX, controller_name, worker_prefix
from .driver import connect, controller_actor
from .status import ClusterMetricsServer, progress_line

__all__ = ["check_stream_job", "stream_sources", "run_streams", "controller_handle", "kill_job"]


def _is_file_sink(uri: str) -> bool:
    text = uri.strip()
    return "://" not in text and not text.startswith("jsonl:-") and text != "-"


def check_stream_job(config: Config) -> None:
    """Refuse what would go wrong on several workers: a file sink every worker would write (it
    needs ``{worker}`` in its path), a stream without a stable id."""
    for i, uri in enumerate(config.sinks):
        if _is_file_sink(uri) and "{worker}" not in uri:
            raise ConfigError(f"sinks.{i}: every worker writes its own outputs: put {{worker}} in the path "
                              f"(e.g. out/detections-{{worker}}.jsonl)")
        if is_summary_uri(uri.replace("{worker}", "w")) and "{worker}" not in uri:
            raise ConfigError(f"sinks.{i}: put {{worker}} in the summary's path")


def stream_sources(config: Config) -> list[dict]:
    """The config's streams as JSON dicts with their ids (what the controller keeps)."""
    out = []
    for sc in config.streams():
        src = sc.model_dump(mode="json", exclude_defaults=True)
        src["uri"], src["id"] = sc.uri, sc.id
        out.append(src)
    return out


def controller_handle(ray, cluster: ClusterConfig):
    """The running job's controller, or :class:`ConfigError` when none runs under that name (naming
    the jobs that run in that namespace)."""
    try:
        return ray.get_actor(controller_name(cluster))
    except ValueError:
        jobs = sorted(n.removesuffix(CONTROLLER_SUFFIX) for n in ray.util.list_named_actors()
                      if n.endswith(CONTROLLER_SUFFIX))
        found = f"jobs running there: {', '.join(jobs)}; " if jobs else ""
        raise ConfigError(f"no cluster job named {cluster.name!r} in namespace {cluster.namespace!r} ({found}"
                          "pass --config JOB.yaml or --name NAME; is `streamtrt cluster run` running?)") from None


def run_streams(config: Config, address: Optional[str], report: Callable[[str], None],
                stop: threading.Event, abort: threading.Event, interval_s: float = 10.0,
                on_status: Optional[Callable[[dict], None]] = None,
                stop_reason: Optional[Callable[[], Optional[str]]] = None) -> dict:
    """Run the stream job until every stream has ended or ``stop`` is set; returns the final status.
    ``report`` gets a progress line every ``interval_s`` and the controller's events. ``stop_reason``:
    what stopped the job (a signal's name) for the workers' summaries, once ``stop`` is set."""
    from ray.exceptions import RayError

    check_stream_job(config)
    c = config.cluster
    ray = connect(address, c.namespace, start=address is None)
    try:
        ray.get_actor(controller_name(c))
        raise ConfigError(f"a cluster job named {c.name!r} already runs here (`streamtrt cluster status`); "
                          "set cluster.name for a second job")
    except ValueError:
        pass
    run_id = f"{c.name}-{uuid.uuid4().hex[:8]}"
    job = {"config": config.model_dump(mode="json"), "cluster": c.model_dump(mode="json"), "run_id": run_id,
           "sources": stream_sources(config), "namespace": c.namespace}
    node = ray.get_runtime_context().get_node_id()
    ctl = controller_actor(c, ray, node).remote(job)
    cache = {"t": 0.0, "status": None}
    lock = threading.Lock()

    def get_status() -> dict:
        with lock:
            if cache["status"] is None or time.monotonic() - cache["t"] > 1.0:
                cache["status"], cache["t"] = ray.get(ctl.status.remote(), timeout=30), time.monotonic()
            return cache["status"]

    metrics = None
    if c.metrics_port is not None:
        metrics = ClusterMetricsServer(get_status, c.metrics_host, c.metrics_port)
        report(f"cluster metrics on http://{metrics.address[0]}:{metrics.address[1]}/metrics")
    seen_events: set = set()
    last_line = 0.0
    try:
        while not stop.wait(0.5):
            try:
                status = get_status()
            except RayError as exc:  # the controller restarts: the next poll reaches the new one
                report(f"controller not answering ({type(exc).__name__}); retrying")
                continue
            if on_status is not None:
                on_status(status)
            for e in status["events"]:
                if (e["t"], e["event"]) not in seen_events:
                    report(e["event"])
                    seen_events.add((e["t"], e["event"]))
            if time.monotonic() - last_line >= interval_s:
                report(progress_line(status))
                last_line = time.monotonic()
            if status["streams"] and all(s["state"] in ("done", "failed", "removed") for s in status["streams"]):
                break
        if abort.is_set():
            return get_status()
        # stopped: the signal's name in every summary; ended by itself: not interrupted
        reason = ((stop_reason() if stop_reason else None) or "stop") if stop.is_set() else None
        report("stopping: draining every worker (finishing the frames in flight, finalising the sinks)")
        return ray.get(ctl.shutdown.remote(reason=reason))
    finally:
        if metrics is not None:
            metrics.close()
        kill_job(ray, c)


def kill_job(ray, cluster: ClusterConfig) -> list[str]:
    """Kill the job's controller and every worker of it (workers are detached: nothing else ends
    them). Returns the names killed."""
    prefix = worker_prefix(cluster)
    names = [n for n in ray.util.list_named_actors() if n == controller_name(cluster) or n.startswith(prefix)]
    for n in names:
        try:
            ray.kill(ray.get_actor(n), no_restart=True)
        except ValueError:  # gone meanwhile
            pass
    return names
