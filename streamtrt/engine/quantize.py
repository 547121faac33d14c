"""Static INT8 quantization to a Q/DQ ONNX model, calibrated on the user's own video.

The calibration tensors are the pipeline's own (source -> decode -> preprocessing), shared with
TensorRT's INT8 calibrator through :mod:`streamtrt.engine.calibration` (read by :mod:`streamtrt.calibration_data`). The result is a Q/DQ
model: what ONNX Runtime's CPU execution provider runs in INT8, and what TensorRT takes as
explicit quantization (the only INT8 route of strongly typed TensorRT).

Parameters follow ONNX Runtime's guidance for ``quantize_static``
(https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html): QDQ format;
for the CPU, ``uint8`` activations and ``int8`` weights, with ``reduce_range`` (7-bit weights) on
x86 CPUs without VNNI; for TensorRT, symmetric ``int8`` activations and weights.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
import warnings
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from ..errors import BackendUnavailableError, ConfigError, ModelError, first_line
from ..model_info import read_model_info
from ..preprocess.spec import PreprocessSpec
from .calibration import CalibrationSet, FrameReader, load_calibration_set

if TYPE_CHECKING:
    from ..config import Config  # the job config; only cfg.model is read

log = logging.getLogger("streamtrt")

METHODS = ("minmax", "entropy", "percentile")
TARGETS = ("cpu", "tensorrt")


@dataclass
class QuantizeResult:
    output: Path
    calibration: CalibrationSet
    method: str
    target: str
    per_channel: bool
    reduce_range: bool
    op_counts: dict = field(default_factory=dict)
    """Node counts of the quantized model by op type (``QuantizeLinear``, ``DequantizeLinear``, ...)."""
    reasons: list[str] = field(default_factory=list)


def cpu_has_vnni() -> Optional[bool]:
    """Whether this x86 CPU has an 8-bit dot-product instruction (AVX-512 VNNI or AVX-VNNI);
    None where that cannot be read (not Linux, not x86)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_vnni", "avx_vnni"} & flags)
    except OSError:
        return None
    return None


def model_input_spec(cfg: Config) -> tuple[str, Optional[int], PreprocessSpec]:
    """(input name, fixed batch or None, preprocessing spec) of ``cfg.model``: the same rules as
    the pipeline (an NCHW float input; ``model.input.size`` where height/width are dynamic)."""
    path = Path(cfg.model.path)
    if not path.is_file():
        raise ModelError(f"model not found: {path}")
    inputs = read_model_info(path).inputs
    if len(inputs) != 1:
        raise ModelError(f"{path}: expected one image input, the model has {len(inputs)}")
    dims = [d if isinstance(d, int) else None for d in inputs[0].shape]
    if len(dims) != 4 or dims[1] not in (3, None):
        raise ModelError(f"{path}: input {inputs[0].name} {dims} is not an NCHW image tensor")
    dtype = inputs[0].dtype.name
    if dtype not in ("float32", "float16"):
        raise ModelError(f"{path}: input dtype {dtype} is not supported (float32/float16)")
    h, w = dims[2], dims[3]
    if h is None or w is None:
        if cfg.model.input.size is None:
            raise ModelError(f"{path}: input size is dynamic; set model.input.size: [height, width]")
        h, w = cfg.model.input.size
    return inputs[0].name, dims[0], PreprocessSpec.from_config(cfg.model.input, h, w, dtype)


class _Reader:
    """ONNX Runtime ``CalibrationDataReader`` over a calibration set, in the model's batch size."""

    def __init__(self, name: str, cset: CalibrationSet, batch: int):
        self.name, self.cset, self.batch = name, cset, batch
        self.rewind()

    def get_next(self):
        batch = next(self._it, None)
        return None if batch is None else {self.name: batch}

    def rewind(self):
        self._it = self.cset.batches(self.batch)

    def __len__(self):
        return len(self.cset.tensors) // self.batch


def quantize_model(cfg: Config, source: str, output: Optional[Path] = None, frames: int = 128,
                   method: str = "minmax", target: str = "cpu", per_channel: bool = True,
                   reduce_range: Optional[bool] = None, cache_dir: Optional[Path] = None,
                   report: Callable[[str], None] = log.info, read_frames: Optional[FrameReader] = None) -> QuantizeResult:
    """Write a Q/DQ INT8 copy of ``cfg.model.path`` (default ``MODEL.int8.onnx`` beside it),
    calibrated on the first ``frames`` frames of ``source``.

    ``method``: ``minmax``, ``entropy`` or ``percentile`` (ONNX Runtime's calibrators).
    ``target``: ``cpu`` (uint8 activations) or ``tensorrt`` (symmetric int8, TensorRT's explicit
    quantization). ``reduce_range``: 7-bit weights; default on x86 without VNNI, for the CPU target.
    ``read_frames`` reads the calibration frames when they are not cached
    (:func:`streamtrt.calibration_data.read_calibration_frames`).

    Raises ``ConfigError`` for bad options or a source without frames, ``ModelError`` for a
    model that cannot be loaded or quantized, ``BackendUnavailableError`` without ONNX Runtime.
    """
    if method not in METHODS:
        raise ConfigError(f"calibration method {method!r}: expected one of {', '.join(METHODS)}")
    if target not in TARGETS:
        raise ConfigError(f"quantization target {target!r}: expected one of {', '.join(TARGETS)}")
    try:
        from onnxruntime import quantization as q
    except Exception as exc:
        raise BackendUnavailableError(f"ONNX Runtime quantization is not available: {exc}") from None
    from .tensorrt.cache import hash_model

    model = Path(cfg.model.path)
    name, fixed_batch, spec = model_input_spec(cfg)
    if spec.dtype != "float32":
        raise ModelError(f"{model}: INT8 quantization starts from a float32 model (input is {spec.dtype})")
    output = Path(output) if output else model.with_name(model.stem + ".int8.onnx")
    if output.resolve() == model.resolve():
        raise ConfigError(f"output {output} would overwrite the model")
    reasons = []
    if reduce_range is None:
        vnni = cpu_has_vnni()
        reduce_range = target == "cpu" and vnni is False
        if target == "cpu":
            reasons.append("reduce_range " + ("on: x86 CPU without VNNI (7-bit weights avoid int16 saturation)"
                                              if reduce_range else "off: " + ("CPU has VNNI" if vnni else
                                                                              "not an x86 CPU without VNNI")))
    cset = load_calibration_set(hash_model(model), source, spec, frames, cache_dir, read_frames, report=report)
    batch = fixed_batch or 1
    if len(cset.tensors) < batch:
        raise ConfigError(f"calibration: {len(cset.tensors)} frames, fewer than the model's batch {batch}")
    calib = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
             "percentile": q.CalibrationMethod.Percentile}[method]
    symmetric = target == "tensorrt"
    extra = {"ActivationSymmetric": symmetric, "WeightSymmetric": True}
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    report(f"quantizing {model.name} for {target}: {method} calibration on {len(cset.tensors)} frames, "
           f"{'per-channel' if per_channel else 'per-tensor'} weights; preprocessing {spec.width}x{spec.height} "
           f"{spec.resize}, {spec.color}, mean {list(spec.mean)}, std {list(spec.std)}")
    with tempfile.TemporaryDirectory(prefix="streamtrt-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference and graph optimisation first, as ONNX Runtime recommends (symbolic shape
        # inference needs sympy; static shapes do without it).
        no_sympy = importlib.util.find_spec("sympy") is None
        try:
            q.quant_pre_process(str(model), str(prepared), skip_symbolic_shape=no_sympy)
            source_model = prepared
        except Exception as exc:
            reasons.append(f"pre-processing skipped ({type(exc).__name__}): quantized the model as is")
            source_model = model
        cache = Path(tmp) / "ranges.json"  # later passes reuse the ranges: no second calibration
        excluded: list[str] = []
        for _ in range(4):
            try:
                with warnings.catch_warnings():  # a degenerate range is found and handled below
                    warnings.simplefilter("ignore", RuntimeWarning)
                    q.quantize_static(
                        str(source_model), str(output), _Reader(name, cset, batch), quant_format=q.QuantFormat.QDQ,
                        per_channel=per_channel, reduce_range=reduce_range,
                        activation_type=q.QuantType.QInt8 if symmetric else q.QuantType.QUInt8,
                        weight_type=q.QuantType.QInt8, calibrate_method=calib, extra_options=extra,
                        nodes_to_exclude=list(excluded), calibration_cache_path=str(cache),
                    )
            except (ConfigError, ModelError):
                raise
            except Exception as exc:
                first = first_line(exc, 10_000)
                hint = ""
                if method != "minmax" and "not finite" in first:
                    # ONNX Runtime's histogram calibrators cannot take an infinite value (e.g. -inf
                    # max-pool padding); min/max calibration finds those tensors and keeps them in float.
                    hint = "; --method minmax keeps such tensors in float"
                raise ModelError(f"{model}: quantization failed ({first[:300]}){hint}") from None
            bad = _bad_scale_tensors(output)
            if not bad:
                break
            more = sorted(_nodes_touching(source_model, bad) - set(excluded))
            if not more:
                raise ModelError(f"{model}: quantization left non-finite or zero scales on {sorted(bad)[:5]}")
            excluded += more
        else:
            raise ModelError(f"{model}: quantization left non-finite or zero scales after excluding {len(excluded)} nodes")
        if excluded:
            reasons.append(f"kept in float ({len(excluded)} nodes): their calibrated range is not finite "
                           f"or empty (e.g. -inf max-pool padding): {', '.join(excluded[:6])}"
                           + (" ..." if len(excluded) > 6 else ""))
    import onnx

    counts = Counter(n.op_type for n in onnx.load(str(output)).graph.node)
    if not counts.get("QuantizeLinear") or not counts.get("DequantizeLinear"):
        raise ModelError(f"{model}: quantization produced no Q/DQ nodes (nothing quantizable?)")
    report(f"wrote {output}: {counts['QuantizeLinear']} QuantizeLinear, {counts['DequantizeLinear']} "
           "DequantizeLinear nodes")
    return QuantizeResult(output, cset, method, target, per_channel, reduce_range, dict(counts), reasons)


def _bad_scale_tensors(path: Path) -> set[str]:
    """Tensors the Q/DQ model quantizes with a non-finite or non-positive scale (e.g. a range that
    reaches -inf): their dequantized values would be garbage."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    inits = {i.name: i for i in m.graph.initializer}
    bad = set()
    for n in m.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 1 and n.input[1] in inits:
            scale = numpy_helper.to_array(inits[n.input[1]])
            if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
                t = n.input[0]
                bad.add(t[:-len("_quantized")] if t.endswith("_quantized") else t)
    return bad


def _nodes_touching(path: Path, tensors: set[str]) -> set[str]:
    """Names of the nodes of ``path`` that produce or consume any of ``tensors``."""
    import onnx

    return {n.name for n in onnx.load(str(path)).graph.node
            if n.name and (tensors & set(n.input) or tensors & set(n.output))}
