"""Cross-stream batching: preprocessed frames of all streams into inference batches.

A batch goes when it is full or ``timeout`` after its first frame, so a slow or ended stream
never holds the others back. A stream's chunk that fills a batch exactly passes through
untouched (zero copy on the GPU); otherwise frames are gathered into a new tensor: on the host
with numpy, on the GPU with device-to-device copies into a small pool of buffers, made as each
chunk arrives so that its decoder gets its buffer back at once. Host and device frames (CPU- and
GPU-decoded streams in one run) form separate batches.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..tensors import DeviceView, is_device_tensor
from .control import Control
from .messages import EOS, TensorBatch
from .mux import StreamMux
from .stages import Stage


class DevicePool:
    """A few device buffers of one batch each, reused once the runner has released them."""

    def __init__(self, count: int, frame_shape: tuple[int, ...], batch_size: int, itemsize: int):
        from ..engine import cuda

        self._cuda = cuda
        self.frame_bytes = int(np.prod(frame_shape)) * itemsize
        self.frame_shape = tuple(frame_shape)
        self.itemsize = itemsize
        self._buffers = [cuda.DeviceBuffer(self.frame_bytes * batch_size) for _ in range(count)]
        self._free = [threading.Event() for _ in range(count)]
        for e in self._free:
            e.set()
        self._stream = cuda.Stream()
        self._next = 0

    def acquire(self, abort: threading.Event) -> tuple[int, threading.Event]:
        """The next buffer (pointer, release event), once the runner is done with it."""
        i = self._next
        self._next = (i + 1) % len(self._buffers)
        while not self._free[i].wait(0.05):
            if abort.is_set():
                raise InterruptedError
        self._free[i].clear()
        return self._buffers[i].ptr, self._free[i]

    def copy(self, dst: int, offset_frames: int, src: Any, start: int, stop: int) -> None:
        """Frames ``start:stop`` of device tensor ``src`` to frame ``offset_frames`` of ``dst``; waits."""
        n = stop - start
        self._cuda.copy_async(dst + offset_frames * self.frame_bytes, src.ptr + start * self.frame_bytes,
                              n * self.frame_bytes, "d2d", self._stream)
        self._stream.synchronize()

    def close(self) -> None:
        for e in self._free:
            e.wait(1.0)  # the runner releases in a finally; stages are joined by now
        for b in self._buffers:
            b.free()
        self._stream.destroy()


class _Pending:
    """Frames waiting for a batch. Host frames are kept as slices and concatenated when the batch
    goes; device frames are copied into a pool buffer as they arrive, so each stream's decoder
    gets its buffer back at once instead of waiting for the batch to fill."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []  # host frames, as slices of their chunks
        self.frames = 0
        self.first_at = 0.0
        self.meta: list = []
        self.geoms: list = []
        self.images: Optional[list] = []
        self.started = float("inf")
        self.buffer: Optional[tuple[int, threading.Event]] = None  # device

    def note(self, batch: TensorBatch, start: int, stop: int) -> None:
        if not self.frames:
            self.first_at = time.perf_counter()
        self.meta += batch.meta[start:stop]
        self.geoms += batch.geometries[start:stop]
        if self.images is not None and batch.images is not None:
            self.images += batch.images[start:stop]
        else:
            self.images = None
        self.started = min(self.started, batch.started)
        self.frames += stop - start


class BatchStage(Stage):
    """Reads the stream mux, writes inference batches of up to ``batch_size`` frames."""

    def __init__(self, mux: StreamMux, batch_size: int, timeout_s: float, control: Control, outbox,
                 keep_running: Callable[[], bool], on_stream_end: Callable[[str], None], pool_size: int):
        super().__init__("batch", control, outbox)
        self.mux = mux
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.keep_running = keep_running
        self.on_stream_end = on_stream_end
        self.pool_size = pool_size
        self._pool: Optional[DevicePool] = None
        self._host = _Pending()
        self._device = _Pending()

    def _waiting(self) -> list[_Pending]:
        return [p for p in (self._host, self._device) if p.frames]

    def produce(self) -> Iterator[TensorBatch]:
        while not self.control.abort.is_set():
            waiting = self._waiting()
            wait = 0.05
            if waiting:
                due = min(p.first_at for p in waiting) + self.timeout_s
                wait = max(0.0, min(wait, due - time.perf_counter()))
            got = self.mux.get(wait)
            now = time.perf_counter()
            for p in self._waiting():
                if now - p.first_at >= self.timeout_s:
                    yield self._emit(p)
            if got is None:
                if len(self.mux) == 0 and not self.keep_running():
                    break
                continue
            sid, item = got
            if item is EOS:
                self.on_stream_end(sid)
                if len(self.mux) == 0:
                    for p in self._waiting():  # nothing else can fill them
                        yield self._emit(p)
                    if not self.keep_running():
                        break
                continue
            n = len(item.meta)
            device = is_device_tensor(item.tensor)
            pending = self._device if device else self._host
            if not pending.frames and n == self.batch_size:
                yield item  # a whole batch from one stream: as is
                continue
            start = 0
            while start < n:
                take = min(n - start, self.batch_size - pending.frames)
                t0 = time.perf_counter()
                if device:
                    self._copy_in(item, start, start + take)
                else:
                    pending.arrays.append(item.tensor[start:start + take])
                pending.note(item, start, start + take)
                self.timer.add(time.perf_counter() - t0, take)
                start += take
                if pending.frames >= self.batch_size:
                    yield self._emit(pending)
                    pending = self._device if device else self._host  # a fresh one
            if device and item.release is not None:
                item.release.set()  # copied: the decoder may reuse its buffer
        if not self.control.abort.is_set():
            for p in self._waiting():
                yield self._emit(p)

    def _copy_in(self, item: TensorBatch, start: int, stop: int) -> None:
        t = item.tensor
        if self._pool is None:
            self._pool = DevicePool(self.pool_size, tuple(t.shape[1:]), self.batch_size, t.itemsize)
        if self._device.buffer is None:
            self._device.buffer = self._pool.acquire(self.control.abort)
        self._pool.copy(self._device.buffer[0], self._device.frames, t, start, stop)

    def _emit(self, pending: _Pending) -> TensorBatch:
        n = pending.frames
        if pending is self._device:
            ptr, release = pending.buffer
            tensor: Any = DeviceView(ptr, (n,) + self._pool.frame_shape, self._pool.itemsize, self.batch_size)
        else:
            release = None
            arrays = pending.arrays
            tensor = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        batch = TensorBatch(pending.meta, tensor, pending.geoms, pending.images, pending.started, release)
        if pending is self._device:
            self._device = _Pending()
        else:
            self._host = _Pending()
        return batch

    def cleanup(self) -> None:
        if self._device.buffer is not None:
            self._device.buffer[1].set()
        if self._pool is not None:
            self._pool.close()
