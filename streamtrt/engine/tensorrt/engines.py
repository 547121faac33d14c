"""From engine settings to a ready engine: compute the key, load it from the cache or build it (under a
lock, with a log line saying why), and store it atomically."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Optional

from ...errors import BackendUnavailableError, ConfigError
from ...system import probe_cuda
from .builder import (BuildOptions, build_serialized, compute_profiles, is_explicitly_quantized, onnx_inputs)
from .cache import EngineCache, EngineKey, default_cache_dir, hash_model, sha256_file
from ..settings import EngineSettings
from .module import load_tensorrt, module_label, strongly_typed_only

log = logging.getLogger("streamtrt.tensorrt")


@dataclass
class PreparedEngine:
    plan: bytes
    key: EngineKey
    path: Path
    built: bool
    reason: str


def device_identity(device_id: int, dla_core: Optional[int], gpu_fallback: bool) -> str:
    """The GPU (name, compute capability, SM count) or DLA core an engine is built for."""
    cuda = probe_cuda()
    if not cuda.available or device_id >= len(cuda.gpus):
        raise BackendUnavailableError(f"TensorRT needs a CUDA device: {cuda.error or f'no device {device_id}'}")
    g = cuda.gpus[device_id]
    gpu = f"{g.name} sm{g.compute_capability[0]}.{g.compute_capability[1]} {g.sm_count}SM"
    if dla_core is not None:
        return f"DLA{dla_core} on {gpu}" + (" with GPU fallback" if gpu_fallback else "")
    return gpu


def cache_root(settings: EngineSettings) -> Path:
    return Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()


def calibration_cache_path(settings: EngineSettings, model_sha: str) -> Path:
    c = settings.calibration
    return Path(c.cache) if c.cache else cache_root(settings) / f"{settings.model_path.stem}-{model_sha[:16]}.calib"


def engine_key(settings: EngineSettings, trt: ModuleType, device: str, model_sha: str, explicit_q: bool,
               profiles, calibration: Optional[Path]) -> EngineKey:
    t = settings
    calib_sha = None
    if t.precision == "int8" and not explicit_q and calibration is not None and calibration.is_file():
        calib_sha = sha256_file(calibration)
    options = (("explicit_quantization", str(explicit_q)), ("gpu_fallback", str(t.gpu_fallback)),
               ("fp16_from_converted_model", str(t.precision == "fp16" and strongly_typed_only(trt))))
    return EngineKey(
        model_sha256=model_sha, tensorrt=module_label(trt), device=device, precision=t.precision,
        profiles=tuple(p.as_tuple() for p in profiles), workspace_mb=t.workspace_mb,
        calibration_sha256=calib_sha, plugins_sha256=tuple(sha256_file(Path(p)) for p in t.plugins),
        options=options,
    )


@dataclass
class KeyParts:
    """What an engine key was computed from; a build needs them again."""

    model_sha: str
    explicit_q: bool
    profiles: list
    device: str
    calib_path: Optional[Path]


def key_for(settings: EngineSettings, trt: ModuleType, model_sha: Optional[str] = None) -> tuple[EngineKey, KeyParts]:
    """The engine key ``settings`` give on this machine, and the parts it was computed from."""
    t = settings
    model = settings.model_path
    model_sha = model_sha or hash_model(model)
    explicit_q = t.precision == "int8" and is_explicitly_quantized(model)
    from ...model_info import read_model_info

    size = settings.input_size or read_model_info(model).imgsz  # as the pipeline picks it (model_setup)
    profiles = compute_profiles(onnx_inputs(model), t.profile, settings.batch_size, size)
    device = device_identity(settings.device_id, t.dla_core, t.gpu_fallback)
    calib_path = calibration_cache_path(settings, model_sha) if t.precision == "int8" and not explicit_q else None
    parts = KeyParts(model_sha, explicit_q, profiles, device, calib_path)
    return engine_key(settings, trt, device, model_sha, explicit_q, profiles, calib_path), parts


def prepare_engine(settings: EngineSettings, report: Callable[[str], None] = log.info,
                   trt: Optional[ModuleType] = None, force: bool = False) -> PreparedEngine:
    """The engine for ``settings``: from the cache when its key matches, else built and cached.

    Raises :class:`~streamtrt.errors.ConfigError` (missing model, plugin, calibration frames),
    :class:`~streamtrt.errors.BackendUnavailableError` (no TensorRT or CUDA device) or
    :class:`~streamtrt.errors.ModelError` (the build fails)."""
    trt = trt or load_tensorrt()
    t = settings
    model = settings.model_path
    if not model.is_file():
        raise ConfigError(f"model.path: model not found: {model}")
    for p in t.plugins:
        if not Path(p).is_file():
            raise ConfigError(f"tensorrt.plugins: plugin library not found: {p}")
    key, parts = key_for(settings, trt)
    model_sha, explicit_q, profiles, device, calib_path = (
        parts.model_sha, parts.explicit_q, parts.profiles, parts.device, parts.calib_path)
    cache = EngineCache(cache_root(settings))
    if not force:
        plan = cache.load(key, model.name)
        if plan is not None:
            return PreparedEngine(plan, key, cache.entry(key, model.name).engine, False, "cached")
    why = "forced" if force else (cache.explain_miss(key, model.name) or "no cached engine for this model")
    report(f"building TensorRT engine for {model.name} ({why})")
    with cache.lock(key):
        plan = None if force else cache.load(key, model.name)  # another process may have built it meanwhile
        if plan is not None:
            return PreparedEngine(plan, key, cache.entry(key, model.name).engine, False, "built by another process")
        options = BuildOptions(
            precision=t.precision, workspace_mb=t.workspace_mb, profiles=profiles, dla_core=t.dla_core,
            gpu_fallback=t.gpu_fallback, plugins=[Path(p) for p in t.plugins],
            timing_cache=(cache.root / f"timing-{key.digest[:8]}-{module_label(trt).replace(' ', '-')}.cache"
                          if t.timing_cache else None),
            explicitly_quantized=explicit_q,
            convert_fp16=t.precision == "fp16" and strongly_typed_only(trt),
        )
        calibrator = None
        if calib_path is not None:
            calibrator = _calibrator(settings, trt, calib_path, profiles, model_sha, report)
            options.calibrator = calibrator
        cache.root.mkdir(parents=True, exist_ok=True)
        try:
            plan = build_serialized(trt, model, options, report)
        finally:
            if calibrator is not None:
                calibrator.release()
        if calib_path is not None:  # the calibration cache now exists: key the engine by it
            key = engine_key(settings, trt, device, model_sha, explicit_q, profiles, calib_path)
        entry = cache.store(key, model.name, plan, extra={"source_model": str(model)})
    report(f"engine cached at {entry.engine} ({len(plan) / 1e6:.1f} MB)")
    return PreparedEngine(plan, key, entry.engine, True, why)


def _calibrator(settings: EngineSettings, trt: ModuleType, calib_path: Path, profiles, model_sha: str,
                report: Callable[[str], None] = log.info):
    from ..calibration import load_calibration_set
    from .calibrator import make_entropy_calibrator

    c = settings.calibration
    if calib_path.is_file():
        return make_entropy_calibrator(trt, None, c.batch_size, calib_path)
    if not c.source:
        raise ConfigError("tensorrt.calibration.source: INT8 needs calibration frames (a video or image folder) "
                          "or an existing calibration cache")
    spec = settings.calibration_spec  # the preprocessing inference will use (the model's setup)
    if spec is None:
        raise ValueError("EngineSettings.calibration_spec is needed to calibrate from frames: "
                         "pass ModelSetup.spec() to EngineSettings.from_config")
    if profiles and not (profiles[0].min[0] <= c.batch_size <= profiles[0].max[0]):
        raise ConfigError(f"tensorrt.calibration.batch_size {c.batch_size} is outside the profile's batch range")
    if c.frames < c.batch_size:
        raise ConfigError(f"tensorrt.calibration: frames ({c.frames}) must be at least batch_size ({c.batch_size})")
    # The same cached frames as `streamtrt quantize` (ONNX Runtime Q/DQ): one calibration set.
    cset = load_calibration_set(model_sha, c.source, spec, c.frames, read_frames=settings.calibration_frames,
                                report=report)
    return make_entropy_calibrator(trt, cset.batches(c.batch_size), c.batch_size, calib_path)
