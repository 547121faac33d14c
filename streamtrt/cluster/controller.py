"""The controller: a named Ray actor that owns the desired streams and keeps them running.

It starts the workers (:class:`~streamtrt.cluster.worker.StreamWorker` actors), assigns streams
(:mod:`~streamtrt.cluster.placement`), and every ``cluster.reconcile_s`` polls every worker
(:meth:`StreamWorker.snapshot`). A worker whose process died, or that does not answer within
``cluster.worker_timeout_s`` (its node left), is killed; its streams go to the surviving workers at
once, and a replacement worker is started. A live stream resumes from now; a file stream restarts
from its first frame with the same message ids (at least once).

**Controller failure.** The controller is restartable (``max_restarts=-1``): Ray starts it again
with the same arguments, and it re-reads its state from the workers, which are detached named
actors that outlive it (``NAME-wSLOT-GEN`` in the job's namespace): the streams each one runs and
the source configs it was given. Streams of the config that no worker has are started again.
Streams added with ``cluster add`` live only in their worker: if that worker dies while the
controller is down, they are lost (config streams are not). Workers that hear from no controller
for ``cluster.orphan_timeout_s`` stop and exit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Optional

from ..redact import redact
from ..config import ClusterConfig
from .actors import worker_actor
from .placement import Slot, plan_assignments
from .state import (_DONE_STATES, STARTUP_WAIT_S, _is_live, _Stream, _Worker, controller_name,  # noqa: F401
                    validate_source, worker_prefix)

log = logging.getLogger("streamtrt")

__all__ = ["Controller", "controller_name", "worker_prefix"]

class Controller:
    """The job's controller (wrapped as a Ray actor by :func:`streamtrt.cluster.driver.start_controller`).

    ``job``: ``{"config": the job Config as a JSON dict, "cluster": ClusterConfig dict, "run_id": str,
    "sources": [source dicts with ids], "namespace": str}``."""

    def __init__(self, job: dict):
        import ray

        self.ray = ray
        self.job = job
        self.cluster = ClusterConfig.model_validate(job["cluster"])
        self.prefix = worker_prefix(self.cluster)
        self.lock = threading.RLock()
        self.workers: dict[str, _Worker] = {}
        self.streams: dict[str, _Stream] = {}
        self.events: deque = deque(maxlen=100)
        self._warned_nodes: set = set()
        self.next_gen = 0
        self.frames_gone = 0  # frames that workers now gone (drained, dead) delivered to their sinks
        self.stopping = False
        self.started = time.time()
        self.started_mono = time.monotonic()
        self._recover()
        self._first_placement = not self.workers  # a restarted controller places at once
        for src in job["sources"]:
            if src["id"] not in self.streams:
                self.streams[src["id"]] = _Stream(src["id"], src, _is_live(src))
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="streamtrt-controller", daemon=True)
        self._thread.start()

    # -- recovery after a restart ---------------------------------------------------------------
    def _recover(self) -> None:
        ray = self.ray
        names = [n for n in ray.util.list_named_actors() if n.startswith(self.prefix)]
        for name in sorted(names):
            try:
                slot, gen = (int(x) for x in name[len(self.prefix):].split("-"))
                handle = ray.get_actor(name)
                info = ray.get(handle.info.remote(), timeout=self.cluster.worker_timeout_s)
                snap = ray.get(handle.snapshot.remote(), timeout=self.cluster.worker_timeout_s)
            except Exception as exc:  # noqa: BLE001 - a dead or foreign actor: not adopted
                log.warning("controller: not adopting %s: %s", name, type(exc).__name__)
                continue
            self.next_gen = max(self.next_gen, gen + 1)
            w = _Worker(name, slot, handle, state="ready", info=info, snapshot=snap)
            self.workers[name] = w
            states = {s["id"]: s["state"] for s in snap["stats"]["streams"]}
            for sid, src in snap["sources"].items():
                state = states.get(sid, "running")
                st = self.streams.get(sid) or _Stream(sid, src, _is_live(src))
                self.streams[sid] = st
                if state in ("ended", "failed", "removed"):
                    if st.worker is None and st.state == "pending":
                        st.state = {"ended": "done"}.get(state, state)
                    continue
                st.state, st.worker = "running", name
                w.streams.add(sid)
        if self.workers:
            self._event("controller restarted: adopted " + ", ".join(sorted(self.workers)))

    # -- public API (remote methods) ------------------------------------------------------------
    def add(self, source: dict) -> dict:
        """Add a stream (a ``sources`` item; ``id`` required). Placed on the next reconcile."""
        from ..errors import ConfigError

        try:
            src = validate_source(source)
        except ConfigError as exc:
            return {"ok": False, "error": redact(str(exc))}
        sid = src["id"]
        with self.lock:
            old = self.streams.get(sid)
            if old is not None and old.state not in _DONE_STATES:
                return {"ok": False, "error": f"stream id {sid!r} is already in use"}
            self.streams[sid] = _Stream(sid, src, _is_live(src))
        self._wake.set()
        return {"ok": True, "id": sid}

    def remove(self, stream_id: str) -> dict:
        with self.lock:
            st = self.streams.get(stream_id)
            if st is None or st.state in _DONE_STATES:
                return {"ok": False, "error": f"no running stream {stream_id!r}"}
            worker = self.workers.get(st.worker) if st.worker else None
            st.state, st.worker = "removed", None
            if worker is not None:
                worker.streams.discard(stream_id)
                worker.handle.remove.remote(stream_id)
        return {"ok": True}

    def drain(self, target: str) -> dict:
        """Drain a worker (by name) or every worker of a node (by node id or IP): its streams move
        to the other workers first (make before break), then it stops and finalises its sinks."""
        with self.lock:
            chosen = [w for w in self.workers.values() if w.state in ("ready", "starting") and
                      target in (w.name, w.info.get("node"), w.info.get("ip"))]
            if not chosen:
                return {"ok": False, "error": f"no running worker or node {target!r}"}
            for w in chosen:
                w.state = "draining"
                # make before break: the streams keep running here until placed elsewhere
                w.leaving = set(w.streams)
                w.streams.clear()
                for sid in w.leaving:
                    st = self.streams[sid]
                    st.worker, st.state, st.orphaned_at = None, "pending", time.monotonic()
                    st.stats = {}
                self._event(f"draining {w.name}: {len(w.leaving)} stream(s) move")
        self._wake.set()
        return {"ok": True, "workers": [w.name for w in chosen]}

    def status(self) -> dict:
        """Streams and workers, JSON-ready (URIs redacted)."""
        with self.lock:
            workers = []
            for w in sorted(self.workers.values(), key=lambda w: w.slot):
                if w.state == "dead":
                    continue
                workers.append({"name": w.name, "state": w.state, "node": w.info.get("node", ""),
                                "ip": w.info.get("ip", ""), "gpu": w.info.get("gpu", ""),
                                "pid": w.info.get("pid"), "streams": len(w.streams),
                                "capacity": self.cluster.streams_per_worker,
                                "load": round(len(w.streams) / self.cluster.streams_per_worker, 3),
                                "stats": w.snapshot.get("stats")})
            streams = []
            for st in sorted(self.streams.values(), key=lambda s: s.id):
                w = self.workers.get(st.worker) if st.worker else None
                stats = st.stats
                streams.append({"id": st.id, "uri": redact(st.source["uri"]), "live": st.live, "state": st.state,
                                "worker": st.worker, "node": w.info.get("node", "") if w else "",
                                "ip": w.info.get("ip", "") if w else "", "gpu": w.info.get("gpu", "") if w else "",
                                "fps": stats.get("fps", 0.0), "p99_ms": stats.get("latency_p99_ms"),
                                "frames": stats.get("frames", 0), "restarts": st.restarts, "error": st.error})
            frames = self.frames_gone + sum((w.snapshot.get("stats") or {}).get("frames", 0)
                                            for w in self.workers.values() if w.state != "dead")
            return {"job": self.cluster.name, "run_id": self.job["run_id"], "controller_pid": os.getpid(), "uptime_s": round(time.time() - self.started, 1),
                    "stopping": self.stopping, "frames": frames, "workers": workers, "streams": streams, "events": list(self.events)}

    def wait_idle(self) -> bool:
        """Whether every stream has ended (files done, failed or removed) and none is pending."""
        with self.lock:
            return all(st.state in _DONE_STATES for st in self.streams.values())

    def shutdown(self, timeout_s: float = 120.0, reason: Optional[str] = "stop") -> dict:
        """Drain every worker (their sinks are finalised) and stop them; returns the final status.
        ``reason``: the workers' ``stop_reason`` (a signal's name); None when every stream ended."""
        ray = self.ray
        with self.lock:
            self.stopping = True
            workers = [w for w in self.workers.values() if w.state in ("ready", "draining", "stopping")]
            for w in self.workers.values():
                if w.state == "starting":  # never ready (maybe never placed): nothing to finalise
                    ray.kill(w.handle, no_restart=True)
                    w.state = "dead"
        refs = {w.name: w.handle.drain.remote(timeout_s, reason) for w in workers}
        done, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s + 10)
        for w in workers:
            try:
                if refs[w.name] in done:
                    w.snapshot = ray.get(refs[w.name])
                    self._take_stats(w)
            except Exception:  # noqa: BLE001
                pass
        final = self.status()
        for w in workers:
            ray.kill(w.handle, no_restart=True)
            w.state = "dead"
        return final

    # -- the reconcile loop ---------------------------------------------------------------------
    def _warn_time_slicing(self, w) -> None:
        """Once per node: GPU workers sharing a GPU without CUDA MPS time-slice it (measured on an
        H200, 3 workers x 43 streams: 7 fps a stream without MPS, 22 with it)."""
        node = w.info.get("node")
        if (self.cluster.workers_per_gpu > 1 and w.info.get("gpu") and not w.info.get("mps", True)
                and node not in self._warned_nodes):
            self._warned_nodes.add(node)
            self._event(f"warning: {self.cluster.workers_per_gpu} workers share each GPU of {w.info['ip']} without "
                        "CUDA MPS, so their kernels take turns; start `nvidia-cuda-mps-control -d` on that node "
                        "(README: Many machines)")

    def _event(self, text: str) -> None:
        self.events.append({"t": round(time.time(), 3), "event": redact(text)})
        log.warning("cluster: %s", redact(text))

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.cluster.reconcile_s)
            self._wake.clear()
            if self.stopping:
                return
            try:
                self.reconcile()
            except Exception as exc:  # noqa: BLE001 - keep reconciling; the next tick retries
                log.exception("controller: reconcile failed: %s", exc)

    def _target_workers(self) -> int:
        c = self.cluster
        if c.workers is not None:
            return c.workers
        res = self.ray.cluster_resources()
        if res.get("GPU", 0) >= 1:
            return max(1, int(res["GPU"]) * c.workers_per_gpu)
        return max(1, int(res.get("CPU", 1) // c.cpus_per_worker))

    def _start_worker(self, slot: int) -> None:
        name = f"{self.prefix}{slot}-{self.next_gen}"
        self.next_gen += 1
        handle = worker_actor(self.cluster, self.ray, name).remote(
            {"config": self.job["config"], "name": name, "job": self.cluster.name, "slot": f"w{slot}", "label": f"w{slot}-{self.next_gen - 1}",
             "run_id": self.job["run_id"],
             "orphan_timeout_s": self.cluster.orphan_timeout_s})
        w = _Worker(name, slot, handle)
        w.ready_ref = handle.info.remote()
        self.workers[name] = w

    def _kill(self, w: _Worker, why: str) -> None:
        orphans = sorted(w.streams)
        for sid in orphans:
            st = self.streams[sid]
            if st.state == "running" or st.state == "pending":
                st.worker, st.state, st.orphaned_at = None, "pending", time.monotonic()
                st.restarts += 1
        w.streams.clear()
        self._gone(w)
        try:
            self.ray.kill(w.handle, no_restart=True)
        except Exception:  # noqa: BLE001
            pass
        self._event(f"worker {w.name} ({w.info.get('ip', '?')}) {why}; streams to move: {', '.join(orphans) or 'none'}")

    def _gone(self, w: _Worker) -> None:
        """A worker leaves for good: its frames stay in the job's total (``status()["frames"]``)."""
        if w.state != "dead":
            self.frames_gone += (w.snapshot.get("stats") or {}).get("frames", 0)
        w.state = "dead"

    def _take_stats(self, w: _Worker) -> None:
        per_stream = {s["id"]: s for s in w.snapshot["stats"]["streams"]}
        for st in self.streams.values():  # counts of ended streams keep growing until their last frame
            if st.worker == w.name and st.state == "done" and st.id in per_stream:
                st.stats = per_stream[st.id]
        for sid in list(w.streams):
            st = self.streams.get(sid)
            s = per_stream.get(sid)
            if st is None or s is None:
                continue
            st.stats = s
            if s["state"] == "ended":
                st.state = "done" if not st.live else "failed"
                st.error = s.get("error") if st.live else None
                w.streams.discard(sid)
            elif s["state"] == "failed":
                st.state, st.error = "failed", s.get("error")
                w.streams.discard(sid)
            elif st.state == "pending" or st.state == "running":
                st.state = "running"
                if st.orphaned_at is not None and s["frames"] > 0:
                    self._event(f"stream {sid} delivers frames again on {w.name} "
                                f"{time.monotonic() - st.orphaned_at:.1f} s after leaving its worker")
                    st.orphaned_at = None

    def reconcile(self) -> None:
        ray = self.ray
        c = self.cluster
        with self.lock:
            alive = [w for w in self.workers.values() if w.state in ("starting", "ready")]
            # 1. workers: started ones that answered become ready; start what is missing
            for w in alive:
                if w.state == "starting":
                    ready, _ = ray.wait([w.ready_ref], timeout=0)
                    if ready:
                        try:
                            w.info = ray.get(w.ready_ref)
                            w.state = "ready"
                            self._event(f"worker {w.name} ready on {w.info['ip']} (gpu {w.info['gpu'] or '-'})")
                            self._warn_time_slicing(w)
                        except Exception as exc:  # noqa: BLE001
                            self._kill(w, f"failed to start ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
            if not self.stopping:
                used = {w.slot for w in self.workers.values() if w.state != "dead"}
                missing = self._target_workers() - len(used)
                slot = 0
                while missing > 0:
                    if slot not in used:
                        self._start_worker(slot)
                        missing -= 1
                    slot += 1
            ready = [w for w in self.workers.values() if w.state in ("ready", "draining")]
        # 2. poll the ready workers (outside the lock: a dead node takes worker_timeout_s to tell)
        refs = {w.name: w.handle.snapshot.remote() for w in ready}
        done, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=c.worker_timeout_s) if refs else ([], [])
        done = set(done)
        with self.lock:
            for w in ready:
                if w.state == "dead":
                    continue
                ref = refs[w.name]
                if ref not in done:
                    self._kill(w, f"did not answer within {c.worker_timeout_s:g} s (node gone?)")
                    continue
                try:
                    w.snapshot = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - RayActorError: the process died
                    self._kill(w, f"died ({type(exc).__name__})")
                    continue
                if w.snapshot["state"] in ("failed", "finished"):
                    self._kill(w, f"pipeline {w.snapshot['state']}: {w.snapshot.get('error')}")
                    continue
                self._take_stats(w)
            # 3. drained workers with nothing left: stop them (sinks finalised)
            for w in self.workers.values():
                if w.state == "draining" and all(self.streams[sid].state != "pending" for sid in w.leaving):
                    w.state, w.drain_ref, w.drain_started = "stopping", w.handle.drain.remote(), time.monotonic()
                elif w.state == "stopping":
                    finished, _ = ray.wait([w.drain_ref], timeout=0)
                    if finished or time.monotonic() - w.drain_started > 120:
                        try:  # its last count, with the frames of its final drain
                            w.snapshot = ray.get(w.drain_ref, timeout=0) if finished else w.snapshot
                        except Exception:  # noqa: BLE001 - died while draining: the last poll's count
                            pass
                        ray.kill(w.handle, no_restart=True)
                        self._gone(w)
                        self._event(f"worker {w.name} drained and stopped")
            # 4. place pending streams
            if self.stopping:
                return
            if self._first_placement:
                if (any(w.state == "starting" for w in self.workers.values())
                        and time.monotonic() - self.started_mono < STARTUP_WAIT_S):
                    return  # the first placement waits for the first workers, so that streams spread
                self._first_placement = False
            pending = [s.id for s in sorted(self.streams.values(), key=lambda s: s.id) if s.state == "pending"]
            slots = [Slot(w.name, w.info.get("node", ""), len(w.streams)) for w in self.workers.values()
                     if w.state == "ready"]
            plan = plan_assignments(pending, slots, c.streams_per_worker)
            calls = {}
            for sid, wname in plan.items():
                calls[sid] = (wname, self.workers[wname].handle.add.remote(self.streams[sid].source))
        # 5. wait for the adds (outside the lock)
        results = {}
        for sid, (wname, ref) in calls.items():
            try:
                results[sid] = (wname, ray.get(ref, timeout=c.worker_timeout_s * 2))
            except Exception as exc:  # noqa: BLE001 - the worker died or hangs: next poll decides
                results[sid] = (wname, {"ok": False, "error": None, "exc": type(exc).__name__})
        with self.lock:
            for sid, (wname, res) in results.items():
                st, w = self.streams[sid], self.workers[wname]
                if st.state != "pending":
                    if res.get("ok"):  # removed meanwhile
                        w.handle.remove.remote(sid)
                    continue
                if res.get("ok"):
                    st.state, st.worker, st.error = "running", wname, None
                    w.streams.add(sid)
                elif res.get("error"):
                    st.state, st.error = "failed", res["error"]
                    self._event(f"stream {sid} could not start on {wname}: {res['error']}")
