"""What this machine offers: CUDA devices (through the driver API, no extra package needed),
DALI, ONNX Runtime providers, TensorRT. Used by the auto-selection and by ``streamtrt doctor``."""

from __future__ import annotations

import ctypes
import importlib
import importlib.metadata
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

from .fileio import read_text


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    compute_capability: tuple[int, int]
    sm_count: int
    memory_mb: int


@dataclass
class CudaInfo:
    driver_version: Optional[str] = None
    gpus: list[GpuInfo] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def available(self) -> bool:
        return bool(self.gpus)


_CU_ATTR_SM_COUNT = 16
_CU_ATTR_CC_MAJOR = 75
_CU_ATTR_CC_MINOR = 76


@lru_cache(maxsize=1)
def probe_cuda() -> CudaInfo:
    """Ask the CUDA driver (libcuda) for its version and devices; never raises."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return CudaInfo(error="no CUDA driver (libcuda.so.1 not found)")
    info = CudaInfo()
    try:
        rc = cuda.cuInit(0)
        if rc != 0:
            return CudaInfo(error=f"cuInit failed with CUDA error {rc}")
        version = ctypes.c_int()
        cuda.cuDriverGetVersion(ctypes.byref(version))
        info.driver_version = f"{version.value // 1000}.{version.value % 1000 // 10}"
        count = ctypes.c_int()
        cuda.cuDeviceGetCount(ctypes.byref(count))
        for i in range(count.value):
            dev = ctypes.c_int()
            cuda.cuDeviceGet(ctypes.byref(dev), i)
            name = ctypes.create_string_buffer(256)
            cuda.cuDeviceGetName(name, 256, dev)
            attrs = []
            for attr in (_CU_ATTR_CC_MAJOR, _CU_ATTR_CC_MINOR, _CU_ATTR_SM_COUNT):
                v = ctypes.c_int()
                cuda.cuDeviceGetAttribute(ctypes.byref(v), attr, dev)
                attrs.append(v.value)
            mem = ctypes.c_size_t()
            cuda.cuDeviceTotalMem_v2(ctypes.byref(mem), dev)
            info.gpus.append(GpuInfo(i, name.value.decode(errors="replace"), (attrs[0], attrs[1]), attrs[2],
                                     mem.value // (1024 * 1024)))
    except (AttributeError, OSError) as exc:
        info.error = f"CUDA driver query failed: {exc}"
    return info


def package_version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def module_version(module: str) -> Optional[str]:
    """The version of an importable module, or ``None`` if it cannot be imported."""
    try:
        mod = importlib.import_module(module)
    except Exception:
        return None
    return str(getattr(mod, "__version__", "unknown"))


def onnxruntime_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except Exception:
        return []
    return list(ort.get_available_providers())


def tensorrt_module() -> Optional[str]:
    """Name of the importable TensorRT module (``tensorrt`` or ``tensorrt_rtx``), if any."""
    for name in ("tensorrt", "tensorrt_rtx_bindings", "tensorrt_rtx"):
        if module_version(name) is not None:
            return name
    return None


def is_jetson() -> bool:
    return platform.machine() == "aarch64" and read_text("/etc/nv_tegra_release") is not None
