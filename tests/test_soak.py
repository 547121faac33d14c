"""The soak benchmark (streamtrt/soak.py through benchmarks/soak.py): a short live run of the
sample tracking job, sampled every second, reports what the issue asks for."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_short_soak_samples_the_process_and_reports_growth(tmp_path):
    out = tmp_path / "soak.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), str(ROOT / "configs" / "sample-tracking.yaml"),
                          "--minutes", "0.3", "--sample-s", "1", "--json", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["frames"] >= 20  # a 10 fps live loop for 18 s, on however busy a machine
    samples = report["samples"]
    assert len(samples) >= 10 and samples[-1]["t_s"] >= 15
    for s in samples[1:]:
        assert s["threads"] > 1 and s["fds"] > 0 and s["rss_mb"] > 50
        if s["rss_anon_mb"] is not None:  # Linux: RSS = RssAnon + RssFile + RssShmem (read a moment apart)
            assert abs(s["rss_mb"] - s["rss_anon_mb"] - s["rss_file_mb"]) < 10, s
    assert {"rss_mb", "rss_anon_mb", "rss_file_mb", "heap_mb", "fds", "threads"} <= set(report["growth"])
    assert report["growth"]["rss_mb"]["per_day"] == pytest.approx(24 * report["growth"]["rss_mb"]["per_hour"], abs=0.01)
    table = run.stdout
    assert "RSS MB" in table and "anon MB" in table and "C heap MB" in table and "Theil-Sen %/day" in table
    assert "mostly noise" in table  # 18 s is no soak: the table says so
    assert report["threads_at_end"], "the thread census by name"
