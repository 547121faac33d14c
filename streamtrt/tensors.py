"""Tensor and image types shared by every stage: model tensor descriptions and device memory.

This module is at the bottom layer (it imports only numpy), so sources, preprocessing, the runners
and postprocessing all use the same types without importing each other.

* :class:`TensorInfo`: a model input or output (name, shape with ``None``/str for dynamic dims, dtype).
* :class:`DeviceTensor`: anything in device (CUDA) memory with a raw pointer and a shape;
  :func:`is_device_tensor` tells it from a host array. :class:`OwnedDeviceTensor` keeps a CuPy
  array alive; :class:`DeviceView` is memory someone else owns (DALI's output buffers).
* :data:`FrameImage`: what :attr:`streamtrt.sources.base.Frame.image` holds: a numpy ``uint8``
  array ``(H, W, 3)`` in BGR order in host memory, or, for NVDEC sources only, a CuPy array of
  the same shape, dtype and channel order on the GPU (:func:`image_on_device` tells which).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol, Union, runtime_checkable

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
    """A tensor in device (CUDA) memory: a raw pointer, a shape (C-contiguous) and an item size."""

    @property
    def ptr(self) -> int: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        ...


@runtime_checkable
class HostCopyable(Protocol):
    """A device tensor that can copy itself to the host (DALI's ``DeviceBatch``)."""

    def to_host(self) -> np.ndarray: ...


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


FrameImage = Any
"""A decoded frame: numpy ``uint8`` ``(H, W, 3)`` BGR on the host, or a CuPy array of the same
shape, dtype and channel order on the GPU (NVDEC sources). ``Any`` because CuPy is optional."""


def image_on_device(image: Any) -> bool:
    """Whether a :data:`FrameImage` lives in GPU memory (a CuPy array) rather than on the host (numpy)."""
    return not isinstance(image, np.ndarray)
