"""Which decoder, preprocessor and runner a job uses: ``auto`` resolved against this machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..config import RuntimeConfig
from ..engine import RUNNERS
from ..engine.onnxruntime import cuda_provider_available
from ..errors import BackendUnavailableError, ConfigError
from ..preprocess.dali import dali_available
from ..sources.uri import FFMPEG_LIVE_KINDS, SourceURI
from ..sources.gstreamer import gstreamer_available
from ..system import is_jetson, probe_cuda, tensorrt_module


@dataclass
class Plan:
    decoder: str  # "cpu" or "dali-gpu"
    preprocessor: str  # "dali-cpu", "opencv" or "dali-gpu"
    runner: str  # "onnxruntime-cpu", "onnxruntime-cuda" or "tensorrt"
    reasons: list[str] = field(default_factory=list)
    postprocessor: str = "cpu"  # "cpu" or "gpu"
    engines: Optional[list[str]] = None  # labels, when several engines serve the streams
    live_decoder: str = "cpu"  # FFmpeg live sources: "cpu" or "nvdec"
    has_live: bool = False  # whether any source is an FFmpeg live one (the plan then shows live_decoder)
    threads: Optional[dict] = None  # the CPU thread budget (runtime/threads.py), once the pipeline has planned it

    def as_dict(self) -> dict:
        out: dict = {"decoder": self.decoder, "preprocessor": self.preprocessor, "runner": self.runner}
        if self.postprocessor != "cpu":
            out["postprocessor"] = self.postprocessor
        if self.engines:
            out["engines"] = list(self.engines)
        if self.live_decoder != "cpu" and self.has_live:
            out["live_decoder"] = self.live_decoder
        if self.threads and self.threads.get("intra_op"):  # a CPU runner's thread budget
            out["threads"] = dict(self.threads)
        return out


    def format(self, indent: str = "") -> str:
        """``key: value`` lines, then the reasons: how the plan reads in logs and reports."""
        lines = [f"{indent}{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in self.as_dict().items()]
        lines += [f"{indent}  - {r}" for r in self.reasons]
        return "\n".join(lines)



GPU_POSTPROCESS_MIN_BATCH = 8
"""``runtime.postprocessor: auto`` decodes and suppresses on the GPU from this batch size up. Measured on
an NVIDIA H200 (2026-11-30, benchmarks/results/bench-h200-1080p-*post-2026-11-30.json): at batch 1 the
CuPy postprocessor took 3.2 ms a frame against 1.1 ms for the CPU one, and end to end ran 183 fps against
388; at batch 32-64 (many streams) the GPU one is what held 72 real-time streams."""

def make_plan(cfg: RuntimeConfig, uri: SourceURI | list[SourceURI] | None = None,
              live_decoder: str = "auto") -> Plan:
    """Resolve the runtime choices, explaining each in ``reasons``. ``decoder`` applies to video
    files, ``live_decoder`` (``live.decoder``) to FFmpeg live sources; image folders and
    GStreamer inputs are decoded on the CPU."""
    cuda = probe_cuda()
    has_gpu = cuda.available and cfg.device_id < len(cuda.gpus)
    reasons = []
    no_gpu_reason = cuda.error or (f"no CUDA device {cfg.device_id}" if cuda.available else "no CUDA device")

    decoder = cfg.decoder
    uris = uri if isinstance(uri, list) else ([uri] if uri is not None else [])
    is_video_file = not uris or any(u.kind == "file" for u in uris)
    if decoder == "auto":
        if has_gpu and dali_available() and is_video_file:
            decoder = "dali-gpu"
            reasons.append("decoder dali-gpu: CUDA device and DALI found")
        elif is_video_file and is_jetson() and gstreamer_available() is None:
            decoder = "gstreamer"
            reasons.append("decoder gstreamer: Jetson hardware decode (nvv4l2decoder), no DALI")
        else:
            decoder = "cpu"
            why = no_gpu_reason if not has_gpu else ("DALI not installed" if not dali_available() else "input is not a video file")
            reasons.append(f"decoder cpu: {why}")
    elif decoder == "dali-gpu":
        if not has_gpu:
            raise BackendUnavailableError(f"runtime.decoder dali-gpu needs a GPU: {no_gpu_reason}")
        if not dali_available():
            raise BackendUnavailableError("runtime.decoder dali-gpu needs DALI (pip install nvidia-dali-cuda130)")
        if not is_video_file:
            raise ConfigError("runtime.decoder dali-gpu decodes video files only; use cpu for this source")

    elif decoder == "gstreamer":
        why = gstreamer_available()
        if why:
            raise BackendUnavailableError(f"runtime.decoder gstreamer: {why}")
        if not is_video_file:
            raise ConfigError("runtime.decoder gstreamer decodes video files only; use cpu for this source")

    if decoder == "dali-gpu":
        preprocessor = "dali-gpu"
    elif cfg.preprocessor == "auto":
        preprocessor = "dali-cpu" if dali_available() else "opencv"
        reasons.append(f"preprocessor {preprocessor}: " + ("DALI found" if dali_available() else "DALI not installed"))
    elif cfg.preprocessor == "dali":
        if not dali_available():
            raise BackendUnavailableError("runtime.preprocessor dali needs DALI (pip install nvidia-dali-cuda130)")
        preprocessor = "dali-cpu"
    else:
        preprocessor = "opencv"

    runner = cfg.runner
    if runner != "auto":
        RUNNERS.lookup(runner, "runtime.runner")  # an unknown name: ConfigError with a did-you-mean
    if runner == "auto":
        if has_gpu and cuda_provider_available():
            runner = "onnxruntime-cuda"
            reasons.append("runner onnxruntime-cuda: CUDA device and onnxruntime-gpu found")
        else:
            runner = "onnxruntime-cpu"
            reasons.append("runner onnxruntime-cpu: " + (no_gpu_reason if not has_gpu else "onnxruntime-gpu not installed"))
    elif runner == "onnxruntime-cuda" and not has_gpu:
        raise BackendUnavailableError(f"runtime.runner onnxruntime-cuda needs a GPU: {no_gpu_reason}")
    elif runner == "tensorrt":
        if not has_gpu:
            raise BackendUnavailableError(f"runtime.runner tensorrt needs a GPU: {no_gpu_reason}")
        if tensorrt_module() is None:
            raise BackendUnavailableError(
                "runtime.runner tensorrt: TensorRT is not installed (pip install 'streamtrt[gpu]')")
    postprocessor = "cpu"
    if cfg.postprocessor != "cpu":
        from ..postprocess.device import cupy_available

        why = None if runner == "onnxruntime-cuda" else f"the {runner} runner keeps outputs on the host"
        if why is None and not cupy_available():
            why = "CuPy is not installed (pip install cupy-cuda12x or cupy-cuda13x)"
        if why is None and cfg.postprocessor == "auto" and cfg.batch_size < GPU_POSTPROCESS_MIN_BATCH:
            reasons.append(f"postprocessor cpu: batch {cfg.batch_size} < {GPU_POSTPROCESS_MIN_BATCH}, where "
                           "CuPy's per-call cost exceeds decode+NMS on the CPU (runtime.postprocessor: gpu forces it)")
        elif why is None:
            postprocessor = "gpu"
            reasons.append("postprocessor gpu: CuPy on the CUDA runner's outputs")
        elif cfg.postprocessor == "gpu":
            raise BackendUnavailableError(f"runtime.postprocessor gpu: {why}")
        else:
            reasons.append(f"postprocessor cpu: {why}")
    live = _live_decoder(live_decoder, has_gpu, no_gpu_reason)
    has_live = any(u.kind in FFMPEG_LIVE_KINDS for u in uris)
    if live[1] and has_live:
        reasons.append(live[1])
    return Plan(decoder, preprocessor, runner, reasons, postprocessor, live_decoder=live[0], has_live=has_live)



def _live_decoder(choice: str, has_gpu: bool, no_gpu_reason: str) -> tuple[str, str]:
    """(decoder, reason) for FFmpeg live sources."""
    if choice == "cpu":
        return "cpu", ""
    from ..sources.nvdec import nvdec_unavailable_reason

    why = no_gpu_reason if not has_gpu else (nvdec_unavailable_reason()
                                              or (None if dali_available() else "DALI not installed"))
    if why is None:
        return "nvdec", "live decoder nvdec: GPU, PyNvVideoCodec, CuPy and DALI found"
    if choice == "nvdec":
        raise BackendUnavailableError(f"live.decoder nvdec: {why}")
    return "cpu", f"live decoder cpu: {why}"
