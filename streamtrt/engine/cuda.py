"""A thin, checked layer over cuda-python's runtime API (``cuda.bindings.runtime``).

cuda-python imports anywhere; without a driver its first call fails, which is mapped here to
:class:`BackendUnavailableError`. Every call's error code is checked.
"""

from __future__ import annotations

from typing import Any

from ..errors import BackendUnavailableError, InferenceError


def cudart() -> Any:
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime  # cuda-python < 12.6
        except ImportError:
            raise BackendUnavailableError("cuda-python is not installed (pip install 'streamtrt[gpu]')") from None
    return runtime


def check(result: Any, what: str) -> Any:
    """Unpack a cuda-python ``(err, *values)`` tuple, raising on a non-zero error."""
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    code = int(getattr(err, "value", err))
    if code != 0:
        name = getattr(err, "name", str(code))
        exc = BackendUnavailableError if name in ("cudaErrorNoDevice", "cudaErrorInsufficientDriver") else InferenceError
        raise exc(f"CUDA {what} failed: {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class DeviceBuffer:
    """``nbytes`` of device memory, freed once."""

    def __init__(self, nbytes: int):
        rt = cudart()
        self.nbytes = max(int(nbytes), 1)
        self.ptr = int(check(rt.cudaMalloc(self.nbytes), "cudaMalloc"))

    def free(self) -> None:
        if self.ptr:
            check(cudart().cudaFree(self.ptr), "cudaFree")
            self.ptr = 0


class PinnedBuffer:
    """Page-locked host memory viewed as a numpy array, for asynchronous copies."""

    def __init__(self, shape: tuple[int, ...], dtype):
        self._size(shape, dtype)
        self.ptr = int(check(cudart().cudaMallocHost(self.nbytes), "cudaMallocHost"))
        self.array = self._view(self.ptr, shape)

    def _size(self, shape: tuple[int, ...], dtype) -> None:
        import numpy as np

        self.dtype = np.dtype(dtype)
        self.nbytes = max(int(np.prod(shape)) * self.dtype.itemsize, 1)

    def _view(self, host_ptr: int, shape: tuple[int, ...]):
        import ctypes

        import numpy as np

        raw = (ctypes.c_byte * self.nbytes).from_address(host_ptr)
        return np.frombuffer(raw, dtype=self.dtype, count=int(np.prod(shape))).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            self.array = None
            check(cudart().cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0


class MappedBuffer(PinnedBuffer):
    """Page-locked host memory the GPU reads and writes in place (``ptr`` is its device address).
    On an integrated GPU (Jetson) this is the same physical memory, so no copy is ever made."""

    def __init__(self, shape: tuple[int, ...], dtype):
        rt = cudart()
        self._size(shape, dtype)
        self.host_ptr = int(check(rt.cudaHostAlloc(self.nbytes, rt.cudaHostAllocMapped), "cudaHostAlloc"))
        try:
            self.ptr = int(check(rt.cudaHostGetDevicePointer(self.host_ptr, 0), "cudaHostGetDevicePointer"))
        except BaseException:
            check(rt.cudaFreeHost(self.host_ptr), "cudaFreeHost")
            raise
        self.array = self._view(self.host_ptr, shape)

    def free(self) -> None:
        if self.host_ptr:
            self.array = None
            check(cudart().cudaFreeHost(self.host_ptr), "cudaFreeHost")
            self.host_ptr = self.ptr = 0


def is_integrated(device_id: int) -> bool:
    """Whether the GPU shares physical memory with the CPU (Jetson), where mapped buffers save copies."""
    rt = cudart()
    attr = rt.cudaDeviceAttr.cudaDevAttrIntegrated
    return bool(check(rt.cudaDeviceGetAttribute(attr, device_id), "cudaDeviceGetAttribute"))


class Stream:
    def __init__(self) -> None:
        rt = cudart()
        self.handle = check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreate")

    def synchronize(self) -> None:
        check(cudart().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def destroy(self) -> None:
        if self.handle is not None:
            check(cudart().cudaStreamDestroy(self.handle), "cudaStreamDestroy")
            self.handle = None

    @property
    def ptr(self) -> int:
        return int(self.handle)


class Event:
    def __init__(self) -> None:
        rt = cudart()
        self.handle = check(rt.cudaEventCreateWithFlags(rt.cudaEventDisableTiming), "cudaEventCreate")

    def record(self, stream: Stream) -> None:
        check(cudart().cudaEventRecord(self.handle, stream.handle), "cudaEventRecord")

    def synchronize(self) -> None:
        check(cudart().cudaEventSynchronize(self.handle), "cudaEventSynchronize")

    def destroy(self) -> None:
        if self.handle is not None:
            check(cudart().cudaEventDestroy(self.handle), "cudaEventDestroy")
            self.handle = None


def copy_async(dst: int, src: int, nbytes: int, kind: str, stream: Stream) -> None:
    """``kind``: ``h2d``, ``d2h`` or ``d2d``."""
    rt = cudart()
    kinds = {"h2d": rt.cudaMemcpyKind.cudaMemcpyHostToDevice, "d2h": rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
             "d2d": rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice}
    check(rt.cudaMemcpyAsync(dst, src, nbytes, kinds[kind], stream.handle), f"cudaMemcpyAsync {kind}")


def set_device(device_id: int) -> None:
    check(cudart().cudaSetDevice(device_id), "cudaSetDevice")
