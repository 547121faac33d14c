"""ffprobe and ffmpeg (the command-line tools, not PyAV) as independent references for tests:
expected sizes, rotations, rates and frame times come from them, never from streamtrt."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

CASES = Path(__file__).resolve().parent / "data" / "cases"

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
                                  reason="needs the ffmpeg and ffprobe tools (installed in CI)")


def ffprobe(path, *args) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return json.loads(out)


def video_stream(path) -> dict:
    """The first video stream as ffprobe reports it, with ``rotation`` (counterclockwise degrees
    modulo 360, from the display matrix side data; 0 without one)."""
    s = ffprobe(path, "-select_streams", "v:0", "-show_streams")["streams"][0]
    rotation = 0
    for sd in s.get("side_data_list", []):
        if "rotation" in sd:
            rotation = int(sd["rotation"]) % 360
    s["rotation"] = rotation
    return s


def displayed_size(path) -> tuple[int, int]:
    s = video_stream(path)
    w, h = int(s["width"]), int(s["height"])
    return (h, w) if s["rotation"] % 180 == 90 else (w, h)


def rate(path) -> Fraction:
    return Fraction(video_stream(path)["r_frame_rate"])


def frame_times(path) -> list:
    """Each decoded frame's ``best_effort_timestamp_time`` (seconds, ``None`` where ffprobe has none)."""
    frames = ffprobe(path, "-select_streams", "v:0", "-show_entries", "frame=best_effort_timestamp_time",
                     "-show_frames")["frames"]
    return [float(f["best_effort_timestamp_time"]) if "best_effort_timestamp_time" in f else None for f in frames]


def frame_pts(path) -> list:
    """Each decoded frame's ``pts`` in stream time-base units (``None`` where there is none)."""
    frames = ffprobe(path, "-select_streams", "v:0", "-show_entries", "frame=pts", "-show_frames")["frames"]
    return [int(f["pts"]) if "pts" in f else None for f in frames]


def counted_frames(path) -> int:
    """Frames ffprobe decodes (``-count_frames``)."""
    s = ffprobe(path, "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames")
    return int(s["streams"][0]["nb_read_frames"])


def ffmpeg(*args, timeout=120) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *map(str, args)], check=True, timeout=timeout,
                   capture_output=True)


def decoded_as_displayed(path, count: int) -> list[np.ndarray]:
    """The first ``count`` frames as ``ffmpeg`` shows them (autorotate on), BGR."""
    w, h = displayed_size(path)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-frames:v", str(count),
                          "-f", "rawvideo", "-pix_fmt", "bgr24", "-"], capture_output=True, check=True,
                         timeout=120).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    return list(frames)


def continued_times(times: list, step: float) -> list:
    """Presentation times since the first frame where a clock that goes back (or stands still)
    continues from the previous time plus ``step``: the rule the issue states, applied to ffprobe's
    list by plain arithmetic."""
    out, offset, base = [], 0.0, times[0]
    for i, t in enumerate(times):
        if i and t - base + offset <= out[-1]:
            offset, base = out[-1] + step, t
        out.append(t - base + offset)
    return out


def small_clip(path: Path, seconds: float = 1.0, size: str = "96x64", rate: int = 10, *extra) -> Path:
    """An asymmetric test picture (ffmpeg's testsrc2), tiny: fast to make and to decode."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}", *extra,
           "-pix_fmt", "yuv420p", path)
    return path
