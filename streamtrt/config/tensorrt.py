"""TensorRT builder settings: precision, profiles, INT8 calibration, DLA, the engine cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator


from .base import _Strict


class ProfileConfig(_Strict):
    """An optimization profile for a model whose batch dimension is dynamic."""

    min_batch: int = Field(1, ge=1)
    opt_batch: Optional[int] = Field(None, ge=1)
    """Default: ``runtime.batch_size``."""
    max_batch: Optional[int] = Field(None, ge=1)
    """Default: ``runtime.batch_size``."""


class CalibrationConfig(_Strict):
    """INT8 entropy calibration: frames run through the same preprocessing as inference."""

    source: Optional[str] = None
    """A video file or image folder/glob; required for ``precision: int8`` unless a cache exists."""
    frames: int = Field(256, ge=1)
    batch_size: int = Field(8, ge=1)
    cache: Optional[Path] = None
    """Calibration cache file; default: beside the engine in the cache directory."""


class TensorRTConfig(_Strict):
    """How the TensorRT runner builds, caches and runs engines."""

    precision: Literal["fp32", "fp16", "int8"] = "fp16"
    """``int8`` calibrates unless the model is explicitly quantized (Q/DQ), which is taken as is."""
    workspace_mb: Optional[int] = Field(None, ge=1)
    """Builder workspace (memory-pool) limit; TensorRT's default when unset."""
    profile: ProfileConfig = ProfileConfig()
    dla_core: Union[None, int, list[int]] = None
    """Run on this DLA core (Jetson); refused where the device has no DLA. A list (``[0, 1]``) loads one
    engine per core, each serving its own streams."""
    gpu_fallback: bool = True
    """With ``dla_core``: layers DLA cannot run go to the GPU."""
    plugins: list[Path] = Field(default_factory=list)
    """Plugin libraries to load; nothing else is ever loaded."""
    cache_dir: Optional[Path] = None
    """Engine cache; default ``$XDG_CACHE_HOME/streamtrt/engines`` (``~/.cache/streamtrt/engines``)."""
    timing_cache: bool = True
    """Keep and reuse a builder timing cache in the cache directory."""
    calibration: CalibrationConfig = CalibrationConfig()

    @field_validator("dla_core")
    @classmethod
    def _distinct_cores(cls, v: Any) -> Any:
        if any(c < 0 for c in (v if isinstance(v, list) else [v] if v is not None else [])):
            raise ValueError("DLA cores are numbered from 0")
        if isinstance(v, list) and (not v or len(set(v)) != len(v)):
            raise ValueError("a list of DLA cores must name each core once (e.g. [0, 1])")
        return v


#: ByteTrack's first-association threshold as the field's common implementations set it: Ultralytics
#: ``cfg/trackers/bytetrack.yaml`` (``track_high_thresh: 0.25``) and supervision's
#: ``ByteTrack(track_activation_threshold=0.25)``.
