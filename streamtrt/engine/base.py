"""The runner interface shared by ONNX Runtime and TensorRT (after Polygraphy's runners).

A runner is activated once, then ``infer`` takes a dict of input name -> array (a host numpy
array or a :class:`DeviceTensor` in GPU memory) and returns output name -> host numpy array.
Names, shapes and dtypes are always read from the model, never assumed.
"""

from __future__ import annotations

import abc
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Protocol, Union, runtime_checkable

import numpy as np

Dim = Union[int, str, None]


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output: its name, shape (``None``/str for dynamic dims) and dtype."""

    name: str
    shape: tuple[Dim, ...]
    dtype: np.dtype

    @property
    def fixed_batch(self) -> Optional[int]:
        """The batch dimension if the model fixes it, else ``None``."""
        first = self.shape[0] if self.shape else None
        return first if isinstance(first, int) and first > 0 else None


@runtime_checkable
class DeviceTensor(Protocol):
    """A tensor in device memory: a raw pointer, a shape, and the device it lives on."""

    @property
    def ptr(self) -> int: ...

    @property
    def shape(self) -> tuple[int, ...]: ...


def is_device_tensor(value: Any) -> bool:
    """Whether ``value`` lives in device memory (a numpy array has ``shape`` but no ``ptr``)."""
    return isinstance(value, DeviceTensor) and not isinstance(value, np.ndarray)


@dataclass(frozen=True)
class OwnedDeviceTensor:
    """A device array (CuPy) that this tensor keeps alive, seen through the :class:`DeviceTensor` protocol."""

    array: Any

    @property
    def ptr(self) -> int:
        return int(self.array.data.ptr)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.array.shape)

    @property
    def itemsize(self) -> int:
        return int(self.array.itemsize)


@dataclass(frozen=True)
class DeviceView:
    """Device memory someone else owns, seen as a tensor: a pointer, a shape and an item size."""

    ptr: int
    shape: tuple[int, ...]
    itemsize: int = 4
    capacity: int = 0
    """Rows the allocation holds beyond ``shape[0]`` (0: unknown); lets a batch be padded in place."""

    def slice(self, start: int, stop: int) -> "DeviceView":
        """Rows ``start:stop`` of the first dimension: the same memory, no copy."""
        per_row = int(np.prod(self.shape[1:])) * self.itemsize
        return DeviceView(self.ptr + start * per_row, (stop - start,) + tuple(self.shape[1:]), self.itemsize)


class Runner(abc.ABC):
    """Runs a model. Use as a context manager or call :meth:`activate`/:meth:`deactivate`."""

    name: str = "runner"
    device: str = "cpu"  # "cpu" or "cuda": where input tensors may live

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
    def activate(self) -> None: ...

    @abc.abstractmethod
    def infer(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]: ...

    def submit(self, feeds: Mapping[str, Any]) -> Any:
        """Start a batch; :meth:`collect` returns its outputs, oldest first. Runners with
        several device slots (TensorRT) keep several batches in flight; others run at once."""
        self._results.append(self.infer(feeds))
        return len(self._results) - 1

    def collect(self) -> dict[str, np.ndarray]:
        return self._results.popleft()

    def wait_inputs_consumed(self, ticket: Any) -> None:
        """Block until the device no longer reads the inputs of ``ticket`` (they may be reused)."""

    @property
    def in_flight(self) -> int:
        """Batches a caller may keep submitted before collecting."""
        return 1

    def deactivate(self) -> None:
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
