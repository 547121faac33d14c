"""Batch mode on the two-node cluster: 12 short files, one task process SIGKILLed halfway; every
output complete and written once, the manifest matching; a rerun skips everything."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.cluster.conftest import NAMESPACE
from tests.conftest import decode_frames, write_video

FILES = 12
FRAMES = 20


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """12 H.264 files of 20 frames each (ffprobe-independent count: we wrote them)."""
    from tests.conftest import VIDEO

    folder = tmp_path_factory.mktemp("batch_in")
    frames = [f[::4, ::4].copy() for f in decode_frames(VIDEO, FRAMES)]
    for i in range(FILES):
        write_video(folder / f"clip{i:02d}.mp4", frames, "libx264")
    return folder


def _batch_config(model: Path, inputs: Path, out: Path) -> dict:
    return {
        "model": {"path": str(model), "format": "decoded"},
        "runtime": {"decoder": "cpu", "runner": "onnxruntime-cpu", "threads": 1},
        "cluster": {"name": "batch", "namespace": NAMESPACE, "max_retries": 3,
                    "batch": {"inputs": str(inputs), "outputs": [f"{out}/{{stem}}.jsonl"],
                              "manifest": str(out / "manifest.jsonl")}},
    }


def _task_processes() -> list[tuple[psutil.Process, str]]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("ray::streamtrt-file-"):  # Ray's process title: ray::TASK_NAME while it runs
            found.append((p, cmd.strip()))
    return found


@pytest.mark.slow  # a real two-node Ray cluster: run by .ci/run's second command
def test_batch_with_a_worker_killed(ray_cluster, tiny_model, videos, tmp_path):
    from streamtrt.cluster.batch import run_batch
    from streamtrt.config import load_config

    out = tmp_path / "out"
    config = load_config(_batch_config(tiny_model, videos, out))
    stop = threading.Event()
    lines: list[str] = []
    done = {"n": 0}
    killed: list[int] = []

    def killer():
        # once a few files are done, SIGKILL the process of a task that is running
        while not killed and not stop.is_set():
            if done["n"] >= 3:
                for proc, cmd in _task_processes():
                    try:
                        proc.send_signal(signal.SIGKILL)
                    except psutil.Error:  # it finished meanwhile: try another
                        continue
                    killed.append(cmd)
                    return
            time.sleep(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    result = run_batch(config, None, lines.append, stop, interval_s=1e9,
                       progress=lambda r: done.__setitem__("n", r["done"]))
    stop.set()
    assert killed, f"no running task process was found to kill; {lines}"
    print(f"\nkilled {killed[0]}")
    assert result["done"] == FILES and not result["failed"], (result, lines)
    manifest = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(e["input"] for e in manifest) == sorted(str(p) for p in videos.glob("*.mp4"))  # once each
    for e in manifest:
        path = Path(e["outputs"][0])
        assert path.name == Path(e["input"]).stem + ".jsonl"
        records = [json.loads(x) for x in path.read_text().splitlines()]
        assert [r["frame_index"] for r in records] == list(range(FRAMES)), path  # complete, no repeats
        assert e["frames"] == FRAMES
    assert not list(out.glob(".*part-*")), "temporary outputs left behind"

    # a rerun finds everything complete and runs nothing
    again = run_batch(config, None, lines.append, threading.Event(), interval_s=1e9)
    assert again["skipped"] == FILES and again["done"] == 0
    assert len((out / "manifest.jsonl").read_text().splitlines()) == FILES
