"""What a runner needs to know, and nothing else: :class:`EngineSettings`.

Runners and the TensorRT engine cache take these settings, never the job's
:class:`~streamtrt.config.Config`, so the engine layer does not depend on how a job is
described. :meth:`EngineSettings.from_config` is the one place that reads them from a config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ..config import CalibrationConfig, ProfileConfig
from ..errors import ConfigError
from ..preprocess.spec import PreprocessSpec

if TYPE_CHECKING:
    from ..config import Config


@dataclass(frozen=True)
class EngineSettings:
    """One engine's settings (one model instance; one DLA core at most).

    Units: ``workspace_mb`` in MiB; ``batch_size`` in frames per inference call.
    """

    model_path: Path
    """The ONNX model (``model.path``)."""
    batch_size: int = 1
    """Frames per inference call (``runtime.batch_size``); the TensorRT profile's default optimum."""
    input_size: Optional[tuple[int, int]] = None
    """``(height, width)`` for a model whose input size is dynamic (``model.input.size``)."""
    device_id: int = 0
    """CUDA device ordinal (``runtime.device_id``)."""
    threads: Optional[int] = None
    """ONNX Runtime intra-op threads (``runtime.threads``; ``None``: its default)."""
    slots: int = 2
    """TensorRT batches in flight, each with its own context and buffers (``runtime.slots``)."""
    cuda_graph: Union[bool, str] = "auto"
    """CUDA-graph replay: ``True``, ``False`` or ``"auto"`` (``runtime.cuda_graph``)."""
    precision: str = "fp16"
    """TensorRT precision: ``fp32``, ``fp16`` or ``int8`` (``tensorrt.precision``)."""
    workspace_mb: Optional[int] = None
    """TensorRT builder workspace limit in MiB (``tensorrt.workspace_mb``; ``None``: TensorRT's default)."""
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    """TensorRT optimisation profile batch range (``tensorrt.profile``)."""
    dla_core: Optional[int] = None
    """The DLA core this engine runs on (one entry of ``tensorrt.dla_core``), or ``None`` for the GPU."""
    gpu_fallback: bool = True
    """With ``dla_core``: layers the DLA cannot run go to the GPU."""
    plugins: tuple[Path, ...] = ()
    """TensorRT plugin libraries to load (``tensorrt.plugins``)."""
    cache_dir: Optional[Path] = None
    """Engine cache folder (``tensorrt.cache_dir``; ``None``: the user cache)."""
    timing_cache: bool = True
    """Keep TensorRT's timing cache beside the engines (``tensorrt.timing_cache``)."""
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    """INT8 calibration: source, frames, batch size, cache file (``tensorrt.calibration``)."""
    calibration_spec: Optional[PreprocessSpec] = None
    """The preprocessing inference uses, applied to calibration frames (INT8 with a calibration source
    and no cache needs it: :class:`~streamtrt.model_setup.ModelSetup`'s ``spec()``)."""
    calibration_frames: Optional[Callable[..., Any]] = None
    """Reads calibration frames on a calibration-cache miss (``read_frames`` of
    ``engine.calibration.load_calibration_set``); ``None``: its default reader."""

    @classmethod
    def from_config(cls, config: "Config", calibration_spec: Optional[PreprocessSpec] = None,
                    calibration_frames: Optional[Callable[..., Any]] = None) -> "EngineSettings":
        """The settings of one engine of ``config`` (see ``Config.engine_configs()`` for several).

        Raises :class:`~streamtrt.errors.ConfigError` when ``tensorrt.dla_core`` lists several cores."""
        t, rt = config.tensorrt, config.runtime
        if isinstance(t.dla_core, list):
            raise ConfigError("tensorrt.dla_core lists several cores: take one engine's config from "
                              "Config.engine_configs()")
        size = config.model.input.size
        return cls(
            model_path=Path(config.model.path), batch_size=rt.batch_size,
            input_size=tuple(size) if size is not None else None, device_id=rt.device_id, threads=rt.threads,
            slots=rt.slots, cuda_graph=rt.cuda_graph, precision=t.precision, workspace_mb=t.workspace_mb,
            profile=t.profile, dla_core=t.dla_core, gpu_fallback=t.gpu_fallback,
            plugins=tuple(Path(p) for p in t.plugins), cache_dir=Path(t.cache_dir) if t.cache_dir else None,
            timing_cache=t.timing_cache, calibration=t.calibration, calibration_spec=calibration_spec,
            calibration_frames=calibration_frames,
        )

    @classmethod
    def per_engine(cls, config: "Config", calibration_spec: Optional[PreprocessSpec] = None,
                   calibration_frames: Optional[Callable[..., Any]] = None) -> list["EngineSettings"]:
        """One :class:`EngineSettings` per engine the job loads (``runtime.engines``, or one per
        core of a ``tensorrt.dla_core`` list)."""
        return [cls.from_config(c, calibration_spec, calibration_frames) for c in config.engine_configs()]

    def replace(self, **changes) -> "EngineSettings":
        """A copy with ``changes`` (e.g. a fitted ``workspace_mb`` or ``slots``)."""
        return dataclasses.replace(self, **changes)
