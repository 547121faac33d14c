"""The runner interface shared by ONNX Runtime and TensorRT (after Polygraphy's runners).

A runner is activated once, then ``infer`` takes a dict of input name -> array (a host numpy
array or a :class:`~streamtrt.tensors.DeviceTensor` in GPU memory) and returns output name ->
host numpy array. Names, shapes and dtypes are always read from the model, never assumed.
Device-tensor types live in :mod:`streamtrt.tensors`.
"""

from __future__ import annotations

import abc
from collections import deque
from typing import Any, Mapping, Optional

import numpy as np

from ..errors import BackendError
from ..tensors import TensorInfo


class Runner(abc.ABC):
    """Runs a model. Use as a context manager or call :meth:`activate`/:meth:`deactivate`.

    Every method the pipeline calls is declared here. Feeds are ``{input name: array}``: a host
    numpy array, or (when :attr:`device` is ``"cuda"``) a :class:`~streamtrt.tensors.DeviceTensor`
    on device ``device_id``; shape ``(N, C, H, W)`` or ``(N, H, W, C)`` and dtype as
    :attr:`inputs` says, ``N`` at most :attr:`max_batch`. Outputs are ``{output name: numpy
    array}`` in host memory, first dimension ``N``.

    Errors: :class:`~streamtrt.errors.ModelError` (the model or engine cannot be loaded),
    :class:`~streamtrt.errors.BackendUnavailableError` (the library or device is missing),
    :class:`~streamtrt.errors.InferenceError` (a batch failed). Third-party exceptions never escape.
    """

    name: str = "runner"
    """The runner kind as plans name it: ``onnxruntime-cpu``, ``onnxruntime-cuda``, ``tensorrt``."""
    device: str = "cpu"
    """``"cpu"`` or ``"cuda"``: where input tensors may live (``"cuda"``: device tensors are taken by pointer)."""

    def __init__(self) -> None:
        self.is_active = False
        self._results: deque[dict[str, np.ndarray]] = deque()
        self._inputs: list[TensorInfo] = []
        self._outputs: list[TensorInfo] = []

    @property
    def inputs(self) -> list[TensorInfo]:
        """The model's inputs, known once activated."""
        return self._inputs

    @property
    def outputs(self) -> list[TensorInfo]:
        """The model's outputs, known once activated."""
        return self._outputs

    @abc.abstractmethod
    def activate(self) -> None:
        """Load the model (or engine) and allocate what runs need; fills :attr:`inputs`/:attr:`outputs`.

        Raises :class:`~streamtrt.errors.ModelError` or :class:`~streamtrt.errors.BackendUnavailableError`."""

    @abc.abstractmethod
    def infer(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run one batch and wait for it: ``{input name: array}`` -> ``{output name: host array}``.

        Raises :class:`~streamtrt.errors.InferenceError`."""

    def infer_on_device(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Like :meth:`infer`, but the outputs stay in device memory (for GPU postprocessing):
        ``{output name: device array}``, valid until the next call.

        Only the ONNX Runtime CUDA runner implements it (outputs are ``OrtValue``s); this default
        raises :class:`~streamtrt.errors.BackendError` ("not supported by this runner"). Check
        :attr:`supports_device_outputs` first."""
        raise BackendError(f"{self.name}: device outputs (infer_on_device) are not supported by this runner")

    @property
    def supports_device_outputs(self) -> bool:
        """Whether :meth:`infer_on_device` works on this runner as configured (default: no)."""
        return False

    def submit(self, feeds: Mapping[str, Any]) -> Any:
        """Start a batch and return a ticket; :meth:`collect` returns its outputs, oldest first. Runners
        with several device slots (TensorRT) keep several batches in flight; others run at once."""
        self._results.append(self.infer(feeds))
        return len(self._results) - 1

    def collect(self) -> dict[str, np.ndarray]:
        """The outputs of the oldest submitted batch (blocks until it is done); host arrays as :meth:`infer`."""
        return self._results.popleft()

    def wait_inputs_consumed(self, ticket: Any) -> None:
        """Block until the device no longer reads the inputs of ``ticket`` (they may be reused)."""

    @property
    def in_flight(self) -> int:
        """Batches a caller may keep submitted before collecting."""
        return 1

    def deactivate(self) -> None:
        """Release sessions, contexts and buffers; safe to call twice."""
        self.is_active = False

    @property
    def max_batch(self) -> Optional[int]:
        """The largest batch one call accepts; ``None`` when the batch dimension is dynamic."""
        return self.inputs[0].fixed_batch

    def __enter__(self) -> "Runner":
        if not self.is_active:
            self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()
