"""The TensorRT runner: N slots, each with its own execution context, device buffers, pinned
output buffers, CUDA stream and event; ``execute_async_v3`` with tensors bound by address.

``submit`` queues a batch on the next free slot and returns at once; ``collect`` waits for the
oldest. With two slots the device runs batch N while the host prepares batch N+1.

On an integrated GPU (Jetson: CPU and GPU share memory) the slot buffers are mapped host memory
instead: host inputs are written where the engine reads them and outputs read where it wrote
them, so no host/device copy is made (``zero_copy``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Mapping, Optional

import numpy as np

from ...errors import InferenceError, ModelError
from .. import cuda
from ...tensors import TensorInfo, is_device_tensor
from ..base import Runner
from ..registry import RUNNERS
from ..settings import EngineSettings
from .engines import prepare_engine
from .module import load_tensorrt


@dataclass
class _Slot:
    context: Any
    stream: cuda.Stream
    done: cuda.Event
    copied: cuda.Event
    inputs: dict[str, cuda.DeviceBuffer] = field(default_factory=dict)
    outputs: dict[str, cuda.DeviceBuffer] = field(default_factory=dict)
    host: dict[str, cuda.PinnedBuffer] = field(default_factory=dict)
    graph: Any = None
    graph_batch: Optional[int] = None
    busy_batch: int = 0


class TensorRTRunner(Runner):
    """Runs a serialized engine. Inputs may be host arrays or :class:`DeviceTensor` (copied
    device-to-device into the slot's buffer, so each slot owns fixed addresses)."""

    device = "cuda"

    def __init__(self, trt: ModuleType, plan: bytes, device_id: int = 0, slots: int = 2, cuda_graph: bool = False,
                 dla_core: Optional[int] = None, zero_copy: Optional[bool] = None):
        super().__init__()
        self.trt = trt
        self.plan = plan
        self.device_id = device_id
        self.dla_core = dla_core
        self.zero_copy = zero_copy  # mapped host buffers, no copies; None: on integrated GPUs (Jetson)
        self.num_slots = max(1, slots)
        self.cuda_graph = cuda_graph
        self.name = "tensorrt"
        self._runtime = None
        self._engine = None
        self._slots: list[_Slot] = []
        self._pending: deque[int] = deque()
        self._next = 0
        self._max_batch: Optional[int] = None

    @property
    def max_batch(self) -> Optional[int]:
        return self._max_batch

    @property
    def in_flight(self) -> int:
        return len(self._slots) or self.num_slots

    def activate(self) -> None:
        trt = self.trt
        cuda.set_device(self.device_id)
        if self.zero_copy is None:
            self.zero_copy = cuda.is_integrated(self.device_id)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        if self.dla_core is not None:  # a DLA engine runs on the core the runtime names, not the one it was built for
            self._runtime.DLA_core = self.dla_core
        self._engine = self._runtime.deserialize_cuda_engine(self.plan)
        if self._engine is None:
            raise ModelError("TensorRT could not deserialize the engine (built for another GPU or TensorRT version?)")
        engine = self._engine
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            shape = tuple(int(d) if d >= 0 else None for d in engine.get_tensor_shape(name))
            info = TensorInfo(name, shape, dtype)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self._inputs.append(info)
                if shape and shape[0] is None:
                    self._max_batch = int(engine.get_tensor_profile_shape(name, 0)[2][0])
                elif shape:
                    self._max_batch = shape[0]
            else:
                self._outputs.append(info)
        try:
            for _ in range(self.num_slots):
                self._slots.append(self._make_slot())
        except BaseException:
            self.deactivate()
            raise
        self.is_active = True

    def _full_shape(self, info: TensorInfo, batch: int) -> tuple[int, ...]:
        return tuple(batch if (i == 0 and d is None) else (d or 0) for i, d in enumerate(info.shape))

    def _make_slot(self) -> _Slot:
        context = self._engine.create_execution_context()
        if context is None:
            raise InferenceError("TensorRT could not create an execution context (out of device memory?)")
        slot = _Slot(context, cuda.Stream(), cuda.Event(), cuda.Event())
        batch = self._max_batch or 1
        for info in self._inputs:
            shape = self._full_shape(info, batch)
            slot.inputs[info.name] = (cuda.MappedBuffer(shape, info.dtype) if self.zero_copy
                                      else cuda.DeviceBuffer(int(np.prod(shape)) * info.dtype.itemsize))
            context.set_tensor_address(info.name, slot.inputs[info.name].ptr)
            if info.shape and info.shape[0] is None:
                context.set_input_shape(info.name, shape)
        for info in self._outputs:
            shape = self._output_shape(context, info, batch)
            if self.zero_copy:  # the engine writes where the host reads
                slot.outputs[info.name] = cuda.MappedBuffer(shape, info.dtype)
            else:
                slot.outputs[info.name] = cuda.DeviceBuffer(int(np.prod(shape)) * info.dtype.itemsize)
                slot.host[info.name] = cuda.PinnedBuffer(shape, info.dtype)
            context.set_tensor_address(info.name, slot.outputs[info.name].ptr)
        return slot

    @staticmethod
    def _output_shape(context, info: TensorInfo, batch: int) -> tuple[int, ...]:
        shape = tuple(int(d) for d in context.get_tensor_shape(info.name))
        if any(d < 0 for d in shape):
            raise ModelError(f"output {info.name} has a data-dependent shape; not supported")
        return shape

    # -- execution -----------------------------------------------------------------------------
    def submit(self, feeds: Mapping[str, Any]) -> int:
        """Queue one batch on the next slot; returns a ticket for :meth:`collect`."""
        index = self._next
        slot = self._slots[index]
        if index in self._pending:
            raise InferenceError("all TensorRT slots are busy: collect() before submitting more")
        batch = None
        for info in self._inputs:
            value = feeds[info.name]
            n = int(value.shape[0])
            batch = n if batch is None else batch
            if self._max_batch is not None and n > self._max_batch:
                raise InferenceError(f"batch {n} exceeds the engine's maximum {self._max_batch}")
            shape = self._full_shape(info, n)
            nbytes = int(np.prod(shape)) * info.dtype.itemsize
            if is_device_tensor(value):
                cuda.copy_async(slot.inputs[info.name].ptr, value.ptr, nbytes, "d2d", slot.stream)
            elif self.zero_copy:  # the slot is idle (not pending), so its buffer is free to write
                view = slot.inputs[info.name].array.reshape(-1)[: int(np.prod(shape))].reshape(shape)
                np.copyto(view, value, casting="same_kind")
            else:
                host = np.ascontiguousarray(value, dtype=info.dtype)
                slot._staging = host  # keep alive until the copy completes
                cuda.copy_async(slot.inputs[info.name].ptr, host.ctypes.data, nbytes, "h2d", slot.stream)
            if info.shape and info.shape[0] is None:
                slot.context.set_input_shape(info.name, shape)
        slot.busy_batch = batch or 1
        slot.copied.record(slot.stream)
        self._execute(slot)
        for info in self._outputs if not self.zero_copy else ():
            nbytes = self._batch_bytes(slot, info)
            cuda.copy_async(slot.host[info.name].ptr, slot.outputs[info.name].ptr, nbytes, "d2h", slot.stream)
        slot.done.record(slot.stream)
        self._pending.append(index)
        self._next = (index + 1) % len(self._slots)
        return index

    def _batch_bytes(self, slot: _Slot, info: TensorInfo) -> int:
        shape = tuple(int(d) for d in slot.context.get_tensor_shape(info.name))
        return int(np.prod(shape)) * info.dtype.itemsize

    def _execute(self, slot: _Slot) -> None:
        static = all(d is not None for info in self._inputs for d in info.shape)
        if self.cuda_graph and static:
            if slot.graph is None:
                slot.graph = self._capture(slot)
            rt = cuda.cudart()
            cuda.check(rt.cudaGraphLaunch(slot.graph, slot.stream.handle), "cudaGraphLaunch")
            return
        if not slot.context.execute_async_v3(slot.stream.ptr):
            raise InferenceError("TensorRT execute_async_v3 failed")

    def _capture(self, slot: _Slot):
        rt = cuda.cudart()
        # One plain run first: TensorRT allocates lazily and must not do so under capture.
        if not slot.context.execute_async_v3(slot.stream.ptr):
            raise InferenceError("TensorRT execute_async_v3 failed")
        slot.stream.synchronize()
        cuda.check(rt.cudaStreamBeginCapture(slot.stream.handle,
                                             rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
                   "cudaStreamBeginCapture")
        ok = slot.context.execute_async_v3(slot.stream.ptr)
        graph = cuda.check(rt.cudaStreamEndCapture(slot.stream.handle), "cudaStreamEndCapture")
        if not ok:
            raise InferenceError("TensorRT execute_async_v3 failed during CUDA graph capture")
        return cuda.check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def wait_inputs_consumed(self, ticket: int) -> None:
        self._slots[ticket].copied.synchronize()

    def collect(self) -> dict[str, np.ndarray]:
        """Wait for the oldest submitted batch and return copies of its outputs."""
        if not self._pending:
            raise InferenceError("collect() with nothing submitted")
        slot = self._slots[self._pending.popleft()]
        slot.done.synchronize()
        out = {}
        for info in self._outputs:
            shape = tuple(int(d) for d in slot.context.get_tensor_shape(info.name))
            host = slot.outputs[info.name] if self.zero_copy else slot.host[info.name]
            out[info.name] = np.array(host.array.reshape(-1)[: int(np.prod(shape))].reshape(shape))
        return out

    def infer(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        self.submit(feeds)
        return self.collect()

    def deactivate(self) -> None:
        """Tear down in dependency order: work, graphs, buffers, streams, contexts, engine, runtime."""
        for slot in self._slots:
            try:
                slot.stream.synchronize()
            except Exception:
                pass
        rt = cuda.cudart() if self._slots else None
        for slot in self._slots:
            if slot.graph is not None:
                cuda.check(rt.cudaGraphExecDestroy(slot.graph), "cudaGraphExecDestroy")
                slot.graph = None
            for buf in [*slot.inputs.values(), *slot.outputs.values(), *slot.host.values()]:
                buf.free()
            slot.done.destroy()
            slot.copied.destroy()
            slot.stream.destroy()
            slot.context = None
        self._slots.clear()
        self._pending.clear()
        self._engine = None
        self._runtime = None
        super().deactivate()


@RUNNERS.register("tensorrt")
def create_tensorrt_runner(settings: EngineSettings, *, spin: bool = True, report=None, workers: int = 1) -> TensorRTRunner:
    """The TensorRT runner for ``settings``, activated: its engine comes from the cache or is built
    first (``report`` says so). A cached engine that will not load (damaged, or a driver change
    the key misses) is rebuilt once. ``spin`` and ``workers`` apply to CPU runners only."""
    trt = load_tensorrt()
    say = report or (lambda m: None)
    prepared = prepare_engine(settings, report=say, trt=trt)
    runner = TensorRTRunner(trt, prepared.plan, settings.device_id, settings.slots, settings.cuda_graph,
                            settings.dla_core)
    try:
        runner.activate()
    except ModelError as exc:
        if prepared.built:
            raise
        say(f"cached engine {prepared.path.name} does not load ({exc}); rebuilding")
        prepared = prepare_engine(settings, report=say, trt=trt, force=True)
        runner = TensorRTRunner(trt, prepared.plan, settings.device_id, settings.slots, settings.cuda_graph,
                                settings.dla_core)
        runner.activate()
    return runner
