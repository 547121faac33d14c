"""``streamtrt bench``: every stage alone, a naive sequential loop and the pipeline, side by side
in one run, so that ratios (not absolute numbers on a shared machine) carry the result."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from .config import Config, load_config
from .engine import EngineSettings, create_runner
from .tensors import DeviceView, HostCopyable
from .errors import SourceError
from .preprocess.dali import DeviceBatch, open_gpu_video_decoder
from .preprocess.opencv import OpenCVPreprocessor
from .runtime.pipeline import Pipeline
from .runtime.components import make_preprocessor
from .runtime.infer import run_batched, run_batched_on_device
from .sources import open_source
from .system import module_version, probe_cuda

_CACHED_FRAMES = 32  # decoded frames kept in memory for the preprocess measurement


@dataclass
class Measure:
    name: str
    frames: int
    wall_s: float
    cpu_s: float
    samples_ms: list[float]  # per batch (or per frame for the naive loop)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        ms = np.asarray(self.samples_ms or [0.0])
        return {
            "name": self.name, "frames": self.frames, "fps": round(self.fps, 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "cpu_ms_per_frame": round(1e3 * self.cpu_s / self.frames, 3) if self.frames else 0.0,
        }


class _Clock:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def done(self, name: str, frames: int, samples: list[float]) -> Measure:
        return Measure(name, frames, time.perf_counter() - self.wall, time.process_time() - self.cpu, samples)


def _timed(items: Iterator[Any], count: Callable[[Any], int], limit: int) -> tuple[list[Any], list[float], int]:
    """Consume ``items`` until ``limit`` frames, timing each item."""
    kept, samples, frames = [], [], 0
    while frames < limit:
        t0 = time.perf_counter()
        item = next(items, None)
        if item is None:
            break
        samples.append((time.perf_counter() - t0) * 1e3)
        frames += count(item)
        kept.append(item)
    return kept, samples, frames


class _DeviceInput:
    """A host tensor copied once into device memory (for inference-alone runs on the GPU)."""

    def __init__(self, array: np.ndarray, device_id: int):
        import onnxruntime as ort

        self._value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), "cuda", device_id)
        self._host = array
        self.shape = tuple(array.shape)
        self.itemsize = array.dtype.itemsize  # a DeviceTensor: pointer, shape and item size
        self.ptr = self._value.data_ptr()

    def slice(self, start: int, stop: int) -> DeviceView:
        return DeviceView(self.ptr, self.shape, self._host.dtype.itemsize).slice(start, stop)

    def to_host(self) -> np.ndarray:
        return self._host


def run_bench(config_path: str, overrides: list[str], frames: int, naive_decoder: str = "same",
              log: Callable[[str], None] = lambda m: None, repeat: int = 2) -> dict[str, Any]:
    """Run all measurements; returns a JSON-ready report.

    The naive loop and the pipeline run alternately ``repeat`` times and the faster run of each
    is kept, so that a burst of load from a neighbour on a shared machine hits both alike."""
    cfg = load_config(config_path, list(overrides) + [f"runtime.max_frames={frames}", "sinks=[]"])
    rt = cfg.runtime
    probe = Pipeline(cfg)  # builds and validates every component once
    plan, spec, post = probe.plan, probe.spec, probe.postprocessor
    info = probe.source_info
    n = min(frames, info.frame_count or frames)
    gpu = plan.decoder == "dali-gpu"
    measures: dict[str, Measure] = {}
    try:
        log(f"bench: {n} frames of {info.width}x{info.height} from {probe.uri.display}; plan:\n{plan.format('  ')}")
        # 1. decode alone (and, on the GPU, decode + preprocess fused in DALI)
        if gpu:
            dec = open_gpu_video_decoder(probe.uri.location, info, spec, rt.batch_size, n, device_id=rt.device_id,
                                         decode_only=True, prefetch=rt.slots)
            clock = _Clock()
            _, samples, got = _timed(iter(dec), lambda b: b.shape[0], n)
            measures["decode"] = clock.done("decode (NVDEC)", got, samples)
            dec.close()
            dec = open_gpu_video_decoder(probe.uri.location, info, spec, rt.batch_size, n, device_id=rt.device_id,
                                         prefetch=rt.slots)
            clock = _Clock()
            batches, samples, got = _timed(iter(dec), lambda b: b.shape[0], n)
            measures["decode+preprocess"] = clock.done("decode+preprocess (DALI GPU)", got, samples)
            host_tensor = batches[-1].to_host()
            dec.close()
        else:
            source = open_source(probe.uri, threads=rt.threads)
            clock = _Clock()
            decoded, samples, got = _timed(iter(source), lambda f: 1, n)
            measures["decode"] = clock.done("decode (FFmpeg CPU)", got, samples)
            source.close()
            if not decoded:
                raise SourceError(f"{probe.uri.display}: no frames decoded")
            cache = [f.image for f in decoded[:_CACHED_FRAMES]]
            del decoded
            preprocess = make_preprocessor(probe.plan, probe.spec, probe.config, rt.batch_size)
            clock, samples, done = _Clock(), [], 0
            while done < n:
                batch = [cache[(done + i) % len(cache)] for i in range(min(rt.batch_size, n - done))]
                t0 = time.perf_counter()
                host_tensor, _ = preprocess(batch)
                samples.append((time.perf_counter() - t0) * 1e3)
                done += len(batch)
            measures["preprocess"] = clock.done(f"preprocess ({plan.preprocessor})", done, samples)

        # 2. inference alone, on the same kind of input the pipeline feeds it
        name = probe.runner.inputs[0].name
        feed = _DeviceInput(host_tensor, rt.device_id) if probe.runner.device == "cuda" else host_tensor
        bsz = int(host_tensor.shape[0])
        for _ in range(3):
            outputs = run_batched(probe.runner, name, feed)
        clock, samples, done = _Clock(), [], 0
        runner = probe.runner
        if runner.device != "cuda" and runner.in_flight > 1 and (runner.max_batch is None or bsz <= runner.max_batch):
            # The thread plan runs several CPU batches side by side: so does inference alone.
            started: list[float] = []
            while done < n or started:
                if done < n:
                    started.append(time.perf_counter())
                    runner.submit({name: feed})
                    done += bsz
                if len(started) >= runner.in_flight or done >= n:
                    outputs = runner.collect()
                    samples.append((time.perf_counter() - started.pop(0)) * 1e3)
        while done < n:
            t0 = time.perf_counter()
            outputs = run_batched(probe.runner, name, feed)
            samples.append((time.perf_counter() - t0) * 1e3)
            done += bsz
        measures["infer"] = clock.done(f"inference ({plan.runner})", done, samples)

        # 3. postprocess alone: the postprocessor `run` uses (decode + NMS on the GPU when the plan says so)
        measures["postprocess"], _ = postprocess_alone(probe.runner, name, feed, post, probe.device_post,
                                                       spec.geometry(info.height, info.width),
                                                       (info.height, info.width), n)
    finally:
        probe.close()

    naive_runs, pipe_runs = [], []
    for i in range(repeat):
        log(f"bench: naive sequential loop ({i + 1}/{repeat})")
        naive_runs.append(_naive_loop(cfg, plan, spec, post, probe, n, naive_decoder))
        log(f"bench: pipeline end to end ({i + 1}/{repeat})")
        pipe = Pipeline(cfg)
        clock = _Clock()
        summary = pipe.run()
        pipe_runs.append((clock.done("pipeline end to end", summary.frames, []), summary.latency))
    measures["naive"] = max(naive_runs, key=lambda m: m.fps)
    measures["pipeline"], lat = max(pipe_runs, key=lambda r: r[0].fps)
    tracking = None
    if cfg.tracker.enabled:
        # The same pipeline without tracking and analytics, alternating, for their cost in fps.
        plain_cfg = load_config(cfg.model_dump(mode="json"), ["tracker.enabled=false", "analytics={}"])
        with_runs, without_runs = [], []
        for i in range(repeat):
            log(f"bench: pipeline with and without tracking ({i + 1}/{repeat})")
            for target, conf in ((without_runs, plain_cfg), (with_runs, cfg)):
                pipe = Pipeline(conf)
                clock = _Clock()
                summary = pipe.run()
                target.append((clock.done("pipeline", summary.frames, []), summary))
        best_with = max(with_runs + [(measures["pipeline"], None)], key=lambda r: r[0].fps)[0]
        best_without = max(without_runs, key=lambda r: r[0].fps)[0]
        track_stats = next((s.stages.get("track+analytics") for _, s in with_runs if s is not None), None)
        tracking = {
            "fps_with": round(best_with.fps, 2), "fps_without": round(best_without.fps, 2),
            "fps_cost": round(1 - best_with.fps / best_without.fps, 4) if best_without.fps else None,
            "ms_per_frame": round(track_stats.ms_per_frame, 3) if track_stats else None,
        }
    report = _report(cfg, plan.as_dict(), measures, lat, gpu, naive_decoder, info)
    if tracking is not None:
        report["tracking"] = tracking
    return report


def postprocess_alone(runner, input_name: str, feed: Any, post: Callable, device_post: Optional[Callable],
                      geometry: Any, size: tuple[int, int], n: int) -> tuple[Measure, list]:
    """Time the postprocessing `run` does after inference on one batch of real outputs, repeated
    until ``n`` frames; returns the measure and the last batch's detections.

    Without a device postprocessor, ``post`` (decode, NMS, mapping to source pixels) runs on the
    runner's host outputs. With one (``plan.postprocessor`` gpu), the outputs stay on the device as
    :class:`~streamtrt.runtime.infer.InferStage` hands them over, and each repetition runs both
    steps the pipeline runs per batch: ``device_post`` (decode, NMS, the final boxes to the host)
    and ``post`` (the final boxes mapped to source pixels)."""
    rows = int(feed.shape[0])
    if device_post is None:
        outputs = run_batched(runner, input_name, feed)
        step = lambda: post(outputs, geoms, sizes)  # noqa: E731
        label = "postprocess"
    else:
        limit = runner.max_batch
        if limit is not None and rows != limit:  # one engine-sized batch, as the pipeline feeds it
            feed, rows = _rows(feed, limit), limit
        on_device = runner.infer_on_device({input_name: feed})
        step = lambda: post(device_post(on_device), geoms, sizes)  # noqa: E731
        label = "postprocess (decode+NMS on the GPU)"
    geoms, sizes = [geometry] * rows, [size] * rows
    clock, samples, done, last = _Clock(), [], 0, []
    while done < n:
        t0 = time.perf_counter()
        last = step()
        samples.append((time.perf_counter() - t0) * 1e3)
        done += rows
    return clock.done(label, done, samples), last


def _rows(feed: Any, count: int) -> Any:
    """``feed`` cut or zero-padded to ``count`` rows (a device input is cut in place when it can be)."""
    rows = int(feed.shape[0])
    if rows > count and isinstance(feed, (_DeviceInput, DeviceBatch)):
        return feed.slice(0, count)
    host = feed.to_host() if isinstance(feed, HostCopyable) else np.asarray(feed)
    if rows >= count:
        return np.ascontiguousarray(host[:count])
    return np.concatenate([host, np.zeros((count - rows,) + host.shape[1:], host.dtype)])


def _infer(runner, input_name: str, tensor: Any, device_post: Optional[Callable]) -> dict:
    """Inference as the pipeline's InferStage runs it: with the device postprocessor when there is one."""
    if device_post is None:
        return run_batched(runner, input_name, tensor)
    return run_batched_on_device(runner, input_name, tensor, device_post)


def _naive_loop(cfg: Config, plan, spec, post, probe: Pipeline, n: int, naive_decoder: str) -> Measure:
    """One frame at a time through decode, preprocess, inference and postprocess, on one thread."""
    rt = cfg.runtime
    runner = create_runner(plan.runner, EngineSettings.from_config(cfg, spec))
    name = runner.inputs[0].name
    samples: list[float] = []
    try:
        if plan.decoder == "dali-gpu" and naive_decoder == "same":
            dec = open_gpu_video_decoder(probe.uri.location, probe.source_info, spec, 1, n, device_id=rt.device_id,
                                         prefetch=1)
            frames_iter = iter(dec)
            clock = _Clock()
            for _ in range(n):
                t0 = time.perf_counter()
                batch = next(frames_iter, None)
                if batch is None:
                    break
                out = _infer(runner, name, batch, probe.device_post)
                post(out, [dec.geometry], [(probe.source_info.height, probe.source_info.width)])
                samples.append((time.perf_counter() - t0) * 1e3)
            dec.close()
            return clock.done("naive loop (DALI GPU decode)", len(samples), samples)
        if naive_decoder == "opencv":
            import cv2

            cap = cv2.VideoCapture(probe.uri.location)
            read = lambda: (lambda ok_img: ok_img[1] if ok_img[0] else None)(cap.read())  # noqa: E731
            preprocess = OpenCVPreprocessor(spec)
            label = "naive loop (OpenCV decode + preprocess)"
        else:
            source = iter(open_source(probe.uri, threads=rt.threads))
            read = lambda: (lambda f: f.image if f is not None else None)(next(source, None))  # noqa: E731
            preprocess = (OpenCVPreprocessor(spec) if plan.preprocessor == "opencv"
                          else make_preprocessor(probe.plan, probe.spec, probe.config, 1))
            label = f"naive loop ({plan.preprocessor} preprocess)"
        clock = _Clock()
        for _ in range(n):
            t0 = time.perf_counter()
            image = read()
            if image is None:
                break
            tensor, geoms = preprocess([image])
            out = _infer(runner, name, tensor, probe.device_post)
            post(out, geoms, [image.shape[:2]])
            samples.append((time.perf_counter() - t0) * 1e3)
        return clock.done(label, len(samples), samples)
    finally:
        runner.deactivate()


def _report(cfg: Config, plan: dict, m: dict[str, Measure], latency, gpu: bool, naive_decoder: str, info) -> dict:
    cuda = probe_cuda()
    e2e, naive, infer = m["pipeline"], m["naive"], m["infer"]
    stage_keys = [k for k in ("decode", "decode+preprocess", "preprocess", "infer", "postprocess") if k in m]
    ratios: dict[str, float] = {
        "e2e_vs_naive": e2e.fps / naive.fps if naive.fps else 0.0,
        "e2e_vs_inference_alone": e2e.fps / infer.fps if infer.fps else 0.0,
    }
    if gpu:
        ratios["e2e_vs_min_decode_inference"] = e2e.fps / min(m["decode"].fps, infer.fps)
    else:
        # The stages share the cores: throughput is bounded by total CPU time per frame over the
        # core count, and by the slowest stage.
        work = [k for k in stage_keys if k != "decode+preprocess"]
        cpu_ms = sum(1e3 * m[k].cpu_s / max(m[k].frames, 1) for k in work)
        cores = os.cpu_count() or 1
        bound = min(cores * 1e3 / cpu_ms if cpu_ms else float("inf"), min(m[k].fps for k in work))
        ratios["cpu_bound_fps"] = bound
        ratios["e2e_vs_cpu_bound"] = e2e.fps / bound if bound else 0.0
        ratios["stage_cpu_ms_per_frame"] = cpu_ms
    return {
        "machine": {
            "cpu_cores": os.cpu_count(), "platform": f"{platform.system()} {platform.machine()}",
            "gpu": cuda.gpus[0].name if cuda.gpus else None, "cuda_driver": cuda.driver_version,
            "dali": module_version("nvidia.dali"), "onnxruntime": module_version("onnxruntime"),
            "pyav": module_version("av"), "opencv": module_version("cv2"), "numpy": np.__version__,
        },
        "source": {"uri": str(cfg.source), "width": info.width, "height": info.height, "codec": info.codec},
        "model": Path(cfg.model.path).name,
        "plan": plan,
        "batch_size": cfg.runtime.batch_size,
        "slots": cfg.runtime.slots,
        "naive_decoder": naive_decoder,
        "repeat": "best of the alternating runs",
        "stages": {k: m[k].as_dict() for k in stage_keys},
        "naive": naive.as_dict(),
        "pipeline": {**e2e.as_dict(), "latency_p50_ms": round(latency.p50_ms, 2) if latency else None,
                     "latency_p99_ms": round(latency.p99_ms, 2) if latency else None},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
    }


def format_table(r: dict) -> str:
    """A Markdown table of the report, ready for the README."""
    mach = r["machine"]
    head = (f"{r['source']['width']}x{r['source']['height']} {r['source']['codec']}, {r['model']}, "
            f"batch {r['batch_size']}, plan {r['plan']['decoder']} / {r['plan']['preprocessor']} / {r['plan']['runner']}; "
            f"{mach['gpu'] or 'no GPU'}, {mach['cpu_cores']} cores, DALI {mach['dali']}, ORT {mach['onnxruntime']}")
    lines = [head, "", "| measurement | fps | p50 ms | p99 ms | CPU ms/frame |", "|---|---:|---:|---:|---:|"]
    for key, s in r["stages"].items():
        lines.append(f"| {s['name']} alone | {s['fps']:.1f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['cpu_ms_per_frame']:.2f} |")
    nv = r["naive"]
    lines.append(f"| {nv['name']} | {nv['fps']:.1f} | {nv['p50_ms']:.2f} | {nv['p99_ms']:.2f} | {nv['cpu_ms_per_frame']:.2f} |")
    p = r["pipeline"]
    lines.append(f"| **pipeline end to end** | **{p['fps']:.1f}** | {p['latency_p50_ms']} | {p['latency_p99_ms']} | {p['cpu_ms_per_frame']:.2f} |")
    lines.append("")
    lines.append("ratios: " + ", ".join(f"{k} {v}" for k, v in r["ratios"].items()))
    if "tracking" in r:
        t = r["tracking"]
        lines.append(f"tracking + analytics: {t['ms_per_frame']} ms/frame in the pipeline; end to end {t['fps_with']} fps "
                     f"with, {t['fps_without']} fps without ({t['fps_cost']:.1%} cost)")
    return "\n".join(lines)
