"""The engine cache: engines keyed by everything that makes one valid, written atomically,
built by one process at a time.

An engine only fits the TensorRT version and the GPU (or DLA core) it was built for, with the
precision, profiles, calibration and plugins it was built with; all of that is in the key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from ...errors import ModelError, StreamTRTError
from ...fileio import atomic_write  # noqa: F401 - builder and calibrator write through it too
from ...model_info import read_model_info

KEY_VERSION = 1


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def external_data_files(onnx_path: Path) -> list[Path]:
    """Files an ONNX model keeps its weights in (``location`` of external tensors), sorted."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return []
    files = []
    for loc in read_model_info(onnx_path).external_data:
        p = onnx_path.parent / loc
        if not p.is_file():
            raise ModelError(f"{onnx_path}: external data file not found: {loc}")
        files.append(p)
    return files


def hash_model(onnx_path: Path) -> str:
    """sha256 of the ONNX file; with external data, sha256 over the file's and each data file's."""
    files = external_data_files(onnx_path)
    if not files:
        return sha256_file(onnx_path)
    h = hashlib.sha256(sha256_file(onnx_path).encode())
    for f in files:
        h.update(f.name.encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on. Two builds with equal keys are interchangeable."""

    model_sha256: str
    tensorrt: str  # e.g. "tensorrt 10.13.0"
    device: str  # "NVIDIA H100 80GB HBM3 sm9.0 132SM" or "DLA0 on <gpu> (gpu fallback)"
    precision: str
    profiles: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...] = ()
    workspace_mb: Optional[int] = None
    calibration_sha256: Optional[str] = None
    plugins_sha256: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()  # anything else that changes the plan
    version: int = KEY_VERSION

    def as_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:20]

    def differences(self, other: dict) -> list[str]:
        """Human-readable fields in which a stored key (as a dict) differs from this one."""
        mine = self.as_dict()
        out = []
        for name, value in mine.items():
            theirs = other.get(name)
            if theirs == value:
                continue
            if name in ("model_sha256", "calibration_sha256"):
                out.append(f"{'model' if name == 'model_sha256' else 'calibration cache'} changed")
            elif name == "options" and isinstance(theirs, list):
                old, new = dict(map(tuple, theirs)), dict(map(tuple, value))
                out += [f"{k} {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
            else:
                out.append(f"{name} {_short(theirs)} -> {_short(value)}")
        return out


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "streamtrt" / "engines"


@dataclass
class CacheEntry:
    engine: Path
    meta: Path


@dataclass
class EngineCache:
    """Engines as ``<model>-<digest>.engine`` with a ``.json`` sidecar holding the key."""

    root: Path = field(default_factory=default_cache_dir)

    def entry(self, key: EngineKey, model_name: str) -> CacheEntry:
        stem = f"{Path(model_name).stem}-{key.digest}"
        return CacheEntry(self.root / f"{stem}.engine", self.root / f"{stem}.json")

    def load(self, key: EngineKey, model_name: str) -> Optional[bytes]:
        """The cached engine for ``key``, or ``None``."""
        entry = self.entry(key, model_name)
        try:
            meta = json.loads(entry.meta.read_text())
            if meta.get("key") != key.as_dict():
                return None
            return entry.engine.read_bytes()
        except (OSError, ValueError):
            return None

    def explain_miss(self, key: EngineKey, model_name: str) -> Optional[str]:
        """Why an engine of the same model in the cache does not fit, if there is one."""
        best: Optional[list[str]] = None
        for meta_path in sorted(self.root.glob(f"{Path(model_name).stem}-*.json")):
            try:
                other = json.loads(meta_path.read_text()).get("key", {})
            except (OSError, ValueError):
                continue
            diff = key.differences(other)
            if diff and (best is None or len(diff) < len(best)):
                best = diff
        return "; ".join(best) if best else None

    def store(self, key: EngineKey, model_name: str, plan: bytes, extra: Optional[dict] = None) -> CacheEntry:
        """Write the engine, then its sidecar, each atomically (temp file + rename)."""
        entry = self.entry(key, model_name)
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(entry.engine, plan)
        meta = {"key": key.as_dict(), "digest": key.digest, "model": model_name, "size": len(plan), **(extra or {})}
        atomic_write(entry.meta, (json.dumps(meta, indent=2) + "\n").encode())
        return entry

    @contextlib.contextmanager
    def lock(self, key: EngineKey) -> Iterator[None]:
        """Hold an exclusive file lock for this key, so one process builds and the others wait."""
        locks = self.root / ".locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(locks / f"{key.digest}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise StreamTRTError(f"engine cache {self.root} is not writable: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
