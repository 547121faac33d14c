"""Runners: ONNX Runtime (CPU, CUDA) and TensorRT behind one interface (:class:`Runner`).

A runner kind registers itself in :data:`~streamtrt.engine.registry.RUNNERS`; the imports below
are the registration lines of the built-in kinds.
"""

from .base import Runner
from .registry import RUNNERS, create_runner
from .settings import EngineSettings
from . import onnxruntime  # noqa: F401 - registers onnxruntime-cpu, onnxruntime-cuda
from .tensorrt import runner as _tensorrt_runner  # noqa: F401 - registers tensorrt
from .onnxruntime import OnnxRuntimeRunner, cuda_provider_available

__all__ = ["EngineSettings", "OnnxRuntimeRunner", "RUNNERS", "Runner", "create_runner", "cuda_provider_available"]
