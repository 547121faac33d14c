"""The cluster's pieces that need no Ray: the placement policy, the config section, batch inputs,
output templates and manifest, the status table and metrics, and the CLI without Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamtrt.cluster.placement import Slot, choose_worker, plan_assignments
from streamtrt.config import BatchConfig, load_config
from streamtrt.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_least_loaded_with_capacity():
    slots = [Slot("a", "n1", 2), Slot("b", "n1", 1), Slot("c", "n2", 1)]
    # b and c tie on streams; c's node carries fewer streams (1 vs 3)
    assert choose_worker(slots, capacity=3) == "c"
    assert choose_worker([Slot("a", "n1", 3)], capacity=3) is None
    plan = plan_assignments(["s1", "s2", "s3", "s4", "s5", "s6"], slots, capacity=3)
    # fewest streams first, then the emptier node, then the name; 9 places, 4 taken: s6 waits
    assert plan == {"s1": "c", "s2": "b", "s3": "c", "s4": "a", "s5": "b"}


def test_cluster_section_rejects_unknown_keys():
    base = {"model": {"path": "m.onnx"}, "source": "a.mp4"}
    with pytest.raises(ConfigError, match=r"unknown key 'cluster.workerz' \(did you mean 'cluster.workers'\?\)"):
        load_config({**base, "cluster": {"workerz": 2}})
    with pytest.raises(ConfigError, match="cluster.batch.outputs"):
        load_config({**base, "cluster": {"batch": {"inputs": "x", "outputs": ["out/{stem}.jsonl", "o/{nme}.json"]}}})
    cfg = load_config({"model": {"path": "m.onnx"}, "cluster": {"batch": {"inputs": "v", "outputs": ["o/{stem}.jsonl"]}}})
    assert cfg.cluster.workers_per_gpu == 3 and cfg.cluster.streams_per_worker == 36


def test_batch_inputs_templates_and_manifest(tmp_path):
    from streamtrt.cluster.batch import _complete, _temporary, list_inputs, read_manifest, render_outputs

    (tmp_path / "v" / "sub").mkdir(parents=True)
    for name in ("v/a.mp4", "v/sub/b.mkv", "v/notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# two files\nv/a.mp4\n\nv/sub/b.mkv\n")
    folder = list_inputs(BatchConfig(inputs=str(tmp_path / "v"), outputs=["o/{stem}.jsonl"]))
    assert [p.name for p in folder] == ["a.mp4", "b.mkv"]
    listed = list_inputs(BatchConfig(inputs=[str(tmp_path / "list.txt"), str(tmp_path / "v/**/*.mp4")],
                                     outputs=["o/{stem}.jsonl"]))
    assert listed == folder  # the same files once each
    with pytest.raises(ConfigError, match=r"cluster.batch.inputs: .* matches no file"):
        list_inputs(BatchConfig(inputs=str(tmp_path / "*.avi"), outputs=["o/{stem}.jsonl"]))
    assert render_outputs(["summary:o/{stem}.json", "o/{index}-{name}.jsonl"], folder[1], 7) == \
        ["summary:o/b.json", "o/7-b.mkv.jsonl"]
    uri, tmp, final = _temporary("summary:o/b.json", "abcd")
    assert (uri, tmp, final) == ("summary:o/.b.part-abcd.json", Path("o/.b.part-abcd.json"), Path("o/b.json"))
    out = tmp_path / "o.jsonl"
    entry = {"input": str(folder[0]), "size": 1, "mtime_ns": folder[0].stat().st_mtime_ns, "outputs": [f"jsonl:{out}"]}
    (tmp_path / "m.jsonl").write_text(json.dumps(entry) + "\n{cut by a cra")
    manifest = read_manifest(tmp_path / "m.jsonl")
    assert list(manifest) == [str(folder[0])]
    assert not _complete(manifest[str(folder[0])], folder[0], [f"jsonl:{out}"])  # the output is missing
    out.write_text("")
    assert _complete(manifest[str(folder[0])], folder[0], [f"jsonl:{out}"])
    folder[0].write_bytes(b"changed")
    assert not _complete(manifest[str(folder[0])], folder[0], [f"jsonl:{out}"])


def _status() -> dict:
    stream = {"id": "cam1", "uri": "rtsp://***@10.0.0.5/live", "live": True, "state": "running", "worker": "j-w0-0",
              "node": "abcdef0123", "ip": "10.0.0.2", "gpu": "0", "fps": 29.9, "p99_ms": 120.0, "frames": 300,
              "restarts": 1, "error": None}
    worker = {"name": "j-w0-0", "state": "ready", "node": "abcdef0123", "ip": "10.0.0.2", "gpu": "0", "pid": 42,
              "streams": 1, "capacity": 40, "load": 0.025,
              "stats": {"stages": [{"name": "infer", "busy_s": 1.5}]}}
    return {"job": "j", "run_id": "j-1", "controller_pid": 1, "uptime_s": 12.0, "stopping": False,
            "workers": [worker], "streams": [stream, dict(stream, id="f", state="pending", worker=None, node="",
                                                          ip="", gpu="", frames=0, fps=0.0, p99_ms=None)],
            "events": [{"t": 1.0, "event": "worker j-w1-0 died"}]}


def test_status_table_and_metrics():
    from streamtrt.cluster.status import format_table, progress_line, render_metrics

    table = format_table(_status())
    assert "cam1" in table and "10.0.0.2/abcdef01" in table and "1/40" in table and "worker j-w1-0 died" in table
    assert progress_line(_status()) == "streams 1 pending, 1 running | workers 1 ready | 300 frames, 29.9 fps"
    text = render_metrics(_status())
    labels = 'stream="cam1",worker="j-w0-0",node="10.0.0.2",gpu="0"'
    assert f"streamtrt_cluster_stream_fps{{{labels}}} 29.900" in text
    assert f"streamtrt_cluster_stream_latency_p99_seconds{{{labels}}} 0.120000" in text
    assert 'streamtrt_cluster_stream_up{stream="f",worker="",node="",gpu="",state="pending"} 0' in text
    assert 'streamtrt_cluster_stage_busy_seconds{worker="j-w0-0",node="10.0.0.2",gpu="0",stage="infer"} 1.5' in text


def test_file_sinks_need_a_worker_placeholder():
    from streamtrt.cluster.job import check_stream_job

    base = {"model": {"path": "m.onnx"}, "source": "a.mp4"}
    with pytest.raises(ConfigError, match=r"sinks.0: every worker writes its own outputs: put \{worker\}"):
        check_stream_job(load_config({**base, "sinks": ["out/det.jsonl"]}))
    check_stream_job(load_config({**base, "sinks": ["out/det-{worker}.jsonl", "jsonl:-", "mqtt://127.0.0.1/t"]}))


def test_without_ray_one_line_and_exit_5(tmp_path):
    # a `ray` that cannot be imported, as on a machine without the extra
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    out = subprocess.run([sys.executable, "-m", "streamtrt", "cluster", "status"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 5
    assert out.stderr.strip() == "streamtrt: error: Ray is not installed: pip install 'streamtrt[cluster]'"


def test_gpu_sharing_without_mps_is_warned_once_per_node():
    from collections import deque

    from streamtrt.cluster.controller import Controller
    from streamtrt.cluster.state import _Worker
    from streamtrt.config import ClusterConfig

    ctl = Controller.__new__(Controller)  # the warning alone: no Ray, no workers started
    ctl.cluster, ctl.events, ctl._warned_nodes = ClusterConfig(workers_per_gpu=3), deque(), set()

    def worker(node, gpu, mps):
        w = _Worker.__new__(_Worker)
        w.info = {"node": node, "ip": f"10.0.0.{node}", "gpu": gpu, "mps": mps}
        return w

    for w in (worker(1, "0", False), worker(1, "0", False), worker(2, "0", True), worker(3, "", False)):
        ctl._warn_time_slicing(w)
    warnings = [e["event"] for e in ctl.events]
    assert len(warnings) == 1 and "10.0.0.1" in warnings[0] and "nvidia-cuda-mps-control -d" in warnings[0]
    ctl.cluster = ClusterConfig(workers_per_gpu=1)
    ctl._warn_time_slicing(worker(4, "0", False))
    assert len(ctl.events) == 1  # one worker per GPU: nothing shares it


def test_wrong_address_fails_fast():
    """A HOST:PORT nothing listens on: BackendUnavailableError from a TCP probe, without Ray."""
    import socket
    import time

    from streamtrt.cluster.driver import probe_address
    from streamtrt.errors import BackendUnavailableError

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(BackendUnavailableError, match=rf"cannot reach Ray at {address} \("):
            probe_address(address)
    assert time.monotonic() - t0 < 10
    with socket.socket() as srv:  # something listening: no error
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        probe_address(f"127.0.0.1:{srv.getsockname()[1]}")
    probe_address("auto")


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "streamtrt", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=cwd)


def test_cluster_add_checks_the_source_before_ray(tmp_path):
    """A missing file: `run`'s message and exit 3; a bad id: the key path and rule, exit 2. Both
    before any Ray connection (the address given is one nothing listens on)."""
    out = _cli("cluster", "add", "nosuch.mp4", "--id", "camX", "--address", "127.0.0.1:1", cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert out.stderr.strip() == ("streamtrt: error: source not found: nosuch.mp4; "
                                  "a file source must be on a path every node sees")
    out = _cli("cluster", "add", "rtsp://10.0.0.5/live", "--id", "bad/id", "--address", "127.0.0.1:1")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == ("streamtrt: error: cluster add: sources.0.id: "
                                  "a stream id is 1-64 letters, digits or _ . : -")


def test_added_sources_are_validated_and_made_absolute(tmp_path, monkeypatch):
    from streamtrt.cluster.state import check_local_file, validate_source
    from streamtrt.errors import SourceError

    (tmp_path / "clip.mp4").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    src = check_local_file(validate_source({"uri": "clip.mp4", "id": "c", "pace": True}))
    assert src == {"uri": str(tmp_path / "clip.mp4"), "id": "c", "pace": True}
    assert check_local_file(validate_source({"uri": f"file://{tmp_path}/clip.mp4", "id": "c"}))["uri"] == \
        f"file://{tmp_path}/clip.mp4"
    with pytest.raises(SourceError, match="source not found: frames/"):
        check_local_file({"uri": "frames/*.jpg", "id": "c"})
    assert check_local_file({"uri": "rtsp://h/x", "id": "c"}) == {"uri": "rtsp://h/x", "id": "c"}
    with pytest.raises(ConfigError, match=r"cluster add: unknown key 'sources.0.livee'"):
        validate_source({"uri": "rtsp://h/x", "id": "c", "livee": True})


def _worker(tmp_path, tiny_model, monkeypatch, name: str, clip):
    """A StreamWorker without Ray (the class is plain Python), its sinks a JSONL file and a summary."""
    from streamtrt.cluster.worker import StreamWorker
    from tests.cluster.conftest import job_config

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the worker sets it for its process
    cfg = job_config(tiny_model, tmp_path, [str(clip)], name)  # the worker drops the config's sources
    cfg["sinks"] = [f"jsonl:{tmp_path}/{name}-{{worker}}.jsonl", f"summary:{tmp_path}/{name}-{{worker}}.json"]
    job = {"config": load_config(cfg).model_dump(mode="json"), "name": f"{name}-w0-0", "job": name, "slot": "w0",
           "label": "w0-0", "run_id": "r", "orphan_timeout_s": 600}
    return StreamWorker(job), tmp_path / f"{name}-w0-0.json"


def _wait(condition, timeout_s: float = 60.0):
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_worker_summary_says_how_the_job_ended(tmp_path, tiny_model, monkeypatch):
    """Every stream ended by itself: not interrupted, no stop_reason. Stopped by a signal: its name."""
    from tests.sources.live_servers import write_camera_clip

    clip = write_camera_clip(tmp_path / "clip.mp4", 20)
    w, summary = _worker(tmp_path, tiny_model, monkeypatch, "natural", clip)
    assert w.add({"uri": str(clip), "id": "f"})["ok"]
    # a stream that cannot start: its failure is in the summary of the worker that tried it
    res = w.add({"uri": str(tmp_path / "gone.mp4"), "id": "gone"})
    assert res == {"ok": False, "error": f"source not found: {tmp_path / 'gone.mp4'}"}
    _wait(lambda: [s["state"] for s in w.snapshot()["stats"]["streams"]] == ["ended"])
    assert w.drain(60, None)["drained"]
    doc = json.loads(summary.read_text())
    assert (doc["interrupted"], doc["stop_reason"], doc["frames"]) == (False, None, 20)
    assert doc["streams"]["gone"] == {"id": "gone", "uri": str(tmp_path / "gone.mp4"), "state": "failed",
                                      "frames": 0, "error": res["error"]}

    w, summary = _worker(tmp_path, tiny_model, monkeypatch, "signal", clip)
    assert w.add({"uri": str(clip), "id": "f", "pace": True})["ok"]  # 2 s at 10 fps
    _wait(lambda: w.snapshot()["stats"]["frames"] > 0)
    assert w.drain(60, "SIGTERM")["drained"]
    doc = json.loads(summary.read_text())
    assert (doc["interrupted"], doc["stop_reason"]) == (True, "SIGTERM") and 0 < doc["frames"] < 20


def test_frames_of_workers_gone_stay_in_the_total():
    """A drained or dead worker's frames (144) stay in the job's total with the live worker's (253)."""
    import threading
    import time
    from collections import deque
    from types import SimpleNamespace

    from streamtrt.cluster.controller import Controller
    from streamtrt.cluster.state import _Worker
    from streamtrt.cluster.status import progress_line
    from streamtrt.config import ClusterConfig

    ctl = Controller.__new__(Controller)  # no Ray: the bookkeeping alone
    ctl.ray = SimpleNamespace(kill=lambda handle, no_restart: None)
    ctl.cluster, ctl.events, ctl.lock, ctl.streams = ClusterConfig(name="j"), deque(), threading.RLock(), {}
    ctl.job, ctl.started, ctl.stopping, ctl.frames_gone = {"run_id": "j-1"}, time.time(), False, 0
    gone = _Worker("j-w0-0", 0, None, state="ready", snapshot={"stats": {"frames": 144, "streams": []}})
    live = _Worker("j-w1-0", 1, None, state="ready", snapshot={"stats": {"frames": 253, "streams": []}})
    ctl.workers = {w.name: w for w in (gone, live)}
    ctl._kill(gone, "died")
    ctl._kill(gone, "died")  # once only
    st = ctl.status()
    assert st["frames"] == 397 and [w["name"] for w in st["workers"]] == ["j-w1-0"]
    assert progress_line(st).endswith("| 397 frames, 0.0 fps")


def test_no_job_of_that_name_names_the_jobs_found():
    from types import SimpleNamespace

    from streamtrt.cluster.job import controller_handle
    from streamtrt.config import ClusterConfig

    def get_actor(name):
        raise ValueError(name)

    ray = SimpleNamespace(get_actor=get_actor, util=SimpleNamespace(
        list_named_actors=lambda: ["cams-controller", "cams-w0-0", "batch-controller"]))
    with pytest.raises(ConfigError, match=r"^no cluster job named 'streamtrt' in namespace 'streamtrt' \(jobs running "
                       r"there: batch, cams; pass --config JOB.yaml or --name NAME; is `streamtrt cluster run` "):
        controller_handle(ray, ClusterConfig())
    ray.util.list_named_actors = lambda: []
    with pytest.raises(ConfigError, match=r"'streamtrt' \(pass --config JOB.yaml or --name NAME;"):
        controller_handle(ray, ClusterConfig())


def test_cluster_run_checks_the_job_before_ray(tmp_path):
    """A file sink without {worker}: the config error (exit 2), not the unreachable address (exit 5)."""
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps({"model": {"path": "m.onnx"}, "source": "a.mp4", "sinks": ["out/det.jsonl"]}))
    out = _cli("cluster", "run", str(path), "--address", "127.0.0.1:1")
    assert out.returncode == 2, out.stderr
    assert "sinks.0: every worker writes its own outputs: put {worker} in the path" in out.stderr


def test_address_help_fits_each_command():
    from click.testing import CliRunner

    from streamtrt.cli import main

    def help_of(cmd: str) -> str:
        return " ".join(CliRunner().invoke(main, ["cluster", cmd, "--help"]).output.split())

    assert "Without it: a new local Ray on 127.0.0.1 only" in help_of("run")
    for cmd in ("status", "add", "remove", "drain"):
        text = help_of(cmd)
        assert "ray://HOST:PORT of the running job; default auto." in text and "local Ray" not in text, cmd
