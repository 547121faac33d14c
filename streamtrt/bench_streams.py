"""``streamtrt bench --streams N,M,...``: how many concurrent real-time streams one process holds.

For each stream count, in one run:

* **decode alone**: every stream decoded at full speed in parallel (NVDEC through DALI on a GPU,
  FFmpeg on the CPU), nothing else running: the decode ceiling in total frames per second;
* **pipeline, unpaced**: the whole pipeline over N copies of the clip as fast as it goes;
* **pipeline, real time**: N copies replayed at the clip's frame rate like cameras
  (``pace: true``). Streams are real time when every one of them keeps the clip's rate
  (within 3%) and its p99 latency from decode to sink stays within the limit.

The largest real-time count is reported, with each stage's time per frame in the unpaced run
(where the bottleneck shows).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .config import FALLBACK_FPS, Config, load_config
from .preprocess.dali import open_gpu_video_decoder
from .runtime.pipeline import Pipeline
from .runtime.plan import make_plan
from .sources import open_source, parse_source_uri, probe_video
from .system import module_version, probe_cuda


def _config(base: Config, clip: str, n: int, pace: bool, overrides: list[str]) -> Config:
    raw = base.model_dump(mode="json")
    raw["source"] = None
    raw["sources"] = [{"uri": clip, "id": f"s{i}", "pace": pace} for i in range(n)]
    raw["sinks"] = []
    raw["runtime"]["max_frames"] = None
    return load_config(raw, overrides)


_START_LIMIT_S = 60.0  # streams not all running by then: measure anyway (the slow ones show as slow)


def parallel_rate(n: int, read: Callable[[int, Callable[[int], None], threading.Event], None],
                  seconds: float, settle: float, window: Optional[list] = None) -> float:
    """Total items per second of ``n`` threads each running ``read(i, count, stop)`` (which calls
    ``count(k)`` as it goes and returns once ``stop`` is set), over ``seconds`` after ``settle``
    seconds of start-up and once every reader has counted something (at most ``_START_LIMIT_S``:
    many GPU pipelines take seconds to build, and a window opened before they all run reads low).
    A reader's exception stops them all and is raised here. ``window``, when given, gets the
    counted span's ``(time.time(), items counted so far)`` appended every 0.2 s from its start to
    its end, so that other processes' counts and samples (NVML) can be matched to the same span."""
    counts = [0] * n
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        def count(k: int) -> None:
            counts[i] += k

        try:
            read(i, count, stop)
        except BaseException as exc:  # noqa: BLE001 - raised below
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    stop.wait(settle)
    until = time.monotonic() + _START_LIMIT_S
    while not stop.is_set() and not all(counts) and time.monotonic() < until:
        stop.wait(0.05)
    start_items, t0 = sum(counts), time.perf_counter()
    if window is not None:
        window.append((time.time(), start_items))
    while not stop.wait(min(0.2, max(0.0, seconds - (time.perf_counter() - t0)))):
        if window is not None:
            window.append((time.time(), sum(counts)))
        if time.perf_counter() - t0 >= seconds:
            break
    rate = (sum(counts) - start_items) / (time.perf_counter() - t0)
    stop.set()
    for t in threads:
        t.join(30)
    if errors:
        raise errors[0]
    return rate


def decode_alone(cfg: Config, clip: str, n: int, seconds: float, gpu: bool, window: Optional[list] = None) -> float:
    """Total frames per second of ``n`` parallel decoders, nothing else running (``window``: as
    in :func:`parallel_rate`)."""
    info = probe_video(Path(clip), clip)

    def read(i: int, count: Callable[[int], None], stop: threading.Event) -> None:
        while not stop.is_set():
            if gpu:
                from .preprocess.spec import PreprocessSpec

                dec = open_gpu_video_decoder(clip, info, PreprocessSpec(416, 416),
                                             cfg.runtime.stream_batch or cfg.runtime.batch_size, info.frame_count or 0,
                                             device_id=cfg.runtime.device_id, decode_only=True)
                for batch in dec:
                    count(int(batch.shape[0]))
                    if stop.is_set():
                        break
                dec.close()
            else:
                with open_source(parse_source_uri(clip), f"s{i}", 1) as src:
                    for _ in src:
                        count(1)
                        if stop.is_set():
                            break

    # start-up (pipeline builds) excluded
    return parallel_rate(n, read, seconds, settle=min(2.0, seconds / 4), window=window)


def run_pipeline(cfg: Config, seconds: float, warmup: float) -> dict[str, Any]:
    """Per-stream frame rates and latencies over ``seconds``, counted from ``warmup`` after every
    stream has delivered its first frame (late starters are not read as slow; the start-up time
    is reported on its own) to the stop (the drain after it delivers no new frames)."""
    pipe = Pipeline(cfg)
    arrivals: dict[str, list[tuple[float, float]]] = {}
    window: dict[str, float] = {}
    cpu: dict[str, float] = {}
    done = threading.Event()
    t0 = time.perf_counter()

    def stop_after_window() -> None:
        while not done.is_set() and time.perf_counter() - t0 < _START_LIMIT_S:
            if len(arrivals) == len(pipe.streams):
                break
            done.wait(0.05)
        window["all_started"] = time.perf_counter() - t0
        window["since"] = window["all_started"] + warmup
        window["end"] = window["since"] + seconds
        if done.wait(max(0.0, window["since"] - (time.perf_counter() - t0))):
            return
        cpu["since"] = time.process_time()  # every thread of this process: host cores used in the window
        if not done.wait(max(0.0, window["end"] - (time.perf_counter() - t0))):
            cpu["end"] = time.process_time()
            pipe.stop()

    watcher = threading.Thread(target=stop_after_window, daemon=True)
    watcher.start()
    try:
        with pipe:
            for r in pipe:
                arrivals.setdefault(r.stream_id, []).append((time.perf_counter() - t0, r.latency_ms))
    except KeyboardInterrupt:
        pass
    finally:
        done.set()
        watcher.join(5)
    since, end = window.get("since", 0.0), window.get("end", time.perf_counter() - t0)
    per_stream = {}
    for sid in pipe.streams:
        got = [(t, lat) for t, lat in arrivals.get(sid, []) if since <= t <= end]
        span = max(end - since, 1e-9)
        lat = np.asarray([l for _, l in got] or [0.0])
        per_stream[sid] = {"fps": len(got) / span, "p50_ms": float(np.percentile(lat, 50)),
                           "p99_ms": float(np.percentile(lat, 99))}
    fps = [s["fps"] for s in per_stream.values()]
    cores = (cpu["end"] - cpu["since"]) / max(end - since, 1e-9) if "end" in cpu else None
    return {
        "host_cores": None if cores is None else round(cores, 2),
        "total_fps": float(sum(fps)), "min_stream_fps": float(min(fps)) if fps else 0.0,
        "max_p99_ms": float(max(s["p99_ms"] for s in per_stream.values())) if per_stream else 0.0,
        "median_p50_ms": float(np.median([s["p50_ms"] for s in per_stream.values()])) if per_stream else 0.0,
        "all_started_s": round(window.get("all_started", 0.0), 2), "window_s": round(end - since, 2),
        "stages": {k: round(v.ms_per_frame, 3) for k, v in pipe.summary.stages.items()},
        "plan": pipe.plan.as_dict(),
    }


def _phase(kind: str, raw: dict, clip: str, n: int, seconds: float, gpu: bool) -> Any:
    """One measurement in a fresh process, so GPU memory pools (DALI, CuPy, ONNX Runtime) of one
    stream count never carry into the next."""
    cfg = load_config(raw)
    if kind == "decode":
        return decode_alone(cfg, clip, n, seconds, gpu)
    return run_pipeline(cfg, seconds, warmup=1.0 if kind == "unpaced" else 2.0)


def _isolated(*args) -> Any:
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_phase, args)


def run_stream_bench(config_path: str, overrides: list[str], clip: str, counts: list[int], seconds: float,
                     latency_ms: float, log: Callable[[str], None] = lambda m: None,
                     stop_after_failure: bool = True) -> dict[str, Any]:
    base = load_config(config_path, overrides)
    info = probe_video(Path(clip), clip)
    rate = info.fps or FALLBACK_FPS
    rows = []
    best = 0
    gpu = make_plan(base.runtime, [parse_source_uri(clip)]).decoder == "dali-gpu"
    # One short unmeasured run first: the first process on a machine pays for CUDA/cuDNN kernel
    # compilation (cached on disk afterwards), which would land in the first measured phase.
    log("bench: warm-up run (not measured)")
    _isolated("unpaced", _config(base, clip, 1, False, overrides).model_dump(mode="json"), clip, 1, 2.0, False)
    for n in counts:
        # unpaced: chunks of up to 8 frames per stream (decoder memory grows with streams x chunk)
        chunk = [] if base.runtime.stream_batch else [f"runtime.stream_batch={min(8, base.runtime.batch_size)}"]
        unpaced_cfg = _config(base, clip, n, False, overrides + chunk)
        paced_cfg = _config(base, clip, n, True, overrides)
        log(f"bench: {n} streams: decode alone")
        dec = _isolated("decode", unpaced_cfg.model_dump(mode="json"), clip, n, seconds / 2, gpu)
        log(f"bench: {n} streams: pipeline, unpaced")
        unpaced = _isolated("unpaced", unpaced_cfg.model_dump(mode="json"), clip, n, seconds / 2, gpu)
        log(f"bench: {n} streams: pipeline, real time ({rate:g} fps each)")
        paced = _isolated("paced", paced_cfg.model_dump(mode="json"), clip, n, seconds, gpu)
        plan = paced["plan"]
        realtime = paced["min_stream_fps"] >= 0.97 * rate and paced["max_p99_ms"] <= latency_ms
        rows.append({"streams": n, "decode_alone_fps": round(dec, 1), "unpaced_fps": round(unpaced["total_fps"], 1),
                     "realtime_min_stream_fps": round(paced["min_stream_fps"], 2),
                     "realtime_max_p99_ms": round(paced["max_p99_ms"], 1),
                     "realtime_median_p50_ms": round(paced["median_p50_ms"], 1),
                     "realtime": realtime, "startup_s": paced["all_started_s"], "window_s": paced["window_s"],
                     "host_cores": paced["host_cores"],
                     "host_cores_per_stream": None if paced["host_cores"] is None else round(paced["host_cores"] / n, 4),
                     "stages_ms_per_frame": unpaced["stages"], "plan": plan})
        log(f"bench: {n} streams: decode {dec:.0f} fps, unpaced {unpaced['total_fps']:.0f} fps, real time: "
            f"min {paced['min_stream_fps']:.1f} fps/stream, p99 {paced['max_p99_ms']:.0f} ms -> "
            f"{'yes' if realtime else 'no'}")
        if realtime:
            best = max(best, n)
        elif stop_after_failure and best:
            break
    cuda = probe_cuda()
    return {
        "machine": {"gpu": cuda.gpus[0].name if cuda.gpus else None, "cuda_driver": cuda.driver_version,
                    "dali": module_version("nvidia.dali"), "onnxruntime": module_version("onnxruntime"),
                    "cupy": module_version("cupy"), "pyav": module_version("av")},
        "clip": {"uri": clip, "width": info.width, "height": info.height, "fps": rate, "codec": info.codec},
        "model": str(base.model.path.name), "batch_size": base.runtime.batch_size,
        "batch_timeout_ms": base.runtime.batch_timeout_ms, "latency_limit_ms": latency_ms,
        "rows": rows, "max_realtime_streams": best,
    }


def _cores(row: dict) -> str:
    """Host cores the real-time run used (CPU time of the whole process over the window), and per stream."""
    cores = row.get("host_cores")
    return "-" if cores is None else f"{cores:.1f} ({row['host_cores_per_stream']:.3f})"


def format_stream_table(r: dict) -> str:
    m, c = r["machine"], r["clip"]
    lines = [f"{c['width']}x{c['height']} {c['codec']} at {c['fps']:g} fps, {r['model']}, batch {r['batch_size']} "
             f"(timeout {r['batch_timeout_ms']:g} ms); {m['gpu'] or 'no GPU'}, DALI {m['dali']}, ORT {m['onnxruntime']}, "
             f"CuPy {m['cupy']}", "",
             "| streams | decode alone (fps, total) | pipeline unpaced (fps, total) | real time: slowest stream fps | "
             "p99 latency ms (worst stream) | all streams up after (s) | host cores (per stream) | real time |",
             "|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for row in r["rows"]:
        lines.append(f"| {row['streams']} | {row['decode_alone_fps']:.0f} | {row['unpaced_fps']:.0f} | "
                     f"{row['realtime_min_stream_fps']:.1f} | {row['realtime_max_p99_ms']:.0f} | "
                     f"{row.get('startup_s', float('nan')):.1f} | {_cores(row)} | {'yes' if row['realtime'] else 'no'} |")
    lines += ["", f"largest real-time stream count: {r['max_realtime_streams']} "
                  f"(each >= 97% of {c['fps']:g} fps, p99 <= {r['latency_limit_ms']:g} ms)"]
    return "\n".join(lines)
