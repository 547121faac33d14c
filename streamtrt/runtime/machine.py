"""What this machine offers the plan: a GPU, DALI, ONNX Runtime's CUDA provider, TensorRT, CuPy,
NVDEC, GStreamer, Jetson. Each fact is probed once, on first use, so a plan that never asks about
GStreamer never imports it."""

from __future__ import annotations

from functools import cached_property
from typing import Optional

from ..engine.onnxruntime import cuda_provider_available
from ..preprocess.dali import dali_available
from ..sources.gstreamer import gstreamer_available
from ..system import is_jetson, probe_cuda, tensorrt_module


class Machine:
    """Facts about this machine for device ``device_id`` (``runtime.device_id``)."""

    def __init__(self, device_id: int = 0):
        self.device_id = device_id

    @cached_property
    def _cuda(self) -> tuple[bool, str]:
        cuda = probe_cuda()
        has_gpu = cuda.available and self.device_id < len(cuda.gpus)
        why = cuda.error or (f"no CUDA device {self.device_id}" if cuda.available else "no CUDA device")
        return has_gpu, why

    @property
    def has_gpu(self) -> bool:
        """CUDA device ``device_id`` exists and the driver answers."""
        return self._cuda[0]

    @property
    def no_gpu_reason(self) -> str:
        """Why there is no usable GPU (meaningful only when :attr:`has_gpu` is false)."""
        return self._cuda[1]

    @cached_property
    def dali(self) -> bool:
        return dali_available()

    @cached_property
    def jetson(self) -> bool:
        return is_jetson()

    @cached_property
    def gstreamer_missing(self) -> Optional[str]:
        """Why GStreamer decoding is unavailable, or None when it is available."""
        return gstreamer_available()

    @cached_property
    def cuda_provider(self) -> bool:
        """ONNX Runtime's CUDA execution provider is installed."""
        return cuda_provider_available()

    @cached_property
    def tensorrt(self) -> bool:
        return tensorrt_module() is not None

    @cached_property
    def cupy(self) -> bool:
        from ..postprocess.device import cupy_available

        return cupy_available()

    @cached_property
    def nvdec_missing(self) -> Optional[str]:
        """Why NVDEC live decoding is unavailable (PyNvVideoCodec, CuPy), or None."""
        from ..sources.nvdec import nvdec_unavailable_reason

        return nvdec_unavailable_reason()
