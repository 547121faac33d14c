"""The inference stage and the chunk-and-pad rule: batches larger than a fixed-batch model accepts
are split into chunks, the last padded with zeros; padding rows' outputs are dropped."""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Iterable, Optional

import numpy as np

from ..engine.base import Runner
from ..tensors import DeviceView, is_device_tensor
from .control import Control
from .messages import OutputBatch, TensorBatch
from .stages import Stage


class InferStage(Stage):
    """Runs the model. Runners with several device slots (TensorRT) get the next batch
    submitted before the previous one is collected; batches larger than a fixed-batch model
    accepts are split, smaller ones padded."""

    def __init__(self, runner: Runner, control: Control, inbox, outbox,
                 device_post: Optional[Callable[[dict], dict]] = None, batch_size: Optional[int] = None):
        super().__init__("infer", control, outbox, inbox)
        self.runner = runner
        self.device_post = device_post  # GPU decode+NMS on the device outputs: only detections come back
        # A batch-dynamic model on the GPU always gets full batches (padded; outputs trimmed), so
        # cuDNN tunes one shape once instead of every size a timeout-cut batch can have.
        self.pad_to = batch_size if runner.device == "cuda" and runner.max_batch is None else None
        self.input_name = runner.inputs[0].name
        self._pending: deque[tuple[TensorBatch, float, Optional[int]]] = deque()

    def _padded(self, tensor: Any) -> tuple[Any, Optional[int]]:
        """``tensor`` grown to ``pad_to`` rows where that is free (a pool buffer) or cheap (host)."""
        n = int(tensor.shape[0])
        if self.pad_to is None or n >= self.pad_to:
            return tensor, None
        if isinstance(tensor, np.ndarray):
            return pad_rows(tensor, self.pad_to), n
        if isinstance(tensor, DeviceView) and tensor.capacity >= self.pad_to:
            return DeviceView(tensor.ptr, (self.pad_to,) + tuple(tensor.shape[1:]), tensor.itemsize,
                              tensor.capacity), n
        return tensor, None

    def process(self, batch: TensorBatch) -> Iterable[OutputBatch]:
        t0 = time.perf_counter()
        tensor, keep = self._padded(batch.tensor)
        if keep is not None:
            batch = TensorBatch(batch.meta, tensor, batch.geometries, batch.images, batch.started, batch.release)
        if self.device_post is not None:
            yield self._run_now(batch, t0, keep, lambda t: run_batched_on_device(
                self.runner, self.input_name, t, self.device_post))
            return
        limit = self.runner.max_batch
        if self.runner.in_flight > 1 and (limit is None or len(batch.meta) <= limit):
            try:
                ticket = self.runner.submit({self.input_name: batch.tensor})
                self.runner.wait_inputs_consumed(ticket)
            finally:
                if batch.release is not None:
                    batch.release.set()
            self._pending.append((batch, t0, keep))
            if len(self._pending) >= self.runner.in_flight:
                yield self._collect()
            return
        yield from self.flush()
        yield self._run_now(batch, t0, keep, lambda t: run_batched(self.runner, self.input_name, t))

    def _run_now(self, batch: TensorBatch, t0: float, keep: Optional[int], run: Callable) -> OutputBatch:
        """Run a batch to completion; outputs of padding rows dropped, the input released."""
        try:
            outputs = run(batch.tensor)
            if keep is not None:
                outputs = {k: v[:keep] for k, v in outputs.items()}
        finally:
            if batch.release is not None:
                batch.release.set()
        self.timer.add(time.perf_counter() - t0, len(batch.meta))
        return OutputBatch(batch.meta, outputs, batch.geometries, batch.images, batch.started)

    def _collect(self) -> OutputBatch:
        batch, t0, keep = self._pending.popleft()
        outputs = self.runner.collect()
        if keep is not None:
            outputs = {k: v[:keep] for k, v in outputs.items()}
        self.timer.add(time.perf_counter() - t0, len(batch.meta))
        return OutputBatch(batch.meta, outputs, batch.geometries, batch.images, batch.started)

    def flush(self) -> Iterable[OutputBatch]:
        while self._pending:
            yield self._collect()


def pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """``array`` (N, ...) grown to ``rows`` rows with zeros (unchanged when N >= ``rows``)."""
    if len(array) >= rows:
        return array
    return np.concatenate([array, np.zeros((rows - len(array),) + array.shape[1:], array.dtype)])


def chunked(tensor: Any, limit: int, on_device: bool) -> tuple[list[Any], list[int]]:
    """``tensor`` (N, ...) as chunks of ``limit`` rows that a fixed-batch model accepts, and the
    real rows of each (the last chunk is padded with zeros). ``on_device``: a device tensor whose
    N is a multiple of ``limit`` is sliced in place (no copy); otherwise the chunks are host arrays."""
    n = int(tensor.shape[0])
    device = is_device_tensor(tensor)
    if device and on_device and n % limit == 0:
        return [tensor.slice(i, i + limit) for i in range(0, n, limit)], [limit] * (n // limit)
    host = tensor.to_host() if device else tensor
    parts = [host[i:i + limit] for i in range(0, n, limit)]
    return [pad_rows(p, limit) for p in parts], [len(p) for p in parts]


def _joined(results: list[dict], sizes: list[int]) -> dict[str, np.ndarray]:
    """Outputs of the chunks concatenated, the padding rows dropped."""
    return {name: np.concatenate([r[name][:s] for r, s in zip(results, sizes)]) for name in results[0]}


def run_batched(runner: Runner, input_name: str, tensor: Any) -> dict[str, np.ndarray]:
    """Run ``tensor`` (N, ...) through ``runner`` in chunks the model accepts; concatenate outputs."""
    n = int(tensor.shape[0])
    limit = runner.max_batch
    if limit is None or limit == n:
        if is_device_tensor(tensor) and runner.device == "cpu":
            tensor = tensor.to_host()
        return runner.infer({input_name: tensor})
    chunks, sizes = chunked(tensor, limit, on_device=runner.device == "cuda")
    if runner.in_flight > 1 and runner.device == "cpu":  # the CPU thread plan runs chunks side by side
        for c in chunks:
            runner.submit({input_name: c})
        results = [runner.collect() for _ in chunks]
    else:
        results = [runner.infer({input_name: c}) for c in chunks]
    return _joined(results, sizes)


def run_batched_on_device(runner: Runner, input_name: str, tensor: Any,
                          device_post: Callable[[dict], dict]) -> dict[str, np.ndarray]:
    """Like :func:`run_batched`, with outputs kept on the device and reduced there by
    ``device_post`` (per chunk) to small host arrays, concatenated."""
    n = int(tensor.shape[0])
    limit = runner.max_batch
    if limit is None or limit == n:
        return device_post(runner.infer_on_device({input_name: tensor}))
    chunks, sizes = chunked(tensor, limit, on_device=True)
    return _joined([device_post(runner.infer_on_device({input_name: c})) for c in chunks], sizes)
