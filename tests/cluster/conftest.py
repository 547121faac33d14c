"""A real local multi-node Ray cluster for the cluster tests: a head node and a second node on
this machine (``ray.cluster_utils.Cluster``), each with 2 logical CPUs and a resource of its own,
both bound to 127.0.0.1. Skipped (with the reason) where Ray is not installed."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

# Before Ray is imported: Ray would turn 127.0.0.1 into the machine's address, which a Ray bound to
# loopback does not listen on (streamtrt.cluster.driver.connect does the same).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from tests.models import constant_model  # noqa: E402

NAMESPACE = "streamtrt-tests"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A [B, 1, 6] ``decoded``-layout model on 64x64 input: cheap inference, no detections."""
    return constant_model(tmp_path_factory.mktemp("model") / "tiny.onnx", {"output": np.zeros((1, 6), np.float32)})


@pytest.fixture(scope="session")
def camera_clip(tmp_path_factory) -> Path:
    """60 s of the sample at 10 fps, 384x288 H.264 (for the RTSP server and paced file streams)."""
    from tests.sources.live_servers import write_camera_clip

    return write_camera_clip(tmp_path_factory.mktemp("clips") / "camera.mp4", 600)


@pytest.fixture(scope="session")
def ray_cluster():
    """(cluster, second node). The driver (this process) is connected in the test namespace."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'streamtrt[cluster]')")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "resources": {"head_node": 1}, "include_dashboard": False, "node_ip_address": "127.0.0.1"})
    second = cluster.add_node(num_cpus=2, resources={"second_node": 1}, node_ip_address="127.0.0.1")
    ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
    try:
        yield cluster, second
    finally:
        ray.shutdown()
        cluster.shutdown()


def job_config(model: Path, tmp_path: Path, sources: list, name: str, **cluster) -> dict:
    return {
        "sources": sources,
        "model": {"path": str(model), "format": "decoded"},
        "runtime": {"decoder": "cpu", "runner": "onnxruntime-cpu", "threads": 1},
        "live": {"stall_timeout_s": 5.0, "reconnect_max_s": 2.0},
        "sinks": [f"jsonl:{tmp_path}/out-{{worker}}.jsonl"],
        "cluster": {"name": name, "namespace": NAMESPACE, "reconcile_s": 0.5, "worker_timeout_s": 4.0,
                    **cluster},
    }


class RunningJob:
    """``run_streams`` in a thread (the test process is the driver); ``status`` is the latest."""

    def __init__(self, config: dict):
        from streamtrt.cluster.job import run_streams
        from streamtrt.config import load_config

        self.config = load_config(config)
        self.stop, self.abort = threading.Event(), threading.Event()
        self.status: dict = {}
        self.lines: list[str] = []
        self.final: dict = {}
        self.error: BaseException = None

        def target():
            try:
                self.final = run_streams(self.config, None, self.lines.append, self.stop, self.abort,
                                         interval_s=1e9, on_status=self._on_status)
            except BaseException as exc:  # noqa: BLE001 - the test asserts on it
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def _on_status(self, status: dict) -> None:
        self.status = status

    def wait(self, condition, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.error is None, self.error
            st = self.status
            if st and condition(st):
                return st
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; status: {self.status}; "
                             f"events: {self.lines[-10:]}")

    def finish(self, timeout: float = 120.0) -> dict:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the job did not stop"
        assert self.error is None, self.error
        return self.final
