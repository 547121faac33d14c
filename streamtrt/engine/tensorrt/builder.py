"""ONNX -> TensorRT engine: parser, builder config (precision, profiles, DLA, plugins,
workspace, timing cache, calibration) and the build itself, with progress."""

from __future__ import annotations

import ctypes
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable, Optional, Sequence

from ...config import ProfileConfig
from ...errors import BackendUnavailableError, ConfigError, ModelError
from .module import strongly_typed_only

log = logging.getLogger("streamtrt.tensorrt")

Dims = tuple[Optional[int], ...]


@dataclass(frozen=True)
class ProfileSpec:
    """min/opt/max shapes of one input in an optimization profile."""

    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def as_tuple(self):
        return (self.name, self.min, self.opt, self.max)


@dataclass
class BuildOptions:
    precision: str = "fp16"
    workspace_mb: Optional[int] = None
    profiles: list[ProfileSpec] = field(default_factory=list)
    dla_core: Optional[int] = None
    gpu_fallback: bool = True
    plugins: list[Path] = field(default_factory=list)
    timing_cache: Optional[Path] = None
    explicitly_quantized: bool = False
    convert_fp16: bool = False  # strongly typed TensorRT (RTX): FP16 comes from an FP16 copy of the model
    calibrator: Optional[object] = None  # a trt.IInt8Calibrator for implicit INT8


def onnx_inputs(onnx_path: Path) -> list[tuple[str, Dims]]:
    """Graph inputs (initializers excluded) with dynamic dims as ``None`` (from the cached :class:`ModelInfo`)."""
    from ...model_info import read_model_info

    info = read_model_info(onnx_path)
    return [(t.name, tuple(d if isinstance(d, int) else None for d in t.shape)) for t in info.inputs]


def is_explicitly_quantized(onnx_path: Path) -> bool:
    """True for Q/DQ models, which TensorRT takes with their own scales (no calibration)."""
    from ...model_info import read_model_info

    return read_model_info(onnx_path).quantized


def compute_profiles(inputs: Sequence[tuple[str, Dims]], profile: ProfileConfig, batch_size: int,
                     input_size: Optional[tuple[int, int]] = None) -> list[ProfileSpec]:
    """One profile covering the configured batch range; none when every shape is fixed."""
    if all(all(d is not None for d in dims) for _, dims in inputs):
        return []
    opt = profile.opt_batch or batch_size
    mx = profile.max_batch or max(batch_size, opt)
    mn = profile.min_batch
    if not mn <= opt <= mx:
        raise ConfigError(f"tensorrt.profile: need min_batch <= opt_batch <= max_batch, got {mn}, {opt}, {mx}")
    if batch_size > mx:
        raise ConfigError(f"runtime.batch_size {batch_size} exceeds tensorrt.profile.max_batch {mx}")
    specs = []
    for name, dims in inputs:
        rest = list(dims[1:])
        nhwc = len(dims) == 4 and dims[3] == 3 and dims[1] != 3  # TensorFlow-style image input
        for i, d in enumerate(rest):
            if d is None:
                hw = i if nhwc else i - 1  # 0: height, 1: width; else a channel dimension
                if input_size is None or len(dims) != 4 or not 0 <= hw <= 1:
                    raise ConfigError(
                        f"model input {name} {_fmt(dims)} has dynamic dimensions besides the batch; "
                        "set model.input.size: [height, width]"
                    )
                rest[i] = input_size[hw]
        fixed_batch = dims[0]
        if fixed_batch is not None:
            specs.append(ProfileSpec(name, (fixed_batch, *rest), (fixed_batch, *rest), (fixed_batch, *rest)))
        else:
            specs.append(ProfileSpec(name, (mn, *rest), (opt, *rest), (mx, *rest)))
    return specs


def _fmt(dims: Dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def builder_flags(options: BuildOptions, trt: ModuleType) -> list[str]:
    """The BuilderFlag names a build sets, checked against what this TensorRT offers."""
    flags: list[str] = []
    typed_only = strongly_typed_only(trt)
    if options.precision == "fp16":
        if typed_only:
            if not options.convert_fp16:
                raise BackendUnavailableError(
                    f"{trt.__name__} builds strongly typed networks only: precision fp16 needs an FP16 copy "
                    "of the model (convert_fp16)"
                )
        else:
            flags.append("FP16")
    elif options.precision == "int8":
        if typed_only and not options.explicitly_quantized:
            raise BackendUnavailableError(
                f"{trt.__name__} has no INT8 calibration: use an explicitly quantized (Q/DQ) model, "
                "e.g. from `streamtrt quantize MODEL.onnx --calib CLIP --for tensorrt`"
            )
        if not typed_only:
            flags += ["INT8", "FP16"]  # FP16 as well, for the layers INT8 does not cover
    if options.dla_core is not None:
        if options.gpu_fallback:
            flags.append("GPU_FALLBACK")
    return flags


class _Logger:
    """Routes TensorRT's messages to logging and keeps the errors for the exception."""

    def __init__(self, trt: ModuleType):
        self.errors: list[str] = []
        outer = self

        class Logger(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)

            def log(self, severity, msg):
                if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                    outer.errors.append(msg)
                    log.error("TensorRT: %s", msg)
                elif severity == trt.ILogger.Severity.WARNING:
                    log.info("TensorRT: %s", msg)  # shown with -v; builds warn a lot
                else:
                    log.debug("TensorRT: %s", msg)

        self.trt_logger = Logger()


def gpu_fallback_layers(config, network) -> list[str]:
    """Names of the layers the builder config cannot place on the DLA (they run on the GPU)."""
    return [network.get_layer(i).name for i in range(network.num_layers)
            if not config.can_run_on_DLA(network.get_layer(i))]


def make_progress_monitor(trt: ModuleType, report: Callable[[str], None]):
    """A TensorRT progress monitor (TensorRT >= 10) that reports phases, or ``None``."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self.steps[phase_name] = num_steps
            depth = 0 if parent_phase is None else 1
            if depth == 0:
                report(f"build: {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            total = self.steps.get(phase_name, 0)
            if total >= 10 and (step + 1) % max(1, total // 10) == 0:
                report(f"build: {phase_name} {step + 1}/{total}")
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            self.steps.pop(phase_name, None)

    return Monitor()


def load_plugins(trt: ModuleType, plugins: Sequence[Path]) -> None:
    """Load exactly the plugin libraries named in the config, nothing else."""
    for path in plugins:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"tensorrt.plugins: plugin library not found: {path}")
        registry = trt.get_plugin_registry()
        try:
            if hasattr(registry, "load_library"):
                registry.load_library(str(path))
            else:
                ctypes.CDLL(str(path))
        except Exception as exc:
            raise ModelError(f"tensorrt.plugins: cannot load {path}: {exc}") from None


def fp16_copy(onnx_path: Path, workdir: Path) -> Path:
    """An FP16 copy of the model with FP32 inputs and outputs (onnxconverter-common)."""
    try:
        import onnx
        from onnxconverter_common import float16
    except ImportError:
        raise BackendUnavailableError(
            "precision fp16 on strongly typed TensorRT needs onnxconverter-common (pip install 'streamtrt[gpu]')"
        ) from None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns for every constant it rounds
        model = float16.convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{onnx_path.stem}.fp16.onnx"
    onnx.save(model, str(out))
    return out


def parse_onnx(trt: ModuleType, network, logger, onnx_path: Path) -> None:
    """Parse into ``network``; on failure list each error with its node."""
    parser = trt.OnnxParser(network, logger)
    if parser.parse_from_file(str(onnx_path)):
        return
    problems = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node, name, op = _safe(err.node), _safe(err.node_name), _safe(err.node_operator)
        where = f"node {node}" if node not in (None, -1) else "model"
        if op or name:
            where += f" ({op or '?'} '{name or ''}')"
        problems.append(f"{where}: {_safe(err.desc)}")
    raise ModelError(f"{onnx_path}: TensorRT cannot parse the model: " + "; ".join(problems or ["unknown error"]))


def _safe(getter):
    try:
        return getter()
    except Exception:
        return None


def build_serialized(trt: ModuleType, onnx_path: Path, options: BuildOptions,
                     report: Callable[[str], None] = lambda m: None) -> bytes:
    """Build an engine and return its serialized plan."""
    wrapper = _Logger(trt)
    logger = wrapper.trt_logger
    if hasattr(trt, "init_libnvinfer_plugins"):
        trt.init_libnvinfer_plugins(logger, "")
    load_plugins(trt, options.plugins)
    builder = trt.Builder(logger)
    if options.dla_core is not None:
        cores = getattr(builder, "num_DLA_cores", 0)
        if options.dla_core >= cores:
            raise BackendUnavailableError(
                f"tensorrt.dla_core {options.dla_core}: this device has {cores or 'no'} DLA core(s)"
            )
    flags = builder_flags(options, trt)
    network_flags = 0
    if strongly_typed_only(trt) and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        network_flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(network_flags)
    with tempfile.TemporaryDirectory(prefix="streamtrt-build-") as tmp:
        source = onnx_path
        if options.convert_fp16:
            report(f"build: converting {onnx_path.name} to FP16 (strongly typed {trt.__name__})")
            source = fp16_copy(onnx_path, Path(tmp))
        parse_onnx(trt, network, logger, source)

    config = builder.create_builder_config()
    for name in flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    if options.workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    profile = None
    if options.profiles:
        profile = builder.create_optimization_profile()
        for spec in options.profiles:
            profile.set_shape(spec.name, spec.min, spec.opt, spec.max)
        config.add_optimization_profile(profile)
    if options.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        fallback = gpu_fallback_layers(config, network)
        if fallback:
            shown = ", ".join(fallback[:20]) + (f" and {len(fallback) - 20} more" if len(fallback) > 20 else "")
            report(f"build: {len(fallback)} of {network.num_layers} layers cannot run on DLA{options.dla_core}"
                   + (" and fall back to the GPU: " if options.gpu_fallback else ": ") + shown)
            if not options.gpu_fallback:
                raise ModelError(f"{onnx_path}: {len(fallback)} layers cannot run on DLA{options.dla_core} "
                                 "and tensorrt.gpu_fallback is off")
    if options.calibrator is not None:
        config.int8_calibrator = options.calibrator
        if profile is not None:
            config.set_calibration_profile(profile)
    timing_cache = None
    if options.timing_cache is not None:
        blob = options.timing_cache.read_bytes() if options.timing_cache.is_file() else b""
        timing_cache = config.create_timing_cache(blob)
        config.set_timing_cache(timing_cache, ignore_mismatch=True)
    monitor = make_progress_monitor(trt, report)
    if monitor is not None:
        config.progress_monitor = monitor

    report(f"build: {onnx_path.name} with {trt.__name__} {trt.__version__}, flags {flags or ['(fp32)']}")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        detail = wrapper.errors[-1] if wrapper.errors else "no error message"
        raise ModelError(f"{onnx_path}: TensorRT could not build an engine: {detail}")
    if timing_cache is not None and options.timing_cache is not None:
        from .cache import atomic_write

        atomic_write(options.timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(plan)
