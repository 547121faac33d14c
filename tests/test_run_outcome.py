"""What a finished run leaves behind: the summary tells the run's error, and outputs (atomic
writes included) get the modes the umask gives any new file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SAMPLE_CONFIG, SAMPLES


@pytest.fixture(scope="module")
def truncated_clip(tmp_path_factory):
    """The sample clip cut to its first 5 % of bytes: the index says 795 frames, the data has ~40."""
    data = (SAMPLES / "vtest.mp4").read_bytes()
    path = tmp_path_factory.mktemp("trunc") / "truncated.mp4"
    path.write_bytes(data[: len(data) // 20])
    return path


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_truncated_source_fails_with_exit_3_and_the_summary_says_why(tmp_path, truncated_clip, umask):
    jsonl, summary = tmp_path / "d.jsonl", tmp_path / "s.json"
    proc = subprocess.run([sys.executable, "-m", "streamtrt", "run", str(SAMPLE_CONFIG), "--no-progress",
                           "--source", str(truncated_clip), "--sink", f"jsonl:{jsonl}", "--sink", f"summary:{summary}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 3, proc.stderr
    error_line = proc.stderr.strip().splitlines()[-1]
    s = json.loads(summary.read_text())
    assert s["error"]["kind"] == "DecodeError" and s["error"]["exit_code"] == 3
    assert "could not be decoded" in s["error"]["message"] and s["error"]["message"] in error_line
    assert s["interrupted"] is False and 0 < s["frames"] == len(jsonl.read_text().splitlines())
    for path in (summary, jsonl):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


@pytest.mark.parametrize("max_frames, exit_code", [(1000, 3), (10, 0)])
def test_max_frames_hides_a_truncated_file_only_when_the_run_stopped_at_it(tmp_path, truncated_clip, max_frames,
                                                                          exit_code):
    """The clip holds ~40 of the 795 frames its index promises: a limit it never reaches still
    reports them; a limit reached first stops before the file's end, so nothing is missing."""
    summary = tmp_path / "s.json"
    proc = subprocess.run([sys.executable, "-m", "streamtrt", "run", str(SAMPLE_CONFIG), "--no-progress",
                           "--source", str(truncated_clip), "--set", f"runtime.max_frames={max_frames}",
                           "--sink", f"summary:{summary}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == exit_code, proc.stderr
    s = json.loads(summary.read_text())
    if exit_code:
        assert s["error"]["kind"] == "DecodeError" and s["error"]["exit_code"] == 3
        assert 0 < s["frames"] < 100 and s["bad_frames"] == 795 - s["frames"]
        assert "could not be decoded" in proc.stderr
    else:
        assert s["error"] is None and s["frames"] == max_frames and s["bad_frames"] == 0


def test_a_successful_run_has_no_error_and_a_failed_stream_has_its_reason(tmp_path):
    from streamtrt.runtime.summary import RunSummary

    s = RunSummary(source="x", plan={}, error={"kind": "PipelineError", "message": "1 of 2 streams failed",
                                              "exit_code": 8},
                   streams={"a": {"state": "failed", "error": "cannot open", "frames": 0, "uri": "a.mp4"},
                            "b": {"state": "ended", "frames": 3, "uri": "b.mp4"}})
    text = s.format()
    assert "failed: cannot open" in text and "error (PipelineError, exit 8): 1 of 2 streams failed" in text
    assert RunSummary(source="x", plan={}).as_dict()["error"] is None


def test_an_abort_reaches_a_filtered_network_sink(tmp_path):
    from streamtrt.sinks import open_sink

    sink = open_sink(f"http://127.0.0.1:9/hook?classes=person&outbox={tmp_path / 'o.db'}")
    inner = sink.inner  # the FilteredSink forwards the Sink interface, nothing else
    assert inner.drain_s > 0
    sink.abort()  # a second stop signal: the exit flush is cut short
    assert inner.drain_s == 0 and inner._stop.is_set()


def test_a_failed_stream_has_its_reason_in_the_summary(tmp_path, short_clip):
    summary = tmp_path / "s.json"
    proc = subprocess.run([sys.executable, "-m", "streamtrt", "run", str(SAMPLE_CONFIG), "--no-progress",
                           "--source", str(short_clip), "--source", "ffmpeg://testsrc2=size=abc",
                           "--set", "sources.1.format=lavfi", "--sink", f"jsonl:{tmp_path / 'd.jsonl'}",
                           "--sink", f"summary:{summary}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    s = json.loads(summary.read_text())
    assert proc.returncode == s["error"]["exit_code"] != 0, proc.stderr
    assert "1 of 2 streams failed" in s["error"]["message"] and s["error"]["message"] in proc.stderr
    assert s["streams"]["0"]["state"] == "ended" and s["streams"]["0"]["frames"] == s["frames"] > 0
    assert s["streams"]["1"]["state"] == "failed" and "Invalid argument" in s["streams"]["1"]["error"]


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "streamtrt", "run", str(SAMPLE_CONFIG), "--no-progress",
                           *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", ["missing source", "not a model", "unwritable sink"])
def test_a_run_that_cannot_start_still_writes_its_summary_and_no_other_output(tmp_path, short_clip, case):
    summary, jsonl, csv = tmp_path / "s.json", tmp_path / "d.jsonl", tmp_path / "d.csv"
    source, extra = short_clip, []
    if case == "missing source":
        source = tmp_path / "nope.mp4"
    elif case == "not a model":
        model = tmp_path / "model.onnx"
        model.write_text("not protobuf " * 50)
        extra = ["--set", f"model.path={model}"]
    else:
        (tmp_path / "f").write_text("")
        jsonl = tmp_path / "f" / "d.jsonl"  # under a file: cannot be created
    # the summary listed first and last: opened or not, it is written
    proc = _run_cli("--source", source, *extra, "--sink", f"summary:{summary}", "--sink", f"jsonl:{jsonl}",
                    "--sink", f"csv:{csv}", "--sink", f"summary:{tmp_path / 's2.json'}")
    code = {"missing source": 3, "not a model": 4, "unwritable sink": 7}[case]
    assert proc.returncode == code, proc.stderr
    for path in (summary, tmp_path / "s2.json"):
        s = json.loads(path.read_text())
        assert s["error"]["exit_code"] == code and s["error"]["message"] in proc.stderr.strip().splitlines()[-1]
        assert s["frames"] == 0 and s["interrupted"] is False
    assert not jsonl.exists() and not csv.exists()
