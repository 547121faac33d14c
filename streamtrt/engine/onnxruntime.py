"""ONNX Runtime runners: CPU execution provider, and CUDA with IOBinding on device buffers."""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
import logging
from typing import Any, Mapping, Optional, Union

import numpy as np

from ..errors import (BackendError, BackendUnavailableError, ConfigError, InferenceError, ModelError,
                      StreamTRTError, first_line)
from ..model_info import read_model_info
from ..tensors import HostCopyable, TensorInfo, is_device_tensor
from .base import Runner
from .registry import RUNNERS
from .settings import EngineSettings

log = logging.getLogger("streamtrt")

_ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


def _import_ort():
    try:
        import onnxruntime as ort
    except Exception as exc:
        raise BackendUnavailableError(f"ONNX Runtime is not available: {exc}") from None
    # ORT's own logger writes warnings straight to stderr; errors reach us as exceptions anyway.
    ort.set_default_logger_severity(3)
    return ort


def ort_failure(exc: BaseException, what: str, kind: type[StreamTRTError] = InferenceError) -> StreamTRTError:
    """The one mapping of an ONNX Runtime exception (its own Fail, InvalidArgument, RuntimeException...
    types, which share no public base class) into the tree: ``kind("<what>: <first line>")``;
    model loading passes :class:`ModelError`, runs and CUDA-graph capture :class:`InferenceError`."""
    if kind is ModelError:
        return kind(f"{what} ({first_line(exc)})")
    return kind(f"{what}: {first_line(exc)}")


def cuda_provider_available() -> bool:
    try:
        return "CUDAExecutionProvider" in _import_ort().get_available_providers()
    except BackendUnavailableError:
        return False


def _tensor_info(arg) -> TensorInfo:
    dims = tuple(d if isinstance(d, int) else (d or None) for d in arg.shape)
    return TensorInfo(arg.name, dims, np.dtype(_ORT_DTYPES.get(arg.type, np.float32)))


class OnnxRuntimeRunner(Runner):
    """Runs an ONNX model on ONNX Runtime's CPU or CUDA execution provider.

    On CUDA, inputs given as :class:`DeviceTensor` (e.g. DALI's GPU output) are bound by pointer
    through IOBinding: no copy to the host and back.
    """

    def __init__(self, model_path: str | Path, provider: str = "cpu", device_id: int = 0,
                 threads: Optional[int] = None, spin: bool = True, cuda_graph: Union[bool, str] = False,
                 batch_size: Optional[int] = None, workers: int = 1):
        super().__init__()
        if provider not in ("cpu", "cuda"):
            raise ValueError(f"unknown provider {provider!r}")
        self.model_path = Path(model_path)
        self.provider = provider
        self.device = provider
        self.device_id = device_id
        self.threads = threads
        self.spin = spin
        self.cuda_graph = cuda_graph if provider == "cuda" else False
        self.batch_size = batch_size
        # CPU: runs in flight at once, each on its own thread (ONNX Runtime sessions take
        # concurrent runs); results come back in submission order.
        self.workers = max(1, workers) if provider == "cpu" else 1
        self._pool = None
        self._futures: deque = deque()
        self._graph_io = None
        self.dynamic_batch = False
        self.name = f"onnxruntime-{provider}"
        self._session = None

    def activate(self) -> None:
        ort = _import_ort()
        path = self.model_path
        if not path.is_file():
            raise ModelError(f"model not found: {path}")
        if not os.access(path, os.R_OK):
            raise ModelError(f"model is not readable (permission denied): {path}")
        self.dynamic_batch = _has_dynamic_batch(path)
        try:
            self._session = self._create_session(ort, path, with_graph=bool(self.cuda_graph))
        except ModelError as exc:
            if not self.cuda_graph or "graph capture" not in str(exc):
                raise
            # ORT refuses a graph when some nodes fall back to the CPU EP (e.g. a Q/DQ INT8 model).
            if self.cuda_graph is True:
                raise ConfigError("runtime.cuda_graph: true needs every node of the model on the CUDA execution "
                                  "provider, and this one has some on the CPU (a Q/DQ model?): use auto or false") from None
            log.info("CUDA graph not used: not every node runs on the CUDA execution provider")
            self.cuda_graph = False
            self._session = self._create_session(ort, path, with_graph=False)
        self._inputs = [_tensor_info(a) for a in self._session.get_inputs()]
        self._outputs = [_tensor_info(a) for a in self._session.get_outputs()]
        if len(self._inputs) != 1:
            raise ModelError(f"{path}: expected one image input, the model has {len(self._inputs)}")
        if self.cuda_graph == "auto" and self.batch_size and self._inputs[0].fixed_batch != self.batch_size:
            # Replaying one graph per chunk of a larger batch is not validated: stay on plain runs.
            log.info("CUDA graph not used: batch %s differs from the model's batch %s",
                     self.batch_size, self._inputs[0].fixed_batch)
            self.cuda_graph = False
            self._session = self._create_session(ort, path, with_graph=False)
        if self.cuda_graph:
            try:
                self._graph_io = _GraphIO(ort, self._session, self._inputs, self._outputs, self.device_id, path)
            except Exception as exc:
                if self.cuda_graph is True:
                    raise ort_failure(exc, "runtime.cuda_graph: capture failed") from None
                log.info("CUDA graph not used (%s); running without", first_line(exc, 200))
                self._graph_io = None
                self._session = self._create_session(ort, path, with_graph=False)
        self.is_active = True

    def _create_session(self, ort, path: Path, with_graph: bool):
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.threads:
            options.intra_op_num_threads = self.threads
        if not self.spin:
            # Idle ORT threads otherwise spin and take cores from the decode/preprocess stages.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.provider == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailableError(
                    "runner onnxruntime-cuda needs onnxruntime-gpu with a CUDA device "
                    f"(available providers: {', '.join(ort.get_available_providers())})"
                )
            preload = getattr(ort, "preload_dlls", None)
            if preload is not None:  # finds cuDNN/cuBLAS from pip packages before the session needs them
                try:
                    preload()
                except Exception:
                    pass
            cuda_options = {"device_id": self.device_id}
            if self.dynamic_batch:
                # Exhaustive cuDNN search on a batch-dynamic model failed at execution on the H200
                # (CUDNN_STATUS_EXECUTION_FAILED beside many DALI pipelines); heuristics did not.
                cuda_options["cudnn_conv_algo_search"] = "HEURISTIC"
            if with_graph:
                cuda_options["enable_cuda_graph"] = "1"
            providers = [("CUDAExecutionProvider", cuda_options), "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        try:
            return ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/... types
            raise ort_failure(exc, f"{path}: not a loadable ONNX model", ModelError) from None

    def infer(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if self._session is None:
            raise InferenceError("runner used before activate()")
        names = [o.name for o in self._outputs]
        try:
            if self._graph_io is not None:
                return self._graph_io.run(self._session, feeds)
            if self.provider == "cuda":
                return self._infer_iobinding(feeds, names)
            host = {k: _as_host(v) for k, v in feeds.items()}
            return dict(zip(names, self._session.run(names, host)))
        except (BackendUnavailableError, InferenceError):
            raise
        except Exception as exc:
            raise ort_failure(exc, f"{self.name}: inference failed") from None

    @property
    def in_flight(self) -> int:
        return self.workers

    def submit(self, feeds: Mapping[str, Any]) -> Any:
        """Start a run on a worker thread (CPU, ``workers`` > 1); :meth:`collect` returns the oldest."""
        if self.workers == 1:
            return super().submit(feeds)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="streamtrt-ort")
        host = {k: _as_host(v) for k, v in feeds.items()}
        future = self._pool.submit(self.infer, host)
        self._futures.append(future)
        return future

    def collect(self) -> dict[str, np.ndarray]:
        if self.workers == 1:
            return super().collect()
        return self._futures.popleft().result()

    @property
    def supports_device_outputs(self) -> bool:
        return self.provider == "cuda"

    def infer_on_device(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Like :meth:`infer`, but outputs stay in device memory: name -> ``OrtValue`` on device
        ``device_id``, valid until the next call (for GPU postprocessing). CUDA provider only:
        raises :class:`~streamtrt.errors.BackendError` on the CPU provider,
        :class:`~streamtrt.errors.InferenceError` before :meth:`activate` or when the run fails."""
        if self.provider != "cuda":
            raise BackendError(f"{self.name}: device outputs (infer_on_device) are not supported by this runner")
        if self._session is None:
            raise InferenceError(f"{self.name}: device outputs need an active CUDA runner")
        names = [o.name for o in self._outputs]
        try:
            if self._graph_io is not None:
                self._graph_io.run(self._session, feeds, to_host=False)
                return dict(self._graph_io.outputs)
            binding = self._bind(feeds, names, "cuda")
            self._session.run_with_iobinding(binding)
            self._device_binding = binding  # owns the outputs until the next call
            return dict(zip(names, binding.get_outputs()))
        except (BackendUnavailableError, InferenceError):
            raise
        except Exception as exc:
            raise ort_failure(exc, f"{self.name}: inference failed") from None

    def _infer_iobinding(self, feeds: Mapping[str, Any], names: list[str]) -> dict[str, np.ndarray]:
        binding = self._bind(feeds, names, "cpu")
        self._session.run_with_iobinding(binding)
        return dict(zip(names, binding.copy_outputs_to_cpu()))

    def _bind(self, feeds: Mapping[str, Any], names: list[str], output_device: str):
        binding = self._session.io_binding()
        info = {i.name: i for i in self._inputs}
        for name, value in feeds.items():
            if is_device_tensor(value):
                binding.bind_input(
                    name=name, device_type="cuda", device_id=self.device_id,
                    element_type=info[name].dtype.type, shape=tuple(value.shape), buffer_ptr=value.ptr,
                )
            else:
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in names:
            if output_device == "cuda":
                binding.bind_output(name, "cuda", self.device_id)
            else:
                binding.bind_output(name, "cpu")
        return binding

    def deactivate(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._futures.clear()
        self._graph_io = None
        self._session = None
        super().deactivate()


def _factory(provider: str):
    def create(settings: EngineSettings, *, spin: bool = True, report=None, workers: int = 1) -> OnnxRuntimeRunner:
        """An :class:`OnnxRuntimeRunner` on ``provider`` for ``settings`` (activated by ``create_runner``)."""
        return OnnxRuntimeRunner(settings.model_path, provider=provider, device_id=settings.device_id,
                                 threads=settings.threads, spin=spin, cuda_graph=settings.cuda_graph,
                                 batch_size=settings.batch_size, workers=workers)

    return create


RUNNERS.add("onnxruntime-cpu", _factory("cpu"))
RUNNERS.add("onnxruntime-cuda", _factory("cuda"))


def _has_dynamic_batch(path: Path) -> bool:
    """Whether the model's first input has a dynamic leading (batch) dimension; False if unreadable."""
    try:
        inputs = read_model_info(path).inputs
    except ModelError:
        return False
    return bool(inputs and inputs[0].shape) and not isinstance(inputs[0].shape[0], int)


def _as_host(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, HostCopyable):
        return value.to_host()
    return np.asarray(value)


_GRAPH_WARMUP_RUNS = 3


class _GraphIO:
    """Fixed device buffers for CUDA-graph replay: ONNX Runtime captures the graph on the first
    run and replays it while inputs and outputs stay at the same addresses, so every input is
    copied into the one bound buffer first (device-to-device for device tensors)."""

    def __init__(self, ort, session, inputs: list[TensorInfo], outputs: list[TensorInfo], device_id: int, path):
        for info in [*inputs, *outputs]:
            if any(not isinstance(d, int) for d in info.shape):
                raise ModelError(f"{path}: runtime.cuda_graph needs static shapes; {info.name} is {list(info.shape)}")
        self.inputs = {i.name: ort.OrtValue.ortvalue_from_shape_and_type(list(i.shape), i.dtype.type, "cuda", device_id)
                       for i in inputs}
        self.nbytes = {i.name: int(np.prod(i.shape)) * i.dtype.itemsize for i in inputs}
        self.outputs = [(o.name, ort.OrtValue.ortvalue_from_shape_and_type(list(o.shape), o.dtype.type, "cuda", device_id))
                        for o in outputs]
        self.binding = session.io_binding()
        for name, value in self.inputs.items():
            self.binding.bind_ortvalue_input(name, value)
        for name, value in self.outputs:
            self.binding.bind_ortvalue_output(name, value)
        # ONNX Runtime captures after a few plain runs. Do them now, while nothing else uses the
        # GPU: work from other threads (DALI) during a capture would invalidate it.
        for _ in range(_GRAPH_WARMUP_RUNS):
            session.run_with_iobinding(self.binding)

    def run(self, session, feeds: Mapping[str, Any], to_host: bool = True) -> dict[str, np.ndarray]:
        for name, value in feeds.items():
            target = self.inputs[name]
            if is_device_tensor(value):
                from . import cuda

                if tuple(value.shape) != tuple(target.shape()):
                    raise InferenceError(f"input {name}: shape {list(value.shape)} != {target.shape()}")
                rt = cuda.cudart()
                cuda.check(rt.cudaMemcpy(target.data_ptr(), value.ptr, self.nbytes[name],
                                         rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice), "cudaMemcpy")
            else:
                target.update_inplace(np.ascontiguousarray(value))
        session.run_with_iobinding(self.binding)
        if not to_host:
            return {}
        return {name: value.numpy() for name, value in self.outputs}
