"""Real-time 1080p30 streams on one machine through `streamtrt cluster` (issue 17): W worker
processes share the machine's GPUs through fractional Ray GPU resources (cluster.workers_per_gpu).

For each stream count N: decode alone (W Ray tasks, each decoding N/W copies at full speed, the
same process count as the workers), then N paced copies of the clip (pace: true, like cameras)
spread over the W workers by the controller. A stream is real time when it keeps >= 97% of the
clip's rate (frames over the window, from the worker's own pipeline clock) and its p99 decode-to-
sink latency is <= --latency-ms. Host cores used: psutil's machine-wide CPU time over the window.
GPU utilisation: NVML (nvidia-ml-py) where present.

On the GPU machine (Ray staged from ../shared/gpu/requirements-ray.txt with the other GPU packages):
  python3 benchmarks/make_clip.py samples/vtest.mp4 /tmp/vtest-1080p.mp4 --width 1920 --height 1080 --fps 30
  timeout 580 python3 benchmarks/gpu/cluster_streams.py configs/multi-stream.yaml /tmp/vtest-1080p.mp4 \
      --workers 3 --streams 96,128 --duration 15 --set runtime.batch_size=64 --set runtime.stream_batch=4 \
      --set runtime.batch_timeout_ms=40 --json $OUT/cluster-streams.json
Prints one Markdown table last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from streamtrt.cluster.actors import worker_options  # noqa: E402
from streamtrt.cluster.driver import connect  # noqa: E402
from streamtrt.cluster.job import run_streams  # noqa: E402
from streamtrt.config import load_config  # noqa: E402
from streamtrt.sources import probe_video  # noqa: E402


SAMPLED = ("sm_pct", "nvdec_pct", "video_mhz", "sm_mhz", "power_w")


def gpu_utilisation():
    """A sampler of NVML readings per GPU, in the order of ``SAMPLED`` (SM busy %, NVDEC busy %,
    video and SM clocks in MHz, board power in W), or None without NVML."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - no NVML here
        return None

    def one(h):
        return (pynvml.nvmlDeviceGetUtilizationRates(h).gpu, pynvml.nvmlDeviceGetDecoderUtilization(h)[0],
                pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_VIDEO),
                pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM), pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0)

    return lambda: [one(h) for h in handles]


class Utilisation:
    """NVML samples once a second on a thread, between ``with`` and its end, each stamped with
    ``time.time()``: :meth:`mean` per GPU, over the whole span or over a window inside it."""

    def __init__(self):
        self.sample = gpu_utilisation()
        self.rows: list = []
        self.stop = threading.Event()

    def __enter__(self):
        def run():
            while self.sample and not self.stop.wait(1.0):
                self.rows.append((time.time(), self.sample()))
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)

    def mean(self, which: str, window=None) -> list:
        """Mean of reading ``which`` (a name in ``SAMPLED``) per GPU; ``window``: ``(start, end)``
        in ``time.time()`` seconds, e.g. the span a rate was counted over."""
        k = SAMPLED.index(which)
        rows = [r for t, r in self.rows if window is None or window[0] <= t <= window[1]]
        per_gpu = list(zip(*rows))
        return [round(sum(s[k] for s in col) / len(col), 1) for col in per_gpu] if per_gpu else []

    def means(self, window=None) -> dict:
        """Every reading's per-GPU mean, by name."""
        return {name: self.mean(name, window) for name in SAMPLED}


def mps_running() -> bool:
    """Whether a CUDA MPS control daemon serves this machine (its pipe directory has a control socket)."""
    return (Path(os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps")) / "control").exists()


def looped_clip(clip: str, min_s: float) -> str:
    """``clip`` remuxed (no re-encode) end to end until it lasts ``min_s`` (paced streams must not
    end inside the window); the clip itself when it is long enough."""
    import math

    import av

    with av.open(clip) as src:
        s = src.streams.video[0]
        dur = float(s.duration * s.time_base) if s.duration else float(src.duration / av.time_base)
    reps = math.ceil(min_s / dur)
    if reps <= 1:
        return clip
    import tempfile

    out = str(Path(tempfile.gettempdir()) / (Path(clip).stem + f"-x{reps}.mp4"))
    if Path(out).exists():
        return out
    with av.open(clip) as src, av.open(out, "w") as dst:
        s = src.streams.video[0]
        o = dst.add_stream_from_template(s)
        step = round(dur / s.time_base)
        for r in range(reps):
            src.seek(0)
            for p in src.demux(s):
                if p.dts is None:
                    continue
                p.pts, p.dts = p.pts + r * step, p.dts + r * step
                p.stream = o
                dst.mux(p)
    return out


def busy_cores(before, after, wall: float) -> float:
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (before.idle + getattr(before, "iowait", 0.0))
    total = sum(after) - sum(before)
    return (total - idle) / wall


def decode_alone(raw: dict, clip: str, n: int, workers: int, seconds: float, ray, cluster) -> tuple:
    """Total decode-only frames/s of ``n`` streams over ``workers`` Ray tasks (the same process
    count as the workers), counted over the wall-clock span all of them were counting in, and
    that span. Raises RuntimeError when the spans overlap by less than a second."""
    from streamtrt.bench_streams import decode_alone as one_process

    def task(raw, clip, k, seconds):
        from streamtrt.runtime.plan import make_plan
        from streamtrt.sources import parse_source_uri

        cfg = load_config(raw)
        gpu = make_plan(cfg.runtime, [parse_source_uri(clip)]).decoder == "dali-gpu"
        timeline: list = []
        one_process(cfg, clip, k, seconds, gpu=gpu, window=timeline)
        return timeline

    # max_calls=1: each task's process exits after it, with its DALI memory pool and NVDEC decoders
    remote = ray.remote(max_calls=1)(task).options(**worker_options(cluster, ray))
    shares = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    timelines = ray.get([remote.remote(raw, clip, k, seconds) for k in shares if k])
    # The span every process was counting in (the pipelines build at different speeds): frames
    # decoded in it by all of them, over its length. NVML means over it exclude the start-up.
    import numpy as np

    span = (max(t[0][0] for t in timelines), min(t[-1][0] for t in timelines))
    if span[1] - span[0] < 1.0:
        raise RuntimeError(f"decode alone: the {len(timelines)} processes counted over spans that overlap by "
                           f"{span[1] - span[0]:.1f} s; raise --duration")
    frames = sum(float(np.interp(span[1], *zip(*t)) - np.interp(span[0], *zip(*t))) for t in timelines)
    return frames / (span[1] - span[0]), span


def measure(raw: dict, clip: str, n: int, seconds: float, rate: float, latency_ms: float, log,
            pace: bool = True) -> dict:
    raw = dict(raw, source=None, sources=[{"uri": clip, "id": f"s{i}", "pace": pace} for i in range(n)], sinks=[])
    cfg = load_config(raw)
    stop, abort = threading.Event(), threading.Event()
    latest: dict = {}
    box: dict = {}

    def target():
        try:
            box["final"] = run_streams(cfg, "auto", log, stop, abort, interval_s=5.0,
                                       on_status=lambda s: latest.__setitem__("s", s))
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t0 = time.monotonic()
    t.start()

    def all_up(st):
        return st and all(s["state"] == "running" and s["frames"] > 0 for s in st["streams"])

    while not all_up(latest.get("s")) and time.monotonic() - t0 < 120 and "error" not in box:
        time.sleep(0.5)
    up_after = time.monotonic() - t0
    # settle: each stream's p99 is over its last 300 frames (10 s at 30 fps), so the start-up
    # backlog leaves the window before the measurement begins
    time.sleep(12.0)

    def per_stream(st):  # stream -> (frames, the worker pipeline's clock), from the same snapshot
        out = {}
        for w in st["workers"]:
            stats = w.get("stats") or {}
            for s in stats.get("streams", []):
                out[s["id"]] = (s["frames"], stats["elapsed_s"], s["latency_p99_ms"])
        return out

    first = per_stream(latest["s"])
    cpu0, w0 = psutil.cpu_times(), time.monotonic()
    p99 = {}
    with Utilisation() as util:
        while time.monotonic() - w0 < seconds:
            time.sleep(1.0)
            for sid, (_, _, q) in per_stream(latest["s"]).items():
                if q is not None:
                    p99[sid] = max(p99.get(sid, 0.0), q)
    cores = busy_cores(cpu0, psutil.cpu_times(), time.monotonic() - w0)
    last = per_stream(latest["s"])
    not_running = [(s["id"], s["state"], s.get("worker"), s.get("error")) for s in latest["s"]["streams"]
                   if s["state"] != "running"]
    if not_running:
        log(f"{len(not_running)} stream(s) not running at the end of the window, e.g. {not_running[:3]}")
    stop.set()
    t.join(180)
    fps = {}
    for sid, (f1, e1, _) in last.items():
        f0, e0, _ = first.get(sid, (0, e1, None))
        fps[sid] = (f1 - f0) / (e1 - e0) if e1 > e0 else 0.0
    missing = n - len(fps)
    slowest = min(fps.values()) if fps and not missing else 0.0
    worst_p99 = max(p99.values()) if p99 else float("inf")
    return {"streams": n, "up_after_s": round(up_after, 1), "slowest_fps": round(slowest, 2),
            "total_fps": round(sum(fps.values()), 1), "nvdec_util_pct": util.mean("nvdec_pct"),
            "streams_below_97pct": sum(v < 0.97 * rate for v in fps.values()) + missing,
            "worst_p99_ms": round(worst_p99, 1), "host_cores_used": round(cores, 1), "host_cores": psutil.cpu_count(),
            "gpu_util_pct": util.mean("sm_pct"), "nvml": util.means(), "realtime": slowest >= 0.97 * rate and worst_p99 <= latency_ms and not missing,
            "not_running": len(not_running), "not_running_examples": [list(x) for x in not_running[:3]],
            "error": repr(box.get("error")) if "error" in box else None}


def limiting(row: dict) -> str:
    """The resource that ran out: NVDEC when the pipeline's frames reach 90% of what decode alone
    gives with the same processes (or the decoders sample >= 90% busy), else host CPU or SMs."""
    if row["decode_alone_fps"] and row["total_fps"] >= 0.9 * row["decode_alone_fps"]:
        return f"GPU decode (NVDEC): pipeline at {row['total_fps'] / row['decode_alone_fps']:.0%} of decode alone"
    if row["nvdec_util_pct"] and max(row["nvdec_util_pct"]) >= 90:
        return "GPU decode (NVDEC busy)"
    if row["host_cores_used"] >= 0.9 * row["host_cores"]:
        return "host CPU"
    if row["gpu_util_pct"] and max(row["gpu_util_pct"]) >= 90:
        return "GPU (SMs busy)"
    return "neither saturated (per-process threads / latency)"


def bench_job(base, workers: int, gpus: int) -> dict:
    """``base`` (a Config) as a raw config of the bench's cluster job: ``workers`` workers spread
    over ``gpus`` GPUs (``workers_per_gpu`` rounded up), with no cap on streams per worker."""
    raw = base.model_dump(mode="json")
    raw["cluster"] = dict(raw["cluster"], name="bench", namespace="streamtrt-bench", workers=workers,
                          workers_per_gpu=max(1, -(-workers // max(gpus, 1))), streams_per_worker=10000)
    return raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("clip")
    ap.add_argument("--workers", type=int, default=3, help="worker processes (Ray actors) in all")
    ap.add_argument("--streams", default="96,128")
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--latency-ms", type=float, default=250.0)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--json", default=None)
    ap.add_argument("--unpaced", action="store_true",
                    help="streams read as fast as they decode (the pipeline's capacity, not real time)")
    args = ap.parse_args()
    log = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", file=sys.stderr, flush=True)  # noqa: E731
    base = load_config(args.config, args.overrides)
    info = probe_video(Path(args.clip), args.clip)
    rate = info.fps or 30.0
    args.clip = looped_clip(args.clip, 150.0 + args.duration)
    log(f"clip: {args.clip}")
    ray = connect(None, "streamtrt-bench", start=True)  # local Ray on 127.0.0.1, every GPU and core of the machine
    gpus = int(ray.cluster_resources().get("GPU", 0))
    raw = bench_job(base, args.workers, gpus)
    per_gpu = raw["cluster"]["workers_per_gpu"]
    cluster = load_config(dict(raw, source=args.clip, sources=[])).cluster
    versions = {m: __import__(m).__version__ for m in ("ray", "onnxruntime") if _has(m)}
    rows = []
    for n in [int(x) for x in args.streams.split(",")]:
        log(f"{n} streams: decode alone in {args.workers} processes")
        with Utilisation() as util:
            dec, window = decode_alone(dict(raw, source=args.clip, sources=[]), args.clip, n, args.workers,
                                       args.duration / 2, ray, cluster)
        log(f"{n} streams: real time over {args.workers} workers")
        row = measure(raw, args.clip, n, args.duration, rate, args.latency_ms, log, pace=not args.unpaced)
        row["paced"] = not args.unpaced
        row["decode_alone_fps"] = round(dec, 1)
        row["decode_alone_nvdec_util_pct"] = util.mean("nvdec_pct", window)
        row["decode_alone_nvml"] = util.means(window)
        row["limit"] = limiting(row)
        rows.append(row)
        log(json.dumps(row))
    result = {"gpus": gpus, "workers": args.workers, "workers_per_gpu": per_gpu, "clip_fps": rate,
              "cores": psutil.cpu_count(), "versions": versions, "overrides": args.overrides, "rows": rows,
              "gpu_names": _gpu_names(), "mps": mps_running()}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"\n{result['gpu_names'] or 'no GPU'}; {psutil.cpu_count()} cores; {args.workers} workers "
          f"({per_gpu} per GPU); CUDA MPS {'on' if result['mps'] else 'off'}; {versions}; {' '.join(args.overrides)}\n")
    print("| streams | decode alone (fps, total; NVDEC %) | pipeline fps (total) | slowest stream fps | below 97% "
          "| worst p99 ms | host cores used (per stream) | SM % / NVDEC % | all up after (s) | real time | limit |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---|")
    for r in rows:
        print(f"| {r['streams']} | {r['decode_alone_fps']} ({r['decode_alone_nvdec_util_pct']}) | {r['total_fps']} | "
              f"{r['slowest_fps']} | {r['streams_below_97pct']} | {r['worst_p99_ms']} | "
              f"{r['host_cores_used']}/{r['host_cores']} ({r['host_cores_used'] / r['streams']:.3f}) | "
              f"{r['gpu_util_pct']} / {r['nvdec_util_pct']} | {r['up_after_s']} | {'**yes**' if r['realtime'] else 'no'} "
              f"| {r['limit']} |")


def _has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def _gpu_names() -> list[str]:
    try:
        import pynvml

        pynvml.nvmlInit()
        return [pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001
        return []


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
