"""Memory growth per frame, one part of the pipeline at a time (a leak bisection).

``python benchmarks/leakhunt.py CONFIG PART [--frames N] [--warmup N] [--trace N]``

PART is one of: ``decode`` (the live FFmpeg source on the config's video looped by FFmpeg's
``movie`` filter, unpaced), ``opencv`` / ``dali`` (preprocessing of recorded frames), ``infer``
(the runner on one preprocessed tensor), ``post`` (postprocess + tracker + analytics on recorded
model outputs, frame indices increasing), ``sink`` (JSONL records of recorded results),
``pipeline`` / ``pipeline-notrack`` (the whole pipeline on the unpaced loop, with and without the
tracker); on a GPU, ``dali-gpu`` (DaliGpuPreprocessor on recorded host frames, as a live stream
decoded on the CPU beside ``live.decoder: nvdec`` has it) and ``gpu`` (that, then the CUDA runner
and the GPU postprocessor). Threads are counted too, and named (``/proc/self/task/*/comm``) at the
most seen: a library that starts threads per call shows up by its threads' name.

After ``--warmup`` frames it samples, every ``--every`` frames, the resident size as it is and
after glibc's ``malloc_trim(0)`` (memory the allocator held but no object used goes back to the
system: what remains is live), and Python's traced memory (``--trace``). The report is the
least-squares slope of each, in bytes per frame: growth of the trimmed RSS is memory kept alive;
growth of the raw RSS only is the allocator's fragmentation or free lists.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import itertools
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_PAGE = os.sysconf("SC_PAGE_SIZE")
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def trimmed_rss() -> int:
    """RSS after glibc's ``malloc_trim(0)``. No ``gc.collect()`` first: objects in reference
    cycles that only the cyclic collector frees are part of what the run holds (a decoded frame
    in such a cycle held its pixels and its scaler's threads until a collection)."""
    if hasattr(_libc, "malloc_trim"):
        _libc.malloc_trim(0)
    return rss()


def heap_in_use_mb():
    from streamtrt.soak import heap_in_use_mb as heap

    return heap()


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def thread_names() -> dict:
    from streamtrt.soak import thread_names as names

    return names()


def slope(xs, ys) -> float:
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0]) if len(xs) >= 3 else float("nan")


def soak_config(config: str, extra: list[str], source: str = None):
    from streamtrt.config import load_config
    from streamtrt.soak import looped_source
    from streamtrt.sources.file import probe_video
    from streamtrt.sources.uri import parse_source_uri

    cfg = load_config(config, [])
    first = cfg.streams()[0]
    uri = parse_source_uri(first.uri)
    fps = probe_video(Path(uri.location), uri.display, "0").fps or 10.0
    stream = looped_source(str(Path(uri.location).resolve()), fps, realtime=False)
    if source:  # e.g. "testsrc2=size=768x576:rate=10": a lavfi graph instead of the looped video
        stream = {"uri": f"ffmpeg://{source}", "format": "lavfi", "live": True, "id": "soak"}
    out = Path(tempfile.mkdtemp(prefix="leakhunt-"))
    return load_config(config, [f"sources={json.dumps([stream])}", "source=null",
                                f"sinks={json.dumps(['jsonl:' + str(out / 'x.jsonl')])}",
                                "runtime.max_frames=null", *extra]), stream


def live_frames(cfg):
    from streamtrt.sources.live import FFmpegLiveSource
    from streamtrt.sources.uri import parse_source_uri

    sc = cfg.streams()[0]
    src = FFmpegLiveSource(parse_source_uri(sc.uri), "leak", sc, cfg.live)
    return src, iter(src)


def steps(part: str, cfg):
    """An endless iterator; each item is one frame processed by ``part``."""
    from streamtrt.runtime.pipeline import Pipeline

    if part == "decode":
        src, frames = live_frames(cfg)
        for _ in frames:
            yield
        return
    if part.startswith("pipeline"):
        pipe = Pipeline(cfg)
        with pipe:
            for _ in pipe:
                yield
        return
    pipe = Pipeline(cfg)
    src, frames = live_frames(cfg)
    recorded = [f for f in itertools.islice(frames, 300)]
    src.close()
    spec = pipe.spec
    if part in ("opencv", "dali"):
        from streamtrt.preprocess.dali import DaliCpuPreprocessor
        from streamtrt.preprocess.opencv import OpenCVPreprocessor

        pre = OpenCVPreprocessor(spec) if part == "opencv" else DaliCpuPreprocessor(spec, 1, 1)
        for f in itertools.cycle(recorded):
            pre([f.image])
            yield
    runner = pipe.runner
    if not runner.is_active:
        runner.activate()
    name = runner.inputs[0].name
    if part in ("dali-gpu", "gpu"):  # the GPU path of a live stream: host frames -> DALI GPU -> CUDA runner
        from streamtrt.preprocess.dali import DaliGpuPreprocessor
        from streamtrt.runtime.infer import run_batched, run_batched_on_device

        pre = DaliGpuPreprocessor(spec, 1, cfg.runtime.device_id)
        for f in itertools.cycle(recorded):
            tensor, _ = pre([f.image])
            if part == "gpu":
                if pipe.device_post is not None:
                    run_batched_on_device(runner, name, tensor, pipe.device_post)
                else:
                    run_batched(runner, name, tensor)
            yield
    from streamtrt.preprocess.opencv import OpenCVPreprocessor

    pre = OpenCVPreprocessor(spec)
    if part == "infer":
        tensor, _ = pre([recorded[0].image])
        while True:
            runner.infer({name: tensor})
            yield
    outs = []
    for f in recorded:
        tensor, geoms = pre([f.image])
        outs.append((runner.infer({name: tensor}), geoms, f.image.shape[:2]))
    from streamtrt.runtime.messages import FrameMeta, FrameResult
    from streamtrt.runtime.tracking import StreamTracking

    c = cfg
    tracking = StreamTracking(c.tracker, c.analytics, c.postprocess.score_threshold, 10.0)
    if part == "post":
        for i in itertools.count():
            o, geoms, (h, w) = outs[i % len(outs)]
            dets = pipe.postprocessor(o, geoms, [(h, w)])
            tracking.update(dets[0], FrameMeta("leak", i, i / 10.0, h, w))
            yield
    if part == "sink":
        from streamtrt.sinks.jsonl import JsonlSink

        results = []
        for i, (o, geoms, (h, w)) in enumerate(outs):
            d = pipe.postprocessor(o, geoms, [(h, w)])[0]
            d, events = tracking.update(d, FrameMeta("leak", i, i / 10.0, h, w))
            results.append(FrameResult("leak", i, i / 10.0, w, h, d, None, 0.0, events, None))
        sink = JsonlSink(os.devnull)
        sink.open(10.0)
        for i in itertools.count():
            r = results[i % len(results)]
            r.frame_index = i
            sink.write(r)
            for e in r.events or []:
                sink.write_event(e)
            yield
    raise SystemExit(f"unknown part {part}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("part")
    ap.add_argument("--frames", type=int, default=6000)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--trace", type=int, default=0, help="tracemalloc: list the N sites that grew most")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--source", help="a lavfi filter graph to use instead of the config's video looped")
    ap.add_argument("--json")
    args = ap.parse_args()
    extra = list(args.overrides)
    if args.part == "pipeline-notrack":
        extra.append("tracker.enabled=false")
    cfg, _ = soak_config(args.config, extra, args.source)
    if args.trace:
        tracemalloc.start(12)
    rows = []
    busiest: dict = {}
    snap = None
    t0 = time.monotonic()
    for n, _ in enumerate(steps(args.part, cfg), 1):
        if n >= args.warmup and (n - args.warmup) % args.every == 0:
            raw = rss()
            row = {"frames": n, "rss": raw, "trimmed": trimmed_rss(), "threads": threads(),
                   "heap": heap_in_use_mb(),
                   "traced": tracemalloc.get_traced_memory()[0] if args.trace else None}
            rows.append(row)
            if row["threads"] >= max(r["threads"] for r in rows):
                busiest = {"threads": row["threads"], "frames": n, "names": thread_names()}
            print(f"{args.part} {n:7d} frames {time.monotonic() - t0:7.0f} s  RSS {raw / 2**20:8.2f} MB  "
                  f"trimmed {row['trimmed'] / 2**20:8.2f} MB  heap in use {row['heap'] or 0:8.3f} MB  "
                  f"threads {row['threads']}"
                  + (f"  traced {row['traced'] / 2**20:.2f} MB" if args.trace else ""), file=sys.stderr, flush=True)
            if args.trace and snap is None:
                snap = tracemalloc.take_snapshot()
        if n >= args.frames:
            break
    fit = rows[1:] if len(rows) > 3 else rows  # the first sample still carries the warm-up's transients
    xs = [r["frames"] for r in fit]
    report = {"part": args.part, "frames": args.frames, "warmup": args.warmup,
              "rss_bytes_per_frame": round(slope(xs, [r["rss"] for r in fit]), 1),
              "trimmed_bytes_per_frame": round(slope(xs, [r["trimmed"] for r in fit]), 1),
              "heap_bytes_per_frame": (round(slope(xs, [r["heap"] * 2**20 for r in fit]), 1)
                                       if fit and fit[0]["heap"] is not None else None),
              "threads": [rows[0]["threads"], rows[-1]["threads"]] if rows else None,
              "threads_at_most": busiest, "threads_at_end": thread_names(),
              "env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC")}}
    if args.trace:
        report["traced_bytes_per_frame"] = round(slope(xs, [r["traced"] for r in fit]), 1)
        end = tracemalloc.take_snapshot()
        report["top"] = [{"kb": round(s.size_diff / 1024, 1), "count": s.count_diff,
                          "where": [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in s.traceback][-5:]}
                         for s in end.compare_to(snap, "traceback")[:args.trace]]
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({**report, "rows": rows}, indent=1))
    os._exit(0)  # do not wait for the live source's threads


if __name__ == "__main__":
    main()
