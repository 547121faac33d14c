"""What an ONNX model file says about itself, read once per file.

:func:`read_model_info` parses the graph's inputs, outputs and ``metadata_props`` once and caches
the result per (path, size, mtime), so start-up, ``inspect`` and ``init`` do not load the same
model several times. Ultralytics exports write their settings into ``metadata_props`` as Python
literals (``str(value)`` of ``names``, ``imgsz``, ``stride``, ``task``, ``end2end``, ``args``...;
see ``ultralytics/engine/exporter.py``); :attr:`ModelInfo.ultralytics` holds them parsed.
"""

from __future__ import annotations

import ast
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .errors import ModelError
from .tensors import Dim, TensorInfo

@dataclass(frozen=True)
class ModelInfo:
    """An ONNX model's declared inputs, outputs and metadata."""

    path: Path
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    """``metadata_props`` as stored (strings)."""
    producer: str = ""
    opset: int = 0
    quantized: bool = False
    """Whether the graph holds QuantizeLinear/DequantizeLinear nodes (explicit INT8)."""
    external_data: tuple[str, ...] = ()
    """``location`` of every tensor stored outside the file (relative to its folder), sorted, unique."""

    @functools.cached_property
    def ultralytics(self) -> Optional[dict[str, Any]]:
        """The Ultralytics export metadata, parsed; ``None`` when the model is not an Ultralytics export."""
        if self.metadata.get("author", "") != "Ultralytics" and "Ultralytics" not in self.metadata.get("description", ""):
            return None
        return {k: _literal(v) for k, v in self.metadata.items()}

    @property
    def class_names(self) -> Optional[list[str]]:
        """Class names the metadata gives (a ``names`` mapping id -> name, or a list), else ``None``."""
        raw = self.ultralytics.get("names") if self.ultralytics else _literal(self.metadata.get("names", ""))
        if isinstance(raw, dict) and raw and all(isinstance(k, int) for k in raw):
            if sorted(raw) == list(range(len(raw))):
                return [str(raw[i]) for i in range(len(raw))]
        if isinstance(raw, (list, tuple)) and raw and all(isinstance(n, str) for n in raw):
            return list(raw)
        return None

    @property
    def imgsz(self) -> Optional[tuple[int, int]]:
        """(height, width) the model was exported for, from the metadata."""
        raw = (self.ultralytics or {}).get("imgsz")
        if isinstance(raw, int):
            return raw, raw
        if isinstance(raw, (list, tuple)) and len(raw) == 2 and all(isinstance(v, int) for v in raw):
            return int(raw[0]), int(raw[1])
        return None

    @property
    def end2end(self) -> bool:
        """Whether the export's head already suppresses duplicates (YOLOv10, YOLO26, ``nms=True``)."""
        u = self.ultralytics or {}
        args = u.get("args") if isinstance(u.get("args"), dict) else {}
        return u.get("end2end") is True or args.get("nms") is True

    @property
    def task(self) -> str:
        """Ultralytics ``task`` (``detect``, ``segment``, ``pose``, ...); ``detect`` when unsaid."""
        return str((self.ultralytics or {}).get("task", "detect"))

    @property
    def kpt_shape(self) -> Optional[tuple[int, int]]:
        """Keypoints per object and values per keypoint (2: x, y; 3: x, y, visibility), pose exports."""
        raw = (self.ultralytics or {}).get("kpt_shape")
        if isinstance(raw, (list, tuple)) and len(raw) == 2 and all(isinstance(v, int) for v in raw):
            return int(raw[0]), int(raw[1])
        return None

    def describe_producer(self) -> str:
        u = self.ultralytics
        if u is not None:
            what = str(u.get("description") or "Ultralytics export").strip()
            return f"{what} (Ultralytics {u.get('version', '?')}, task {u.get('task', '?')})"
        return self.producer or "unknown producer"


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _dims(value_info) -> tuple[Dim, ...]:
    out: list[Dim] = []
    for d in value_info.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        else:
            out.append(d.dim_param or None)
    return tuple(out)


def _dtype(value_info) -> np.dtype:
    from onnx import helper

    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type))
    except Exception:
        return np.dtype("float32")


def read_model_info(path: Union[str, Path]) -> ModelInfo:
    """The :class:`ModelInfo` of an ONNX file, cached until the file changes.

    Raises :class:`~streamtrt.errors.ModelError` when the file is missing or not ONNX."""
    p = Path(path).resolve()
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ModelError(f"model not found: {path}") from None
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from None
    return _read(p, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _read(path: Path, size: int, mtime_ns: int) -> ModelInfo:
    try:
        import onnx
    except ImportError:
        raise ModelError("reading an ONNX model needs the onnx package (pip install onnx)") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{path}: not a loadable ONNX model ({exc})") from None
    g = model.graph
    inits = {i.name for i in g.initializer}
    inputs = tuple(TensorInfo(i.name, _dims(i), _dtype(i)) for i in g.input if i.name not in inits)
    outputs = tuple(TensorInfo(o.name, _dims(o), _dtype(o)) for o in g.output)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    quantized = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in g.node)
    meta = {p.key: p.value for p in model.metadata_props}
    external = sorted({entry.value for tensor in onnx.external_data_helper._get_all_tensors(model)
                       if tensor.data_location == onnx.TensorProto.EXTERNAL
                       for entry in tensor.external_data if entry.key == "location"})
    return ModelInfo(path, inputs, outputs, meta, model.producer_name, opset, quantized, tuple(external))
