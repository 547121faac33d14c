"""``streamtrt bench --soak MINUTES``: a long live run that watches the process for leaks.

It runs the pipeline on a live source for the given time (by default the config's first video
looped forever through FFmpeg's ``movie`` filter and paced at its frame rate by the ``realtime``
filter, so tracks come and go as on a camera), with the tracker as configured and a JSONL sink,
and samples the process every few seconds: resident memory (psutil), open file descriptors,
threads and, on a GPU, the device memory this process holds (nvidia-ml-py, when installed).

Growth is the least-squares slope of each series after the warm-up (the first 20% of the run,
at least two minutes: the run's first heap trim and garbage collection come after one minute, and
the heap reaches its working size after them): a slope is robust to the allocator's steps, which a
first/last difference is not. Beside the resident size it follows the C heap in use (glibc's
``mallinfo2``: what ``malloc`` handed out, without the free memory it keeps) and Python's
allocated blocks, which tell memory held from memory the allocator keeps. It is reported per hour and projected to 24 h, and as a percentage a day of the value at
the end of the warm-up.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .config import FALLBACK_FPS, load_config
from .errors import ConfigError
from .runtime.heap import TRIM_EVERY_S
from .runtime.pipeline import Pipeline
from .runtime.servers import serve
from .sources.uri import parse_source_uri

SAMPLE_S = 5.0
SHORT_MIN = 20.0  # minutes measured after the warm-up under which format_soak says the projection is noise


def looped_source(path: str, fps: float, realtime: bool = True) -> dict:
    """A live source that replays ``path`` forever (FFmpeg ``movie=...:loop=0``), paced at ``fps``.

    Timestamps are rewritten (``setpts``) so that they keep increasing across loops."""
    chain = f"movie=filename={path}:loop=0,setpts=N/({fps:g}*TB)" + (",realtime" if realtime else "")
    return {"uri": f"ffmpeg://{chain}", "format": "lavfi", "live": True, "id": "soak"}


class _Gpu:
    """Device memory used by this process (NVML), or nothing without a GPU or nvidia-ml-py."""

    def __init__(self) -> None:
        self.handles = []
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:  # no driver, no GPU, no nvidia-ml-py
            self.handles = []

    def used_mb(self) -> Optional[float]:
        if not self.handles:
            return None
        pid, total, found = os.getpid(), 0, False
        for h in self.handles:
            try:
                procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(h)
            except Exception:
                continue
            for p in procs:
                if p.pid == pid and p.usedGpuMemory is not None:
                    total += p.usedGpuMemory
                    found = True
        return total / 2**20 if found else None


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo2() -> Optional[Callable[[], _Mallinfo2]]:
    try:
        f = ctypes.CDLL(None).mallinfo2  # glibc >= 2.33
    except (OSError, AttributeError):
        return None
    f.argtypes, f.restype = [], _Mallinfo2
    return f


_MALLINFO2 = _mallinfo2()


def mallinfo2() -> Optional[_Mallinfo2]:
    """glibc's ``mallinfo2()`` (glibc >= 2.33: arena, in use, free, mmap'd, ... in bytes), or None
    where the C library has none."""
    return None if _MALLINFO2 is None else _MALLINFO2()


def heap_in_use_mb() -> Optional[float]:
    """Bytes that C ``malloc`` has handed out and not had back, every arena and ``mmap`` chunk
    (glibc's ``mallinfo2``: ``uordblks + hblkhd``), in MB; None elsewhere. Unlike the resident
    size it leaves out the free memory the allocator keeps: growth here is memory held."""
    m = mallinfo2()
    return None if m is None else (m.uordblks + m.hblkhd) / 2**20


def rss_split_mb() -> tuple[Optional[float], Optional[float]]:
    """The resident size split into anonymous memory (heaps, arenas, stacks, driver buffers) and
    file-backed pages (shared libraries and other mapped files), in MB, from Linux's
    ``/proc/self/status`` (``RssAnon``, ``RssFile``); ``(None, None)`` elsewhere. File-backed pages
    rise when a code path runs for the first time and are bounded by the files mapped: a leak shows
    in the anonymous part."""
    found: dict[str, float] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssFile:")):
                    key, value = line.split(":", 1)
                    found[key] = int(value.split()[0]) / 1024  # kB
    except (OSError, ValueError):
        return None, None
    return found.get("RssAnon"), found.get("RssFile")


def sample_process(proc, gpu: _Gpu) -> dict:
    """One sample: RSS (MB) and its anonymous and file-backed parts (MB or None,
    :func:`rss_split_mb`), file descriptors, threads, device memory (MB or None), C heap in use
    (MB or None, :func:`heap_in_use_mb`) and Python's allocated blocks (``sys.getallocatedblocks``)."""
    anon, files = rss_split_mb()
    return {"rss_mb": proc.memory_info().rss / 2**20, "rss_anon_mb": anon, "rss_file_mb": files,
            "fds": proc.num_fds() if hasattr(proc, "num_fds") else None,
            "threads": proc.num_threads(), "gpu_mb": gpu.used_mb(), "heap_mb": heap_in_use_mb(),
            "py_blocks": sys.getallocatedblocks()}


def thread_names() -> dict[str, int]:
    """How many of this process's threads carry each name (Linux ``/proc/self/task/*/comm``;
    empty elsewhere): native threads that come and go show up by the name their library gives
    them (threads of one pool share a name), which Python's ``threading`` never lists."""
    counts: dict[str, int] = {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return counts
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def growth(times_s: list[float], values: list[Optional[float]], warmup_s: float) -> Optional[dict]:
    """Least-squares slope of ``values`` after ``warmup_s``: per hour, per day and % a day.

    ``median_pct_per_day`` is the Theil-Sen slope (the median of the slopes between every two
    samples; Sen, JASA 1968) as % a day: a sample taken while a batch was in flight, or the last
    minutes' rise before the next heap trim, moves a least-squares slope far more than it moves
    the median, while a steady leak moves both alike."""
    pts = [(t, v) for t, v in zip(times_s, values) if t >= warmup_s and v is not None]
    if len(pts) < 3:
        return None
    t = np.array([p[0] for p in pts]) / 3600.0
    v = np.array([p[1] for p in pts], float)
    slope = float(np.polyfit(t, v, 1)[0])  # units per hour
    i, j = np.triu_indices(len(t), 1)
    keep = t[j] > t[i]
    median = float(np.median((v[j] - v[i])[keep] / (t[j] - t[i])[keep])) if keep.any() else 0.0
    base = v[0]
    return {"at_warmup": round(float(base), 3), "at_end": round(float(v[-1]), 3),
            "min": round(float(v.min()), 3), "max": round(float(v.max()), 3),
            "per_hour": round(slope, 4), "per_day": round(24 * slope, 3),
            "pct_per_day": round(100 * 24 * slope / base, 3) if base else None,
            "median_per_hour": round(median, 4),
            "median_pct_per_day": round(100 * 24 * median / base, 3) if base else None}


def run_soak(config: str, overrides: list[str], minutes: float, source: Optional[str] = None,
             sample_s: float = SAMPLE_S, warmup_frac: float = 0.2, realtime: bool = True, trace: int = 0,
             log: Callable[[str], None] = print) -> dict:
    """Run the pipeline live for ``minutes`` and report resource growth after the warm-up.

    ``trace`` > 0 also compares tracemalloc snapshots (warm-up end vs end) and reports that many
    allocation sites that grew most (slow: Python allocations are traced)."""
    import psutil

    cfg = load_config(config, list(overrides))
    if source is None:
        first = cfg.streams()[0]
        uri = parse_source_uri(first.uri)
        if uri.kind != "file":
            raise ConfigError(f"--soak needs a video file to loop, or --source with a live URI (got {uri.display})")
        from .sources.file import probe_video

        fps = probe_video(Path(uri.location), uri.display, first.id or "0").fps or FALLBACK_FPS
        stream = looped_source(str(Path(uri.location).resolve()), fps, realtime)
    else:
        stream = {"uri": source, "live": True, "id": "soak"}
    out = Path(tempfile.mkdtemp(prefix="streamtrt-soak-"))
    cfg = load_config(config, list(overrides) + [f"sources={json.dumps([stream])}", "source=null",
                                                 f"sinks={json.dumps(['jsonl:' + str(out / 'soak.jsonl')])}",
                                                 "runtime.max_frames=null"])
    proc, gpu = psutil.Process(), _Gpu()
    # Warm-up: the first 20% of the run, and at least two heap trims (2 min): the first trim and
    # collection (at 1 min) frees what the start-up left; the heap reaches its working size after it.
    duration_s, warmup_s = 60.0 * minutes, max(2 * TRIM_EVERY_S, warmup_frac * 60.0 * minutes)
    warmup_s = min(warmup_s, 0.5 * duration_s)
    # Samples go into an array allocated up front: the measurement must not grow the process itself.
    columns = ("t_s", "frames", "rss_mb", "rss_anon_mb", "rss_file_mb", "fds", "threads", "gpu_mb", "heap_mb",
               "py_blocks")
    table = np.full((int(duration_s / sample_s) + 16, len(columns)), np.nan)
    taken = [0]
    snapshots: list = []
    busiest: dict = {"threads": -1, "names": {}}  # the thread census at the most threads seen
    pipe = Pipeline(cfg)
    done = threading.Event()

    def sampler() -> None:
        t0 = time.monotonic()
        next_log = 0.0
        while not done.is_set():
            now = time.monotonic() - t0
            s = {"t_s": round(now, 1), "frames": pipe.summary.frames, **sample_process(proc, gpu)}
            if taken[0] < len(table):
                table[taken[0]] = [np.nan if s[c] is None else s[c] for c in columns]
                taken[0] += 1
            if s["threads"] > busiest["threads"]:
                busiest.update(threads=s["threads"], t_s=s["t_s"], names=thread_names())
            if trace and not snapshots and now >= warmup_s:
                snapshots.append(tracemalloc.take_snapshot())
            if now >= next_log:
                log(f"soak {now / 60:5.1f} min: {s['frames']} frames, RSS {s['rss_mb']:.1f} MB, "
                    + (f"heap in use {s['heap_mb']:.1f} MB, " if s["heap_mb"] is not None else "")
                    + f"{s['fds']} fds, {s['threads']} threads"
                    + (f", GPU {s['gpu_mb']:.0f} MB" if s["gpu_mb"] is not None else ""))
                next_log = now + 60.0
            if now >= duration_s:
                busiest["at_end"] = thread_names()  # while the pipeline still runs
                pipe.stop()
                return
            done.wait(sample_s)

    if trace:
        tracemalloc.start(8)
    watcher = threading.Thread(target=sampler, name="streamtrt-soak", daemon=True)
    watcher.start()
    try:
        with pipe, serve(pipe, cfg):  # the endpoints a run would have (metrics.enabled, control.enabled)
            try:
                summary = pipe.run()
            except KeyboardInterrupt:  # the end of the soak (pipe.stop) or Ctrl-C: drained and flushed
                summary = pipe.summary
    finally:
        done.set()
        watcher.join(10)
    top = []
    if trace and snapshots:
        end = tracemalloc.take_snapshot()
        tracemalloc.stop()
        for stat in end.compare_to(snapshots[0], "traceback")[:trace]:
            top.append({"size_diff_kb": round(stat.size_diff / 1024, 1), "count_diff": stat.count_diff,
                        "where": [f"{f.filename}:{f.lineno}" for f in stat.traceback][-4:]})
    real = ("t_s", "rss_mb", "rss_anon_mb", "rss_file_mb", "gpu_mb", "heap_mb")
    samples = [{c: (None if np.isnan(v) else (round(float(v), 3) if c in real else int(v)))
                for c, v in zip(columns, row)} for row in table[:taken[0]]]
    times = [s["t_s"] for s in samples]
    report = {
        "kind": "soak", "config": str(config), "source": stream["uri"], "minutes": minutes,
        "warmup_s": warmup_s, "sample_s": sample_s, "frames": summary.frames,
        "fps": round(summary.fps, 2), "host": platform.node(), "cpus": os.cpu_count(),
        "plan": summary.plan,
        "growth": {key: growth(times, [s[key] for s in samples], warmup_s)
                   for key in ("rss_mb", "rss_anon_mb", "rss_file_mb", "heap_mb", "py_blocks", "fds", "threads",
                               "gpu_mb")},
        "threads_at_most": {k: v for k, v in busiest.items() if k != "at_end"},
        "threads_at_end": busiest.get("at_end", {}),
        "samples": samples,
    }
    if top:
        report["tracemalloc_top"] = top
    return report


def format_soak(report: dict) -> str:
    """The growth table: one row per resource."""
    measured_min = report["minutes"] - report["warmup_s"] / 60
    lines = [f"soak: {report['minutes']:g} min, {report['frames']} frames ({report['fps']} fps), "
             f"growth measured after {report['warmup_s'] / 60:.1f} min of warm-up"]
    if measured_min < SHORT_MIN:
        lines.append(f"note: only {measured_min:.1f} min measured after the warm-up: a day's projection from so few "
                     "minutes is mostly noise; soak 30 minutes or more")
    lines.append(f"{'resource':<10} {'at warm-up':>11} {'at end':>10} {'min-max':>17} {'per hour':>10} {'per 24 h':>10} "
                 f"{'% / day':>8} {'Theil-Sen %/day':>16}")
    names = {"rss_mb": "RSS MB", "rss_anon_mb": " anon MB", "rss_file_mb": " file MB", "heap_mb": "C heap MB", "py_blocks": "py blocks",
             "fds": "fds", "threads": "threads", "gpu_mb": "GPU MB"}
    for key, g in report["growth"].items():
        if g is None:
            continue
        pct = "-" if g["pct_per_day"] is None else f"{g['pct_per_day']:.2f}"
        span = f"{g['min']:.1f}-{g['max']:.1f}" if key.endswith("_mb") else f"{g['min']:g}-{g['max']:g}"
        med = "-" if g.get("median_pct_per_day") is None else f"{g['median_pct_per_day']:.2f}"
        lines.append(f"{names[key]:<10} {g['at_warmup']:>11.1f} {g['at_end']:>10.1f} {span:>17} {g['per_hour']:>10.3f} "
                     f"{g['per_day']:>10.2f} {pct:>8} {med:>16}")
    most = report.get("threads_at_most") or {}
    if most.get("names"):
        top = ", ".join(f"{n} x{c}" for n, c in list(most["names"].items())[:6])
        lines.append(f"threads by name at the most seen ({most['threads']}, {most['t_s']:g} s): {top}")
    for t in report.get("tracemalloc_top", []):
        lines.append(f"  {t['size_diff_kb']:+9.1f} KB {t['count_diff']:+7d} blocks  {' <- '.join(reversed(t['where']))}")
    return "\n".join(lines)
