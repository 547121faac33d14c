"""Calibration frames for INT8: the user's own source, through the pipeline's own decode and
preprocessing. The engine layer never opens a source: it takes :func:`read_calibration_frames` (a
:data:`~streamtrt.engine.calibration.FrameReader`) from its caller, the way Polygraphy's
calibrator takes a data loader."""

from __future__ import annotations

import itertools
from typing import Iterator, Optional

import numpy as np

from .errors import ConfigError
from .preprocess.opencv import OpenCVPreprocessor
from .preprocess.spec import PreprocessSpec
from .sources import open_source, parse_source_uri


def calibration_batches(source: str, spec: PreprocessSpec, batch_size: int, frames: int,
                        preprocess=None) -> Iterator[np.ndarray]:
    """Full batches of ``batch_size`` preprocessed frames (``(batch_size, C, H, W)``, or NHWC, in
    ``spec``'s dtype), ``frames`` at most, in source order; ``preprocess`` defaults to the OpenCV
    preprocessing of ``spec`` (what inference applies on the CPU path).

    A last partial batch is dropped: the calibrator's batch size is fixed. Raises ``ConfigError``
    when ``frames < batch_size``; ``SourceError`` when the source cannot be opened.
    """
    if frames < batch_size:
        raise ConfigError(f"tensorrt.calibration: frames ({frames}) must be at least batch_size ({batch_size})")
    preprocess = preprocess or OpenCVPreprocessor(spec)
    with open_source(parse_source_uri(source)) as src:
        images = (f.image for f in itertools.islice(iter(src), frames))
        while True:
            chunk = list(itertools.islice(images, batch_size))
            if len(chunk) < batch_size:
                return
            tensor, _ = preprocess(chunk)
            yield np.ascontiguousarray(tensor)


def read_calibration_frames(source: str, spec: PreprocessSpec, frames: int,
                            preprocess: Optional[object] = None) -> Iterator[np.ndarray]:
    """The first ``frames`` frames of ``source``, preprocessed one at a time (``(1, C, H, W)`` each):
    the :data:`~streamtrt.engine.calibration.FrameReader` that INT8 calibration is given."""
    return calibration_batches(source, spec, 1, frames, preprocess)
