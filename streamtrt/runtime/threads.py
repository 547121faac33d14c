"""The CPU thread budget: how many threads inference, decode and preprocessing get on this machine.

On a small CPU every stage competes for the same cores. ONNX Runtime's intra-op pool alone fills
them, and its idle threads spin. Decode and preprocess threads then take cores from inference,
and inference takes them back. Measured with ONNX Runtime 1.32 on a shared (busy) 2-core AMD EPYC
with an ONNX YOLOv8n at 640: one run with 1 thread took 140 CPU ms; with 2 threads, 150-170 CPU ms
without spinning and 250 CPU ms with it. So on few cores the plan runs whole frames side
by side, each on one thread, without spinning. Frame-level parallelism has no synchronisation
inside a run, and decode and preprocessing fill the gaps between runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

SMALL_MACHINE_CORES = 4
"""Up to this many cores per engine, inference runs frames side by side on one thread each."""


@dataclass(frozen=True)
class ThreadPlan:
    """Thread counts for one run; ``None`` leaves a library at its own default."""

    cores: int
    intra_op: Optional[int]
    """ONNX Runtime intra-op threads per run (CPU runner)."""
    workers: int
    """Inference runs in flight at once (frame-level parallelism on the CPU runner)."""
    spin: bool
    """Whether ONNX Runtime's idle intra-op threads busy-wait."""
    decode: Optional[int]
    """FFmpeg (PyAV) decoder threads per stream."""
    preprocess: Optional[int]
    """DALI CPU pipeline threads; also OpenCV's pool when it is set (``opencv``)."""
    opencv: Optional[int] = None
    """``cv2.setNumThreads`` value to apply, or None to leave OpenCV alone."""
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        out = {"cores": self.cores, "intra_op": self.intra_op, "workers": self.workers, "spin": self.spin,
               "decode": self.decode, "preprocess": self.preprocess}
        if self.opencv is not None:
            out["opencv"] = self.opencv
        return out


def plan_threads(runner: str, decoder: str, preprocessor: str, streams: int = 1, engines: int = 1,
                 threads: Optional[int] = None, cores: Optional[int] = None, latency: bool = False) -> ThreadPlan:
    """Thread counts for a job, with a reason for each choice.

    ``threads`` is ``runtime.threads``: when set, it is the intra-op, DALI and decoder thread
    count as before (one inference run at a time). ``cores`` defaults to the CPUs this process
    may run on. ``latency``: live or paced streams (or streams added while running), where each
    frame's result must leave at once; several runs in flight would hold a finished result until
    the next frame arrives, so inference runs one frame at a time on all the cores.
    """
    cores = cores or _usable_cores()
    streams, engines = max(1, streams), max(1, engines)
    reasons: list[str] = []
    cpu_runner = runner == "onnxruntime-cpu"
    gpu_decode = decoder == "dali-gpu"
    # Spinning only pays where decode and preprocessing leave the CPU to inference (GPU decode).
    spin = gpu_decode
    if threads is not None:
        reasons.append(f"threads: runtime.threads {threads} for inference, DALI and FFmpeg, one run at a time")
        return ThreadPlan(cores, threads, 1, spin, threads, threads, None, tuple(reasons))
    if not cpu_runner:
        return ThreadPlan(cores, None, 1, spin, None, None, None, tuple(reasons))
    share = max(1, cores // engines)
    if latency:
        workers, intra = 1, share
        reasons.append(f"threads: 1 inference run at a time with {intra} intra-op thread(s): live or paced "
                       "streams get each result at once")
    elif share <= SMALL_MACHINE_CORES:
        workers, intra = share, 1
        reasons.append(f"threads: {workers} inference run(s) side by side with 1 intra-op thread each "
                       f"({cores} cores{f', {engines} engines' if engines > 1 else ''}): no synchronisation "
                       "inside a run, and decode/preprocess fill the gaps")
    else:
        workers, intra = 2, share // 2
        reasons.append(f"threads: 2 inference runs side by side with {intra} intra-op threads each ({share} cores "
                       "per engine)")
    if not spin:
        reasons.append("threads: ONNX Runtime spinning off: decode and preprocessing share the cores")
    decode = preprocess = opencv = None
    if cores <= SMALL_MACHINE_CORES and not gpu_decode:
        decode = preprocess = 1
        opencv = 1 if preprocessor == "opencv" else None
        reasons.append(f"threads: 1 FFmpeg and 1 {'OpenCV' if opencv else 'DALI'} thread per stream "
                       f"on {cores} cores: their own pools would contend with inference")
    return ThreadPlan(cores, intra, workers, spin, decode, preprocess, opencv, tuple(reasons))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1
