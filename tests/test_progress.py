"""The CLI progress display over Pipeline.stats(): rich's live line on a terminal (a pty here),
plain lines when redirected. Waits on what was written, never on the machine's speed."""

import io
import os
import pty
import sys
import time

import pytest

from streamtrt.cli.progress import Progress
from streamtrt.runtime.stats import PipelineStats
from tests.conftest import wait_for


class FakeRun:
    def __init__(self, total=10):
        self.frames, self.total = 0, total

    def stats(self) -> PipelineStats:
        return PipelineStats("r", "running", 1.0, self.frames, 0, expected_frames=self.total)


def test_terminal_line_is_redrawn_in_place_and_kept_at_the_end(monkeypatch):
    master, slave = pty.openpty()
    tty = os.fdopen(slave, "w")
    monkeypatch.setattr(sys, "stderr", tty)
    out = bytearray()
    os.set_blocking(master, False)

    def read() -> bytes:
        try:
            while chunk := os.read(master, 65536):
                out.extend(chunk)
        except (BlockingIOError, OSError):
            pass
        return bytes(out)

    run = FakeRun()
    bar = Progress(run.stats, enabled=True, tty=True, interval=0.01, extra=lambda: "cam1 running")
    try:
        assert wait_for(lambda: b"frames 0/10" in read())
        run.frames = 5
        assert wait_for(lambda: b"frames 5/10 ( 50.0%)     5.0 fps  ETA 0:00:01  cam1 running" in read())
        run.frames = 10
    finally:
        bar.finish()
        tty.flush()
    text = read().removesuffix(b"\x1b[?25h")  # rich shows the cursor again
    assert text.endswith(b"frames 10/10 (100.0%)    10.0 fps  ETA 0:00:00  cam1 running\r\n")  # final counts
    assert b"\n" not in text.removesuffix(b"\r\n") and b"\r" in text  # redrawn in place, on one row
    tty.close()
    os.close(master)


def test_redirected_output_is_one_plain_line_per_interval(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    run = FakeRun(total=None)
    run.frames = 3
    bar = Progress(run.stats, enabled=True, tty=False, interval=0.01, detail=lambda: "stages (ms/frame): x")
    try:
        assert wait_for(lambda: err.getvalue().count("\n") >= 3)
    finally:
        bar.finish()
    lines = err.getvalue().splitlines()
    assert "\r" not in err.getvalue() and "\x1b" not in err.getvalue()
    assert lines[0] == "streamtrt: progress frames 3     3.0 fps  elapsed 0:00:01"
    assert all(line.startswith("streamtrt: progress frames 3 ") for line in lines)


def test_detail_lines_come_every_five_seconds_at_most(monkeypatch):
    """-v stage timings: on their own line, not more often than every 5 s (interval 0.01 here)."""
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    clock = [1000.0]
    monkeypatch.setattr("streamtrt.cli.progress._now", lambda: clock[0])
    run = FakeRun()
    bar = Progress(run.stats, enabled=False, tty=False, interval=0.01, detail=lambda: "stages (ms/frame): x")
    try:
        time.sleep(0.2)
        assert err.getvalue() == ""  # the first is due 5 s after the start
        clock[0] += 5.0
        assert wait_for(lambda: "streamtrt: stages (ms/frame): x" in err.getvalue())
    finally:
        bar.finish()
    assert err.getvalue() == "streamtrt: stages (ms/frame): x\n"
    assert "progress" not in err.getvalue()


@pytest.mark.parametrize("tty", [False, True])
def test_disabled_progress_writes_nothing(monkeypatch, tty):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = Progress(FakeRun().stats, enabled=False, tty=tty, interval=0.01)
    time.sleep(0.05)
    bar.finish()
    assert err.getvalue() == ""
