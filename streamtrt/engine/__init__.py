"""Runners: ONNX Runtime (CPU, CUDA) now; TensorRT slots in behind the same interface."""

from .base import DeviceTensor, Runner, TensorInfo
from .onnxruntime import OnnxRuntimeRunner, cuda_provider_available

__all__ = ["DeviceTensor", "Runner", "TensorInfo", "OnnxRuntimeRunner", "cuda_provider_available"]


def create_runner(name: str, config, spin: bool = True, report=None, workers: int = 1, read_frames=None) -> Runner:
    """Create and activate the runner a plan names, for ``config`` (a :class:`~streamtrt.config.Config`).

    ``spin=False`` keeps idle CPU-runner threads from busy-waiting, for runs where other stages
    share the cores; ``workers`` > 1 runs that many batches side by side on the CPU runner
    (:class:`OnnxRuntimeRunner`). The TensorRT runner loads its engine from the cache or builds it first
    (``read_frames``: INT8 calibration frames, see :func:`~streamtrt.engine.tensorrt.prepare_engine`).
    """
    from ..errors import BackendUnavailableError

    rt = config.runtime
    if name in ("onnxruntime-cpu", "onnxruntime-cuda"):
        runner: Runner = OnnxRuntimeRunner(config.model.path, provider=name.split("-")[1], device_id=rt.device_id,
                                           threads=rt.threads, spin=spin, cuda_graph=rt.cuda_graph,
                                           batch_size=rt.batch_size, workers=workers)
    elif name == "tensorrt":
        from .tensorrt import load_tensorrt, prepare_engine
        from .tensorrt.runner import TensorRTRunner

        from ..errors import ModelError

        dla_core = config.tensorrt.dla_core
        if isinstance(dla_core, list):
            raise ValueError("create_runner takes one engine's config: see Config.engine_configs()")
        trt = load_tensorrt()
        say = report or (lambda m: None)
        prepared = prepare_engine(config, report=say, trt=trt, read_frames=read_frames)
        runner = TensorRTRunner(trt, prepared.plan, rt.device_id, rt.slots, rt.cuda_graph, dla_core)
        try:
            runner.activate()
        except ModelError as exc:
            if prepared.built:
                raise
            # A cached engine that will not load (damaged, or a driver change the key misses): rebuild once.
            say(f"cached engine {prepared.path.name} does not load ({exc}); rebuilding")
            prepared = prepare_engine(config, report=say, trt=trt, force=True, read_frames=read_frames)
            runner = TensorRTRunner(trt, prepared.plan, rt.device_id, rt.slots, rt.cuda_graph, dla_core)
            runner.activate()
        return runner
    else:
        raise BackendUnavailableError(f"unknown runner {name!r}")
    runner.activate()
    return runner


__all__.append("create_runner")
