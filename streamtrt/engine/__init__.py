"""Runners: ONNX Runtime (CPU, CUDA) now; TensorRT slots in behind the same interface."""

from .base import DeviceTensor, Runner, TensorInfo
from .onnxruntime import OnnxRuntimeRunner, cuda_provider_available

__all__ = ["DeviceTensor", "Runner", "TensorInfo", "OnnxRuntimeRunner", "cuda_provider_available"]
