"""Which decoder, preprocessor, runner and postprocessor a job uses (``auto`` resolved against this
machine), its CPU thread split, its memory budget and each engine's settings: resolved once, before
anything is built, into a frozen :class:`Plan` and the effective :class:`~streamtrt.config.Config`.

Resolution runs in the order the facts become known, each step a pure function returning new
frozen values (nothing is rewritten afterwards):

1. :func:`plan_choices` (config, machine, source URIs): every ``auto`` choice and the thread split,
   all that opening the sources needs;
2. :func:`resolve_plan` (the choices, the streams' probed frame sizes, the model's input): the
   memory budget (TensorRT workspace, ``runtime.slots``) and the per-engine configs, all that
   building the runners needs: runners are built with the fitted values;
3. :func:`settle_postprocessor` (the output decoder one run of the model picked): the GPU
   postprocessor falls back to the CPU for formats it has no GPU decoder for.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..config import Config, RuntimeConfig
from ..engine.settings import EngineSettings
from ..engine import RUNNERS
from ..errors import BackendUnavailableError, ConfigError
from ..sources.uri import FFMPEG_LIVE_KINDS, SourceURI
from .budget import derive_workspace_mb, plan_budget
from .machine import Machine
from .threads import ThreadPlan, plan_threads

log = logging.getLogger("streamtrt")


@dataclass(frozen=True)
class Plan:
    """The resolved run. ``as_dict``/``format`` show the choices (summary, logs); the settings
    below them (``thread_plan``, ``engine_settings``) are what the stages and runners are built from."""

    decoder: str  # "cpu", "dali-gpu" or "gstreamer" (video files)
    preprocessor: str  # "dali-cpu", "opencv" or "dali-gpu"
    runner: str  # "onnxruntime-cpu", "onnxruntime-cuda" or "tensorrt"
    reasons: tuple[str, ...] = ()
    postprocessor: str = "cpu"  # "cpu" or "gpu"
    engines: Optional[tuple[str, ...]] = None  # labels, when several engines serve the streams
    live_decoder: str = "cpu"  # FFmpeg live sources: "cpu" or "nvdec"
    has_live: bool = False  # whether any source is an FFmpeg live one (the plan then shows live_decoder)
    thread_plan: Optional[ThreadPlan] = None  # the CPU thread budget (runtime/threads.py)
    engine_settings: tuple[EngineSettings, ...] = field(default=(), compare=False, repr=False)
    """What each engine's runner is built from (:class:`~streamtrt.engine.settings.EngineSettings`)."""

    @property
    def threads(self) -> Optional[dict]:
        return self.thread_plan.as_dict() if self.thread_plan is not None else None

    def decoder_for(self, uri: SourceURI) -> str:
        """One stream's decoder: video files use ``decoder``; FFmpeg live sources ``live_decoder``
        (``nvdec`` or ``cpu``); image folders and the rest decode on the CPU."""
        if uri.kind in FFMPEG_LIVE_KINDS and self.live_decoder == "nvdec":
            return "nvdec"
        return self.decoder if uri.kind == "file" else "cpu"

    def as_dict(self) -> dict:
        out: dict = {"decoder": self.decoder, "preprocessor": self.preprocessor, "runner": self.runner}
        if self.postprocessor != "cpu":
            out["postprocessor"] = self.postprocessor
        if self.engines:
            out["engines"] = list(self.engines)
        if self.live_decoder != "cpu" and self.has_live:
            out["live_decoder"] = self.live_decoder
        threads = self.threads
        if threads and threads.get("intra_op"):  # a CPU runner's thread budget
            out["threads"] = dict(threads)
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
              live_decoder: str = "auto", machine: Optional[Machine] = None) -> Plan:
    """Resolve the stage choices, explaining each in ``reasons``. ``decoder`` applies to video
    files, ``live_decoder`` (``live.decoder``) to FFmpeg live sources; image folders and
    GStreamer inputs are decoded on the CPU. Raises :class:`BackendUnavailableError` for a
    choice this machine cannot run, :class:`ConfigError` for one the sources do not allow."""
    m = machine or Machine(cfg.device_id)
    has_gpu, no_gpu_reason = m.has_gpu, m.no_gpu_reason
    reasons = []
    uris = uri if isinstance(uri, list) else ([uri] if uri is not None else [])
    is_video_file = not uris or any(u.kind == "file" for u in uris)
    decoder = cfg.decoder
    if decoder == "auto":
        if has_gpu and m.dali and is_video_file:
            decoder = "dali-gpu"
            reasons.append("decoder dali-gpu: CUDA device and DALI found")
        elif is_video_file and m.jetson and m.gstreamer_missing is None:
            decoder = "gstreamer"
            reasons.append("decoder gstreamer: Jetson hardware decode (nvv4l2decoder), no DALI")
        else:
            decoder = "cpu"
            why = no_gpu_reason if not has_gpu else ("DALI not installed" if not m.dali else "input is not a video file")
            reasons.append(f"decoder cpu: {why}")
    elif decoder == "dali-gpu":
        if not has_gpu:
            raise BackendUnavailableError(f"runtime.decoder dali-gpu needs a GPU: {no_gpu_reason}")
        if not m.dali:
            raise BackendUnavailableError("runtime.decoder dali-gpu needs DALI (pip install nvidia-dali-cuda130)")
        if not is_video_file:
            raise ConfigError("runtime.decoder dali-gpu decodes video files only; use cpu for this source")
    elif decoder == "gstreamer":
        if m.gstreamer_missing:
            raise BackendUnavailableError(f"runtime.decoder gstreamer: {m.gstreamer_missing}")
        if not is_video_file:
            raise ConfigError("runtime.decoder gstreamer decodes video files only; use cpu for this source")

    if decoder == "dali-gpu":
        preprocessor = "dali-gpu"
    elif cfg.preprocessor == "auto":
        preprocessor = "dali-cpu" if m.dali else "opencv"
        reasons.append(f"preprocessor {preprocessor}: " + ("DALI found" if m.dali else "DALI not installed"))
    elif cfg.preprocessor == "dali":
        if not m.dali:
            raise BackendUnavailableError("runtime.preprocessor dali needs DALI (pip install nvidia-dali-cuda130)")
        preprocessor = "dali-cpu"
    else:
        preprocessor = "opencv"

    runner = cfg.runner
    if runner != "auto":
        RUNNERS.lookup(runner, "runtime.runner")  # an unknown name: ConfigError with a did-you-mean
    if runner == "auto":
        if has_gpu and m.cuda_provider:
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
        if not m.tensorrt:
            raise BackendUnavailableError(
                "runtime.runner tensorrt: TensorRT is not installed (pip install 'streamtrt[gpu]')")
    postprocessor = _postprocessor(cfg, runner, m, reasons)
    live, live_reason = _live_decoder(live_decoder, m)
    has_live = any(u.kind in FFMPEG_LIVE_KINDS for u in uris)
    if live_reason and has_live:
        reasons.append(live_reason)
    return Plan(decoder, preprocessor, runner, tuple(reasons), postprocessor, live_decoder=live, has_live=has_live)


def _postprocessor(cfg: RuntimeConfig, runner: str, m: Machine, reasons: list[str]) -> str:
    if cfg.postprocessor == "cpu":
        return "cpu"
    why = None if runner == "onnxruntime-cuda" else f"the {runner} runner keeps outputs on the host"
    if why is None and not m.cupy:
        why = "CuPy is not installed (pip install cupy-cuda12x or cupy-cuda13x)"
    if why is None and cfg.postprocessor == "auto" and cfg.batch_size < GPU_POSTPROCESS_MIN_BATCH:
        reasons.append(f"postprocessor cpu: batch {cfg.batch_size} < {GPU_POSTPROCESS_MIN_BATCH}, where "
                       "CuPy's per-call cost exceeds decode+NMS on the CPU (runtime.postprocessor: gpu forces it)")
        return "cpu"
    if why is None:
        reasons.append("postprocessor gpu: CuPy on the CUDA runner's outputs")
        return "gpu"
    if cfg.postprocessor == "gpu":
        raise BackendUnavailableError(f"runtime.postprocessor gpu: {why}")
    reasons.append(f"postprocessor cpu: {why}")
    return "cpu"


def _live_decoder(choice: str, m: Machine) -> tuple[str, str]:
    """(decoder, reason) for FFmpeg live sources."""
    if choice == "cpu":
        return "cpu", ""
    why = m.no_gpu_reason if not m.has_gpu else (m.nvdec_missing or (None if m.dali else "DALI not installed"))
    if why is None:
        return "nvdec", "live decoder nvdec: GPU, PyNvVideoCodec, CuPy and DALI found"
    if choice == "nvdec":
        raise BackendUnavailableError(f"live.decoder nvdec: {why}")
    return "cpu", f"live decoder cpu: {why}"


def plan_choices(config: Config, uris: Sequence[SourceURI], *, keep_alive: bool = False,
                 machine: Optional[Machine] = None) -> Plan:
    """Step 1: :func:`make_plan` for ``config``'s sources (``uris``, in ``config.streams()``
    order), with the CPU thread split (:func:`~streamtrt.runtime.threads.plan_threads`).
    ``keep_alive``: streams may be added while running (latency matters, as for live sources)."""
    rt = config.runtime
    plan = make_plan(rt, list(uris), config.live.decoder, machine)
    latency = keep_alive or config.control.enabled or any(
        sc.pace or (sc.live if sc.live is not None else u.is_live) for sc, u in zip(config.streams(), uris))
    threads = plan_threads(plan.runner, plan.decoder, plan.preprocessor, len(uris), config.engine_count(),
                           rt.threads, latency=latency)
    for reason in threads.reasons:
        log.info("plan: %s", reason)
    return dataclasses.replace(plan, reasons=plan.reasons + threads.reasons, thread_plan=threads)


def resolve_plan(config: Config, plan: Plan, *, frame_sizes: Sequence[tuple[int, int]], spec: Any,
                 keep_images: bool, keep_alive: bool = False, report: Callable[[str], None] = log.warning,
                 calibration_frames: Optional[Callable[..., Any]] = None) -> tuple[Plan, Config]:
    """Step 2: the effective config, and the plan with each engine's settings, before any runner exists.

    With ``runtime.memory_budget_mb``: the TensorRT workspace (when not set) is derived from the
    budget, and ``runtime.slots`` lowered until frames, tensors, model and workspace fit
    (:func:`~streamtrt.runtime.budget.plan_budget`; ``report`` says so), or a :class:`ConfigError`.
    ``frame_sizes``: (height, width) of each stream, as probed (unknown: 1080p). ``spec``: the
    model input's :class:`~streamtrt.preprocess.spec.PreprocessSpec` (also what INT8 calibration
    frames are preprocessed with; ``calibration_frames`` reads them on a calibration-cache miss).

    Per engine: CUDA graphs off where live streams decode on NVDEC beside the runner, and a CPU
    runner's intra-op threads from the thread plan (unless ``runtime.threads`` is set).
    """
    rt = config.runtime
    reasons = list(plan.reasons)
    if rt.memory_budget_mb and plan.runner == "tensorrt" and config.tensorrt.workspace_mb is None:
        ws = derive_workspace_mb(rt.memory_budget_mb, None)
        config = config.model_copy(update={"tensorrt": config.tensorrt.model_copy(update={"workspace_mb": ws})})
    if rt.memory_budget_mb:
        sizes = [(h or 1080, w or 1920) for h, w in frame_sizes] or [(1080, 1920)]
        fitted = plan_budget(
            rt.memory_budget_mb, frame_hw=max(sizes, key=lambda hw: hw[0] * hw[1]),
            input_chw=(3, spec.height, spec.width), itemsize=spec.np_dtype.itemsize,
            batch=rt.batch_size, slots=rt.slots, keep_images=keep_images,
            model_bytes=Path(config.model.path).stat().st_size,
            workspace_mb=config.tensorrt.workspace_mb if plan.runner == "tensorrt" else None,
            engines=config.engine_count(),
        )
        if fitted.slots != rt.slots:
            report(f"memory budget {rt.memory_budget_mb} MB: runtime.slots lowered from {rt.slots} to {fitted.slots}")
            rt = rt.model_copy(update={"slots": fitted.slots})
            config = config.model_copy(update={"runtime": rt})
    engines = EngineSettings.per_engine(config, spec, calibration_frames)
    update: dict[str, Any] = {}
    if rt.cuda_graph == "auto" and plan.live_decoder == "nvdec" and (plan.has_live or keep_alive):
        # ONNX Runtime captures its graph on a run while NVDEC decoders allocate and synchronize
        # on other threads, which invalidates the capture (cudaErrorStreamCaptureInvalidated).
        reasons.append("cuda graph off: live streams decode on NVDEC beside the runner")
        update["cuda_graph"] = False
    threads = plan.thread_plan
    if rt.threads is None and plan.runner == "onnxruntime-cpu" and threads is not None and threads.intra_op:
        update["threads"] = threads.intra_op  # the thread plan's share of the cores per run
    if update:
        engines = [e.replace(**update) for e in engines]
    labels = tuple(_engine_label(i, e, plan.runner) for i, e in enumerate(engines)) if len(engines) > 1 else None
    return dataclasses.replace(plan, reasons=tuple(reasons), engines=labels, engine_settings=tuple(engines)), config


def settle_postprocessor(plan: Plan, decoder: Any, configured: str) -> Plan:
    """Step 3: the plan once the model's output decoder is known. The GPU postprocessor decodes
    NanoDet outputs only; for another format it falls back to the CPU (``runtime.postprocessor:
    auto``) or raises :class:`ConfigError` (``gpu``, the ``configured`` value)."""
    from ..postprocess.decoders.nanodet import NanoDetDecoder

    if plan.postprocessor != "gpu" or isinstance(decoder, NanoDetDecoder):
        return plan
    if configured == "gpu":
        raise ConfigError(f"runtime.postprocessor gpu supports NanoDet outputs; this model's are {decoder.name}")
    return dataclasses.replace(plan, postprocessor="cpu",
                               reasons=plan.reasons + (f"postprocessor cpu: no GPU decoder for {decoder.name} outputs",))


def _engine_label(index: int, settings: EngineSettings, runner: str) -> str:
    core = settings.dla_core
    return f"DLA{core}" if runner == "tensorrt" and core is not None else f"engine {index}"
