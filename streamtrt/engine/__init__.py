"""Runners: ONNX Runtime (CPU, CUDA) now; TensorRT slots in behind the same interface."""

from .base import DeviceTensor, Runner, TensorInfo
from .onnxruntime import OnnxRuntimeRunner, cuda_provider_available

__all__ = ["DeviceTensor", "Runner", "TensorInfo", "OnnxRuntimeRunner", "cuda_provider_available"]


def create_runner(name: str, model_path, device_id: int = 0, threads=None, spin: bool = True) -> Runner:
    """Create and activate the runner a plan names.

    ``spin=False`` keeps idle CPU-runner threads from busy-waiting, for runs where other stages
    share the cores."""
    from ..errors import BackendUnavailableError

    if name in ("onnxruntime-cpu", "onnxruntime-cuda"):
        runner: Runner = OnnxRuntimeRunner(model_path, provider=name.split("-")[1], device_id=device_id,
                                           threads=threads, spin=spin)
    else:
        raise BackendUnavailableError(f"runner {name!r} is not available in this release")
    runner.activate()
    return runner


__all__.append("create_runner")
