"""Finding TensorRT: the full ``tensorrt`` package or TensorRT-RTX (``tensorrt_rtx_bindings``),
whose Python APIs are the same where both have a feature."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional

from ...errors import BackendUnavailableError

MODULE_NAMES = ("tensorrt", "tensorrt_rtx_bindings", "tensorrt_rtx")


def load_tensorrt(name: Optional[str] = None) -> ModuleType:
    """Import TensorRT (``name``, or the first of :data:`MODULE_NAMES` that imports)."""
    errors = []
    for candidate in ([name] if name else MODULE_NAMES):
        try:
            return importlib.import_module(candidate)
        except Exception as exc:  # ImportError, or OSError from a missing libnvinfer
            errors.append(f"{candidate}: {exc}")
    raise BackendUnavailableError(
        "TensorRT is not available (install tensorrt, or tensorrt-rtx bindings): " + "; ".join(errors)
    )


def module_label(trt: ModuleType) -> str:
    """``tensorrt 10.13.0`` or ``tensorrt_rtx 1.7.1``: part of every engine's cache key."""
    name = trt.__name__.split(".")[0]
    if name.startswith("tensorrt_rtx"):
        name = "tensorrt_rtx"
    return f"{name} {getattr(trt, '__version__', 'unknown')}"


def strongly_typed_only(trt: ModuleType) -> bool:
    """TensorRT-RTX has no FP16/INT8 builder flags: precision comes from the network itself."""
    return not hasattr(trt.BuilderFlag, "FP16")
