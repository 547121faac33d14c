"""`streamtrt cluster run CONFIG` as a user runs it: a local Ray of its own, listening on 127.0.0.1
only; SIGTERM drains the workers (their sinks finalised) and the exit status is 143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.cluster.conftest import job_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_run_locally_then_sigterm(tiny_model, camera_clip, tmp_path):
    pytest.importorskip("ray")
    cfg = job_config(tiny_model, tmp_path, [{"uri": str(camera_clip), "id": "cam", "pace": True}], "cli",
                     workers=1, metrics_port=0)
    cfg["cluster"]["namespace"] = "streamtrt-cli-test"
    cfg["sinks"].append(f"summary:{tmp_path}/summary-{{worker}}.json")
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "streamtrt", "cluster", "run", str(path), "--status-interval", "1"],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    lines = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"cluster run ended early: {lines}"
            lines.append(line.strip())
            if "streams 1 running" in line and " 0 frames" not in line:
                break
        else:
            raise AssertionError(f"the stream never ran: {lines}")
        # every socket a process of this Ray listens on is bound to loopback
        ray_procs = [p for p in psutil.Process(proc.pid).children(recursive=True)]
        listening = [c.laddr for p in ray_procs for c in _connections(p) if c.status == psutil.CONN_LISTEN]
        assert listening, "no listening socket found"
        assert all(addr.ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1") for addr in listening), listening
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += err.splitlines()
    assert proc.returncode == 143, "\n".join(lines[-40:])
    assert any("draining every worker" in x for x in lines), lines
    out = list(tmp_path.glob("out-w0-*.jsonl"))
    assert len(out) == 1
    records = [json.loads(x) for x in out[0].read_text().splitlines()]
    assert records and [r["frame_index"] for r in records] == list(range(len(records)))  # finalised, in order
    summary = json.loads(next(tmp_path.glob("summary-w0-*.json")).read_text())
    assert (summary["interrupted"], summary["stop_reason"]) == (True, "SIGTERM")  # the signal, not "drain"
    assert summary["frames"] == len(records)
    final = next(x for x in lines if x.startswith("streamtrt: final: "))
    assert f"| {len(records)} frames, " in final, final


def _connections(p: psutil.Process):
    try:
        return p.net_connections(kind="inet")
    except psutil.Error:
        return []
