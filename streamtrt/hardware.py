"""Readings of the machine's sensors, for metrics: GPU memory (NVML, through ``nvidia-ml-py``),
thermal zones (sysfs) and power rails (Jetson's INA3221 monitors, via hwmon). Each returns an
empty list where the machine has no such sensor or driver; none raises."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

_nvml_lock = threading.Lock()
_nvml_ready: bool | None = None  # None: not tried yet


def _nvml():
    """The ``pynvml`` module once NVML is initialised, or None (no package, no driver)."""
    global _nvml_ready
    try:
        import pynvml
    except ImportError:
        return None
    with _nvml_lock:
        if _nvml_ready is None:
            try:
                pynvml.nvmlInit()
                _nvml_ready = True
            except pynvml.NVMLError:
                _nvml_ready = False
    return pynvml if _nvml_ready else None


def gpu_memory() -> list[tuple[int, int, int]]:
    """(GPU index, bytes used, bytes total) of every GPU NVML sees (all processes' use)."""
    nvml = _nvml()
    if nvml is None:
        return []
    out = []
    try:
        count = nvml.nvmlDeviceGetCount()
    except nvml.NVMLError:
        return []
    for i in range(count):
        try:
            mem = nvml.nvmlDeviceGetMemoryInfo(nvml.nvmlDeviceGetHandleByIndex(i))
        except nvml.NVMLError:
            continue
        out.append((i, int(mem.used), int(mem.total)))
    return out


def thermal_zones(root: str = "/sys/class/thermal") -> list[tuple[str, float]]:
    """(type, degrees C) of every readable thermal zone."""
    out = []
    for zone in sorted(Path(root).glob("thermal_zone*")):
        try:
            out.append(((zone / "type").read_text().strip(), int((zone / "temp").read_text()) / 1000))
        except (OSError, ValueError):
            continue
    return out


def power_rails(root: str = "/sys/bus/i2c/drivers/ina3221") -> list[tuple[str, float]]:
    """(rail label, watts) from Jetson's INA3221 monitors, where the kernel exposes them."""
    out = []
    for label in sorted(Path(root).glob("*/hwmon/hwmon*/in*_label")):
        index = label.name.split("_")[0][2:]
        try:
            volts = int((label.parent / f"in{index}_input").read_text()) / 1000
            amps = int((label.parent / f"curr{index}_input").read_text()) / 1000
            out.append((label.read_text().strip(), volts * amps))
        except (OSError, ValueError):
            continue
    return out


def mps_running(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether a CUDA MPS control daemon serves this machine: its pipe directory
    (``CUDA_MPS_PIPE_DIRECTORY``, default ``/tmp/nvidia-mps``, as NVIDIA's MPS guide has it) holds
    the ``control`` socket. Without MPS, processes sharing a GPU time-slice it: their kernels never
    run side by side."""
    env = os.environ if environ is None else environ
    return (Path(env.get("CUDA_MPS_PIPE_DIRECTORY") or "/tmp/nvidia-mps") / "control").exists()

