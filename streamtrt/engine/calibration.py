"""One calibration set for every INT8 route: the first frames of the user's own video, through
the pipeline's own decode and preprocessing, kept as one ``.npz`` per model, source, frame count
and preprocessing. TensorRT's entropy calibrator and ONNX Runtime's static quantization read the
same tensors; a second run reads them from the cache and decodes nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from ..errors import ConfigError
from ..preprocess.spec import PreprocessSpec

log = logging.getLogger("streamtrt")

_FORMAT = 1  # bump when the cached layout changes

FrameReader = Callable[[str, PreprocessSpec, int], Iterator[np.ndarray]]
"""``(source, spec, frames) -> tensors``: the first ``frames`` frames of ``source`` through the
inference preprocessing of ``spec``, in source order, each ``(1, C, H, W)`` (or NHWC) in ``spec``'s
dtype. Raises ``SourceError`` when the source cannot be opened. The engine layer never opens a source:
callers pass :func:`streamtrt.calibration_data.read_calibration_frames`."""


def default_calibration_dir() -> Path:
    """``$XDG_CACHE_HOME/streamtrt/calibration`` (``~/.cache/streamtrt/calibration``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "streamtrt" / "calibration"


def source_identity(source: str) -> dict:
    """What names a calibration source in the key: a local file by absolute path, size and
    modification time (an edited file is a new source); anything else by its URI."""
    p = Path(source)
    if p.is_file():
        st = p.stat()
        return {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file())
        h = hashlib.sha256()
        for f in files:
            st = f.stat()
            h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return {"path": str(p.resolve()), "listing": h.hexdigest()}
    return {"uri": source}


def calibration_key(model_sha: str, source: str, frames: int, spec: PreprocessSpec) -> str:
    """sha256 over the model's hash, the source's identity, the frame count and the preprocessing."""
    doc = {"format": _FORMAT, "model": model_sha, "source": source_identity(source), "frames": frames,
           "preprocess": dataclasses.asdict(spec)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@dataclass
class CalibrationSet:
    """Calibration input tensors, ``(N, 3, H, W)`` in the model's input dtype, in source order."""

    tensors: np.ndarray
    path: Path
    frames_read: int
    """Frames decoded and preprocessed for this call: 0 when the set came from the cache."""

    @property
    def reused(self) -> bool:
        return self.frames_read == 0

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Full batches of ``batch_size`` tensors; a last partial batch is dropped (fixed batch)."""
        for i in range(0, len(self.tensors) - batch_size + 1, batch_size):
            yield np.ascontiguousarray(self.tensors[i:i + batch_size])


def load_calibration_set(model_sha: str, source: str, spec: PreprocessSpec, frames: int,
                         cache_dir: Optional[Path] = None, read_frames: Optional[FrameReader] = None,
                         report: Callable[[str], None] = log.info) -> CalibrationSet:
    """The calibration tensors for ``model_sha`` from ``source``: read from the cache when the key
    matches, else read by ``read_frames`` (the pipeline's source and preprocessing) and cached
    atomically.

    Raises ``ConfigError`` when the source gives no frame; ``SourceError`` when it cannot be opened;
    ``ValueError`` when the set is not cached and no ``read_frames`` is given.
    """
    if frames < 1:
        raise ConfigError(f"calibration frames must be at least 1, got {frames}")
    key = calibration_key(model_sha, source, frames, spec)
    root = Path(cache_dir) if cache_dir else default_calibration_dir()
    path = root / f"calib-{key[:24]}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) == key:
                    tensors = data["tensors"]
                    report(f"calibration: {len(tensors)} frames reused from {path}")
                    return CalibrationSet(tensors, path, 0)
        except Exception as exc:  # a damaged cache file is rebuilt, never trusted
            report(f"calibration: cache {path} unreadable ({type(exc).__name__}); reading the frames again")
    if read_frames is None:
        raise ValueError("load_calibration_set: the calibration set is not cached and no read_frames was given "
                         "(pass streamtrt.calibration_data.read_calibration_frames)")
    chunks = list(read_frames(source, spec, frames))
    if not chunks:
        raise ConfigError(f"calibration source {source}: no frames could be read")
    tensors = np.concatenate(chunks)
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".calib-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, tensors=tensors, key=np.array(key))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    report(f"calibration: {len(tensors)} frames read from {source}, cached at {path}")
    return CalibrationSet(tensors, path, len(tensors))
