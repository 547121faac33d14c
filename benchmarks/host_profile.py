"""Where a multi-stream run spends its host CPU: per thread kind, and per Python function.

Runs N copies of a clip through one pipeline (paced like cameras by default) and samples every
thread of the process every ``--interval`` seconds: the CPU time each thread used since the last
sample (``/proc/self/task/TID/schedstat``, nanoseconds) is charged to what the thread was doing at
the sample: for Python threads the innermost frame (``sys._current_frames``) and the stage the
thread runs; native threads (DALI, ONNX Runtime, FFmpeg, CUDA) by their kernel thread name. A
statistical profile: short functions are charged to whatever was running at the sample.

  python3 benchmarks/host_profile.py configs/multi-stream.yaml /tmp/vtest-1080p.mp4 --streams 64 \\
      --duration 20 --set runtime.batch_size=64 --set runtime.stream_batch=4 --set runtime.batch_timeout_ms=40

Prints cores used in all, cores per stream, then the top thread kinds and functions; ``--json``
writes them too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

# HOST_PROFILE_STREAMTRT: profile another checkout's streamtrt (an older commit, for before/after)
sys.path.insert(0, os.environ.get("HOST_PROFILE_STREAMTRT") or str(Path(__file__).resolve().parents[1]))

from streamtrt.bench_streams import _config  # noqa: E402
from streamtrt.config import load_config  # noqa: E402
from streamtrt.runtime.pipeline import Pipeline  # noqa: E402

_DIGITS = re.compile(r"[-_ ]?(s?\d+|e\d+)$")


def _cpu_ns(tid: int) -> int:
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            return int(f.read().split()[0])
    except OSError:
        return 0


def _comm(tid: int) -> str:
    try:
        with open(f"/proc/self/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _kind(name: str) -> str:
    """A thread name without its stream or engine suffix (``decode+preprocess-s12`` -> ``decode+preprocess``)."""
    prev = None
    while prev != name:
        prev, name = name, _DIGITS.sub("", name)
    return name or "?"


def _where(frame) -> str:
    code = frame.f_code
    return f"{Path(code.co_filename).name}:{code.co_name}:{frame.f_lineno}"


class Sampler:
    def __init__(self, interval: float):
        self.interval = interval
        self.by_kind: Counter = Counter()
        self.by_function: Counter = Counter()
        self.by_kind_function: Counter = Counter()
        self.threads: Counter = Counter()
        self.last: dict[int, int] = {}
        self.stop = threading.Event()
        self.me = None

    def _sample(self, charge: bool) -> None:
        py = {t.native_id: t for t in threading.enumerate()}
        frames = sys._current_frames()
        kinds = Counter()
        for entry in os.listdir("/proc/self/task"):
            tid = int(entry)
            if tid == self.me:
                continue
            ns = _cpu_ns(tid)
            delta = ns - self.last.get(tid, ns)
            self.last[tid] = ns
            t = py.get(tid)
            kind = _kind(t.name) if t is not None else "native:" + _kind(_comm(tid))
            kinds[kind] += 1
            if not charge or delta <= 0:
                continue
            self.by_kind[kind] += delta
            if t is not None and t.ident in frames:
                where = _where(frames[t.ident])
                self.by_function[where] += delta
                self.by_kind_function[(kind, where)] += delta
        self.threads = kinds

    def run(self) -> None:
        self.me = threading.get_native_id()
        self._sample(False)
        while not self.stop.wait(self.interval):
            self._sample(True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("clip")
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds sampled, after the settle time")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after start before sampling")
    ap.add_argument("--interval", type=float, default=0.25,
                    help="seconds between samples: CPU per thread kind is exact at any interval (schedstat); "
                         "shorter ones attribute functions better but hold the GIL more often")
    ap.add_argument("--unpaced", action="store_true")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--json")
    a = ap.parse_args()
    base = load_config(a.config, a.overrides)
    cfg = _config(base, a.clip, a.streams, not a.unpaced, a.overrides)
    pipe = Pipeline(cfg)
    sampler = Sampler(a.interval)
    frames = Counter()
    out: dict = {}

    def window() -> None:
        if sampler.stop.wait(a.settle):
            return
        f0, c0, t0 = sum(frames.values()), time.process_time(), time.perf_counter()
        th = threading.Thread(target=sampler.run, daemon=True)
        th.start()
        time.sleep(a.duration)
        sampler.stop.set()
        th.join(5)
        wall = time.perf_counter() - t0
        out.update(wall_s=wall, cores=(time.process_time() - c0) / wall,
                   fps=(sum(frames.values()) - f0) / wall)
        pipe.stop()

    watcher = threading.Thread(target=window, daemon=True)
    watcher.start()
    with pipe:
        for r in pipe:
            frames[r.stream_id] += 1
    watcher.join(10)
    total = sum(sampler.by_kind.values()) or 1
    secs = out.get("wall_s", 1.0)
    res = {
        "streams": a.streams, "paced": not a.unpaced, "overrides": a.overrides, "fps_total": round(out.get("fps", 0), 1),
        "cores_used": round(out.get("cores", 0), 2), "cores_per_stream": round(out.get("cores", 0) / a.streams, 4),
        "threads": dict(sampler.threads.most_common()),
        "by_kind_cores": {k: round(v / 1e9 / secs, 3) for k, v in sampler.by_kind.most_common()},
        "by_function_cores": {k: round(v / 1e9 / secs, 3) for k, v in sampler.by_function.most_common(a.top)},
        "by_kind_function_cores": [[k, f, round(v / 1e9 / secs, 3)]
                                   for (k, f), v in sampler.by_kind_function.most_common(a.top)],
        "sampled_share": round(total / 1e9 / secs / max(out.get("cores", 1e-9), 1e-9), 3),
    }
    print(f"{a.streams} streams ({'paced' if not a.unpaced else 'unpaced'}): {res['fps_total']} fps in all, "
          f"{res['cores_used']} cores = {res['cores_per_stream']} per stream; threads {sum(sampler.threads.values())}")
    print("\ncores by thread kind (count):")
    for k, v in list(res["by_kind_cores"].items())[:a.top]:
        print(f"  {v:7.3f}  {k} ({sampler.threads.get(k, 0)})")
    print("\ncores by thread kind and Python function:")
    for k, f, v in res["by_kind_function_cores"]:
        print(f"  {v:7.3f}  {k:28s} {f}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
