"""INT8 entropy calibration on real frames (batches of the calibration set, see
:mod:`streamtrt.engine.calibration`; the frames are read above the engine layer)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Iterator, Optional

import numpy as np


def make_entropy_calibrator(trt: ModuleType, batches: Optional[Iterator[np.ndarray]], batch_size: int,
                            cache_path: Path):
    """An ``IInt8EntropyCalibrator2`` that feeds ``batches`` and reads/writes ``cache_path``.

    With a cache file present TensorRT reads it and never asks for a batch.
    """
    from .. import cuda

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = batches
            self.buffer: Optional[cuda.DeviceBuffer] = None
            self.count = 0

        def get_batch_size(self):
            return batch_size

        def get_batch(self, names):
            if self.batches is None:
                return None
            batch = next(self.batches, None)
            if batch is None:
                self.release()
                return None
            if self.buffer is None:
                self.buffer = cuda.DeviceBuffer(batch.nbytes)
            rt = cuda.cudart()
            cuda.check(rt.cudaMemcpy(self.buffer.ptr, batch.ctypes.data, batch.nbytes,
                                     rt.cudaMemcpyKind.cudaMemcpyHostToDevice), "cudaMemcpy")
            self.count += 1
            return [self.buffer.ptr]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache):
            from .cache import atomic_write

            atomic_write(cache_path, bytes(cache))

        def release(self):
            if self.buffer is not None:
                self.buffer.free()
                self.buffer = None

    return EntropyCalibrator()
