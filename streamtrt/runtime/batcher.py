"""Cross-stream batching: preprocessed frames of all streams into inference batches.

A batch goes when it is full or ``timeout`` after its first frame, so a slow or ended stream
never holds the others back. A stream's chunk that fills a batch exactly passes through
untouched (zero copy on the GPU); otherwise frames are gathered into a new tensor: on the host
with numpy, on the GPU with device-to-device copies into a small pool of buffers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..engine.base import DeviceView
from .control import Control
from .messages import EOS, TensorBatch
from .mux import StreamMux
from .stages import Stage


def _on_device(tensor: Any) -> bool:
    return hasattr(tensor, "ptr") and not isinstance(tensor, np.ndarray)


@dataclass
class _Part:
    batch: TensorBatch
    start: int
    stop: int


class _Remaining:
    """Counts the frames of a device chunk not yet copied; frees the chunk when none are left."""

    def __init__(self, batch: TensorBatch):
        self.batch = batch
        self.left = len(batch.meta)

    def consumed(self, n: int) -> None:
        self.left -= n
        if self.left <= 0 and self.batch.release is not None:
            self.batch.release.set()


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

    def gather(self, parts: list[_Part], abort: threading.Event) -> tuple[DeviceView, threading.Event]:
        i = self._next
        self._next = (i + 1) % len(self._buffers)
        while not self._free[i].wait(0.05):
            if abort.is_set():
                raise InterruptedError
        self._free[i].clear()
        dst = self._buffers[i].ptr
        offset = 0
        for p in parts:
            n = p.stop - p.start
            src = p.batch.tensor.ptr + p.start * self.frame_bytes
            self._cuda.copy_async(dst + offset, src, n * self.frame_bytes, "d2d", self._stream)
            offset += n * self.frame_bytes
        self._stream.synchronize()
        frames = offset // self.frame_bytes
        return DeviceView(dst, (frames,) + self.frame_shape, self.itemsize), self._free[i]

    def close(self) -> None:
        for e in self._free:
            e.wait(1.0)  # the runner releases in a finally; stages are joined by now
        for b in self._buffers:
            b.free()
        self._stream.destroy()


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
        self._pending: list[_Part] = []
        self._pending_frames = 0
        self._first_at = 0.0
        self._owners: dict[int, _Remaining] = {}

    def produce(self) -> Iterator[TensorBatch]:
        while not self.control.abort.is_set():
            wait = 0.05
            if self._pending:
                wait = max(0.0, min(wait, self._first_at + self.timeout_s - time.perf_counter()))
            got = self.mux.get(wait)
            if got is None:
                if self._pending and time.perf_counter() - self._first_at >= self.timeout_s:
                    yield self._emit(self._pending_frames)
                if len(self.mux) == 0 and not self.keep_running():
                    break
                continue
            sid, item = got
            if item is EOS:
                self.on_stream_end(sid)
                if len(self.mux) == 0 and self._pending:
                    yield self._emit(self._pending_frames)  # nothing else can fill it
                if len(self.mux) == 0 and not self.keep_running():
                    break
                continue
            n = len(item.meta)
            if not self._pending and n == self.batch_size:
                yield item  # a whole batch from one stream: as is
                continue
            if not self._pending:
                self._first_at = time.perf_counter()
            self._pending.append(_Part(item, 0, n))
            if _on_device(item.tensor):
                self._owners[id(item)] = _Remaining(item)
            self._pending_frames += n
            while self._pending_frames >= self.batch_size:
                yield self._emit(self.batch_size)
        if self._pending and not self.control.abort.is_set():
            yield self._emit(self._pending_frames)

    def _take(self, n: int) -> list[_Part]:
        """The oldest ``n`` pending frames, splitting a chunk if needed."""
        taken, need = [], n
        while need:
            part = self._pending[0]
            size = part.stop - part.start
            if size <= need:
                taken.append(self._pending.pop(0))
                need -= size
            else:
                taken.append(_Part(part.batch, part.start, part.start + need))
                part.start += need
                need = 0
        self._pending_frames -= n
        if self._pending:
            self._first_at = time.perf_counter()
        return taken

    def _emit(self, n: int) -> TensorBatch:
        t0 = time.perf_counter()
        batch = self._gather(self._take(n))
        self.timer.add(time.perf_counter() - t0, n)
        return batch

    def _gather(self, parts: list[_Part]) -> TensorBatch:
        meta = [m for p in parts for m in p.batch.meta[p.start:p.stop]]
        geoms = [g for p in parts for g in p.batch.geometries[p.start:p.stop]]
        images = None
        if all(p.batch.images is not None for p in parts):
            images = [im for p in parts for im in p.batch.images[p.start:p.stop]]
        started = min(p.batch.started for p in parts)
        devices = [_on_device(p.batch.tensor) for p in parts]
        release = None
        if all(devices):
            if self._pool is None:
                t = parts[0].batch.tensor
                self._pool = DevicePool(self.pool_size, tuple(t.shape[1:]), self.batch_size,
                                        getattr(t, "itemsize", 4))
            try:
                tensor, release = self._pool.gather(parts, self.control.abort)
            finally:
                self._consumed(parts)
        else:
            arrays = []
            for p in parts:
                t = p.batch.tensor
                arrays.append(t.to_host()[p.start:p.stop] if _on_device(t) else t[p.start:p.stop])
            self._consumed(parts)
            tensor = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        return TensorBatch(meta, tensor, geoms, images, started, release)

    def _consumed(self, parts: list[_Part]) -> None:
        for p in parts:
            owner = self._owners.get(id(p.batch))
            if owner is not None:
                owner.consumed(p.stop - p.start)
                if owner.left <= 0:
                    del self._owners[id(p.batch)]

    def cleanup(self) -> None:
        for owner in self._owners.values():
            if owner.batch.release is not None:
                owner.batch.release.set()
        self._owners.clear()
        if self._pool is not None:
            self._pool.close()
