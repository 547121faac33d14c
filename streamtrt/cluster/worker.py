"""A stream worker: one process (a Ray actor) hosting one :class:`~streamtrt.runtime.Pipeline`.

The worker decodes its own streams, runs the model and writes its own sinks; frames never leave
its process. Only control calls (add, remove, drain) and :meth:`snapshot` (a small JSON-ready dict
built from :meth:`Pipeline.stats`) travel through Ray.

The class is plain Python; :mod:`streamtrt.cluster.controller` makes it a Ray actor with the
resources of ``cluster.workers_per_gpu`` / ``cluster.cpus_per_worker``. Methods never raise for a
user error: they return ``{"ok": False, "error": "..."}`` so the controller does not have to tell a
bad source from a dead worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Optional

from ..config import Config
from ..errors import StreamTRTError
from ..hardware import mps_running
from ..runtime import Pipeline
from ..redact import redact

log = logging.getLogger("streamtrt")

__all__ = ["StreamWorker", "worker_config", "expand_worker"]


def expand_worker(text: str, worker: str) -> str:
    """A sink URI with ``{worker}`` replaced by the worker's label (``w0-0``, ``w1-4``: slot and generation)."""
    return text.replace("{worker}", worker)


def worker_config(config: Config, label: str) -> Config:
    """The config a worker's pipeline runs: no sources of its own (the controller adds them), and
    ``{worker}`` in sink URIs replaced by the worker's label, so that workers never share a file."""
    return config.model_copy(update={"source": None, "sources": [],
                                     "sinks": [expand_worker(s, label) for s in config.sinks]})


class StreamWorker:
    """Hosts one keep-alive pipeline. ``job``: ``{"config": Config as a JSON dict, "name": actor
    name, "job": the job's name, "slot": slot name (w0), "label": this incarnation (w0-3), "run_id": the job's run id,
    "orphan_timeout_s": float}``.

    The pipeline's ``run_id`` is the job's, so a message id (``RUN:STREAM:FRAME``) is the same
    whichever worker produced the frame: a file stream restarted elsewhere after a failure repeats
    the same ids, and receivers can deduplicate (at least once)."""

    def __init__(self, job: dict):
        self.name: str = job["name"]
        self.slot: str = job["slot"]
        self.orphan_timeout_s: float = float(job["orphan_timeout_s"])
        # One outbox per worker slot (network sinks keep undelivered records there): a replacement
        # worker on the same node takes over what its predecessor left.
        state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        os.environ["XDG_STATE_HOME"] = str(state / "streamtrt-cluster" / job["job"] / self.slot)
        # {worker} in sink paths: this incarnation's label (w0-3), so a replacement never overwrites
        # the outputs of the worker it replaces
        config = worker_config(Config.model_validate(job["config"]), job["label"])
        self.pipeline = Pipeline(config, keep_alive=True)
        self.pipeline.run_id = job["run_id"]
        self.sources: dict[str, dict] = {}
        self._error: Optional[str] = None
        self._last_poll = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="streamtrt-worker", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch_orphan, name="streamtrt-orphan", daemon=True).start()

    def _run(self) -> None:
        try:
            self.pipeline.run()
        except BaseException as exc:  # noqa: BLE001 - reported through snapshot()
            self._error = redact(f"{type(exc).__name__}: {exc}")
            log.error("worker %s: pipeline failed: %s", self.name, self._error, exc_info=True)
        finally:
            self._done.set()

    def _watch_orphan(self) -> None:
        while not self._done.wait(1.0):
            if time.monotonic() - self._last_poll > self.orphan_timeout_s:
                log.error("worker %s: no controller for %.0f s: stopping", self.name, self.orphan_timeout_s)
                self.pipeline.stop("orphaned")
                self._done.wait(60.0)
                os._exit(0)

    # -- remote methods -----------------------------------------------------------------------
    def info(self) -> dict:
        """Where this worker runs: name, slot, pid, Ray node id, node IP, GPU ids (Ray's view), and
        whether CUDA MPS serves its node (``mps``)."""
        import ray

        ctx = ray.get_runtime_context()
        gpus = ray.get_gpu_ids()
        return {"name": self.name, "slot": self.slot, "pid": os.getpid(), "node": ctx.get_node_id(),
                "ip": ray.util.get_node_ip_address(), "gpu": ",".join(str(g) for g in gpus) if gpus else "",
                "mps": mps_running()}

    def add(self, source: dict) -> dict:
        """Start a stream (``source``: a ``sources`` item with its ``id``)."""
        self._last_poll = time.monotonic()
        try:
            sid = self.pipeline.add_source(dict(source))
        except StreamTRTError as exc:
            return {"ok": False, "error": redact(str(exc))}
        self.sources[sid] = dict(source)
        return {"ok": True, "id": sid}

    def remove(self, stream_id: str) -> dict:
        self._last_poll = time.monotonic()
        try:
            self.pipeline.remove_source(stream_id)
        except StreamTRTError as exc:
            return {"ok": False, "error": redact(str(exc))}
        return {"ok": True}

    def snapshot(self) -> dict:
        """The worker's state for the controller: ``state`` (the pipeline's, or ``failed``),
        ``error``, ``sources`` (the stream configs it was given, so a restarted controller can
        rebuild its table) and ``stats`` (:meth:`PipelineStats.as_dict`)."""
        self._last_poll = time.monotonic()
        stats = self.pipeline.stats()
        return {"name": self.name, "state": "failed" if self._error else stats.state, "error": self._error,
                "sources": self.sources, "stats": stats.as_dict()}

    def drain(self, timeout_s: float = 60.0, reason: Optional[str] = "drain") -> dict:
        """Stop gracefully: reading ends, frames in flight reach the sinks, every sink is finalised.
        ``reason``: the summary's ``stop_reason`` (``drain`` for ``cluster drain``, a signal's name
        when the job was stopped by one); None when the job ended by itself: a worker whose streams
        have all ended then finishes as a run that reached its end (not ``interrupted``).
        Returns the last snapshot; the caller then kills the actor."""
        self._last_poll = time.monotonic()
        streams = self.pipeline.stats().streams
        if reason is None and all(s.state in ("ended", "failed", "removed") for s in streams):
            self.pipeline.keep_alive = False  # the run ends as the last stream did: not a stop
        else:
            self.pipeline.stop(reason or "drain")
        self._done.wait(timeout_s)
        snap = self.snapshot()
        snap["drained"] = self._done.is_set()
        return snap
