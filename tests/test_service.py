"""The systemd unit written by ``streamtrt service install``."""

import shutil
import subprocess

import pytest

from tests.conftest import ROOT, SAMPLE_CONFIG
from tests.test_cli import assert_one_line_error, streamtrt


def test_unit_restarts_logs_to_the_journal_and_stops_gracefully(tmp_path):
    proc = streamtrt("service", "install", SAMPLE_CONFIG, "--unit-dir", tmp_path, "--user", "nvidia", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    unit = (tmp_path / "streamtrt-sample.service").read_text()
    for line in ("Restart=on-failure", "KillSignal=SIGTERM", "SuccessExitStatus=143", "StandardOutput=journal",
                 "User=nvidia", f"WorkingDirectory={tmp_path.resolve()}", "WantedBy=multi-user.target",
                 "EnvironmentFile=-/etc/streamtrt/streamtrt-sample.env"):
        assert line in unit.splitlines()
    exec_start = next(l for l in unit.splitlines() if l.startswith("ExecStart="))
    assert exec_start.endswith(f"-m streamtrt run {SAMPLE_CONFIG} --no-progress")
    assert "systemctl enable --now streamtrt-sample.service" in proc.stdout


def test_print_only_and_bad_names(tmp_path):
    proc = streamtrt("service", "install", SAMPLE_CONFIG, "--print", "--name", "cams-lobby")
    assert proc.returncode == 0 and "[Service]" in proc.stdout
    assert_one_line_error(streamtrt("service", "install", SAMPLE_CONFIG, "--print", "--name", "bad name"),
                          "use letters, digits")


def test_a_config_that_would_not_run_is_not_installed(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: a.mp4\nmodel: {path: m.onnx}\nruntime: {bacth: 1}\n")
    assert_one_line_error(streamtrt("service", "install", bad, "--unit-dir", tmp_path), "unknown key 'runtime.bacth'")
    assert not list(tmp_path.glob("*.service"))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify(tmp_path):
    streamtrt("service", "install", SAMPLE_CONFIG, "--unit-dir", tmp_path)
    proc = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "streamtrt-sample.service")],
                          capture_output=True, text=True, cwd=ROOT)
    assert "error" not in proc.stderr.lower(), proc.stderr


def test_workdir_option(tmp_path):
    proc = streamtrt("service", "install", SAMPLE_CONFIG, "--print", "--workdir", tmp_path / "jobs")
    assert proc.returncode == 0, proc.stderr
    assert f"WorkingDirectory={(tmp_path / 'jobs').resolve()}" in proc.stdout.splitlines()


def test_unit_caps_malloc_arenas_for_24_7_runs(tmp_path):
    proc = streamtrt("service", "install", SAMPLE_CONFIG, "--unit-dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "streamtrt-sample.service").read_text().splitlines()
    assert "Environment=MALLOC_ARENA_MAX=2" in lines
    # systemd applies Environment= first, then EnvironmentFile=: the user's file can override it.
    assert any(l.startswith("EnvironmentFile=") for l in lines)
