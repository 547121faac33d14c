"""How a model is fed and read: its config merged with what the model says about itself.

Every choice carries its reason, so ``run``, ``inspect`` and ``init`` can print them. The rule:
a key the config sets wins (with a warning where the model's metadata says otherwise); a key it
leaves unset takes the model's word (Ultralytics metadata, or the input tensor itself), else the
config default.

Ultralytics preprocessing (``ultralytics/data/augment.py`` ``LetterBox`` with ``center=True`` and
fill 114; ``engine/predictor.py`` ``preprocess``: BGR->RGB, ``/255``) is what its exports expect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .config import Config, InputConfig
from .errors import ConfigError, ModelError
from .model_info import ModelInfo, read_model_info
from .postprocess.classes import COCO_CLASSES, load_class_names
from .postprocess.decoders import check_format

ULTRALYTICS_INPUT = {"resize": "letterbox", "color": "rgb", "mean": (0.0, 0.0, 0.0), "std": (255.0, 255.0, 255.0),
                     "pad_value": 114}
"""What Ultralytics' predictor does before its exported models: letterbox (pad 114), RGB, /255."""

TF_UINT8_INPUT = {"resize": "stretch", "color": "rgb", "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
"""A uint8 image input (TensorFlow exports) takes raw RGB pixels; the model resizes and normalises inside."""

_PREPROCESS_KEYS = ("resize", "color", "mean", "std", "pad_value")


@dataclass
class Choice:
    """One decision: what was chosen for ``key`` and why."""

    key: str
    value: Any
    reason: str

    def line(self) -> str:
        return f"{self.key}: {_show(self.value)} ({self.reason})"


@dataclass
class ModelSetup:
    """A model's input tensor, preprocessing, output format and class names, with the reasons."""

    info: ModelInfo
    input_name: str
    layout: str  # "nchw" or "nhwc"
    dtype: str  # "float32", "float16" or "uint8"
    size: tuple[int, int]  # (height, width)
    input: InputConfig  # resolved resize, color, mean, std, pad_value
    format: str  # a DECODERS key, or "auto" (chosen from the real output shapes)
    class_names: list[str]
    choices: list[Choice] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def spec(self):
        from .preprocess.spec import PreprocessSpec

        return PreprocessSpec.from_config(self.input, self.size[0], self.size[1], self.dtype, self.layout)

    @property
    def value_range(self) -> str:
        """The range of input values the preprocessing produces, e.g. ``0..1``."""
        if self.dtype == "uint8":
            return "0..255 (uint8)"
        mean, std = np.asarray(self.input.mean), np.asarray(self.input.std)
        lo, hi = (0 - mean) / std, (255 - mean) / std
        if np.allclose(lo, lo[0]) and np.allclose(hi, hi[0]):
            return f"{lo[0]:.4g}..{hi[0]:.4g}"
        return ", ".join(f"{a:.3g}..{b:.3g}" for a, b in zip(lo, hi))

    def input_shape(self, batch: Any = "N") -> list:
        h, w = self.size
        return [batch, 3, h, w] if self.layout == "nchw" else [batch, h, w, 3]

    def choose_format(self, chosen: str, reason: str) -> None:
        """Record the decoder picked at start-up (from the real output shapes)."""
        self.choices = [c for c in self.choices if c.key != "format"]
        self.choices.insert(0, Choice("format", chosen, reason))

    def lines(self) -> list[str]:
        """The model part of the plan, one choice per line."""
        return [c.line() for c in self.choices]

    def as_dict(self) -> dict[str, Any]:
        return {c.key: {"value": _jsonable(c.value), "reason": c.reason} for c in self.choices}


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        head = ", ".join(value[:5])
        return f"{len(value)} [{head}{', ...' if len(value) > 5 else ''}]"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _explicit(model_cfg) -> set[str]:
    """Keys the config sets on purpose (``model.X``, ``model.input.X``), not defaults."""
    keys = {f"model.{k}" for k in model_cfg.model_fields_set}
    keys |= {f"model.input.{k}" for k in model_cfg.input.model_fields_set}
    return keys


def _layout(info: ModelInfo) -> tuple[str, Any, str, tuple]:
    if not info.inputs:
        raise ModelError(f"{info.path}: the model has no inputs")
    inp = info.inputs[0]
    shape = inp.shape
    if len(shape) != 4:
        raise ModelError(f"{info.path}: input {inp.name} {list(shape)} is not an image tensor (NCHW or NHWC)")
    if shape[1] == 3:
        layout = "nchw"
    elif shape[3] == 3:
        layout = "nhwc"
    elif shape[1] is None or isinstance(shape[1], str):
        layout = "nchw"  # channel count left dynamic: the common PyTorch export
    else:
        raise ModelError(f"{info.path}: input {inp.name} {list(shape)} has no 3-channel axis (NCHW or NHWC)")
    dtype = inp.dtype
    if dtype not in (np.float32, np.float16, np.uint8):
        raise ModelError(f"{info.path}: input dtype {dtype} is not supported (float32, float16 or uint8)")
    hw = shape[2:4] if layout == "nchw" else shape[1:3]
    return layout, inp, str(np.dtype(dtype)), tuple(hw)


def resolve_model(config: Config, info: Optional[ModelInfo] = None) -> ModelSetup:
    """Merge ``config.model`` with what the model file says; see the module docstring for the rule.

    Raises :class:`ModelError` for an input that is no image tensor, or a dynamic size with no
    size given; :class:`ConfigError` for settings the input cannot take (mean/std on uint8)."""
    mc = config.model
    check_format(mc.format)
    info = info or read_model_info(mc.path)
    explicit = _explicit(mc)
    ul = info.ultralytics
    choices: list[Choice] = []
    warnings: list[str] = []
    layout, inp, dtype, hw = _layout(info)
    u_what = f"Ultralytics {ul.get('task', 'detect')} export metadata" if ul else ""

    # -- input size --------------------------------------------------------------------------------
    if all(isinstance(d, int) for d in hw):
        size = (int(hw[0]), int(hw[1]))
        size_reason = "fixed in the model"
        if mc.input.size is not None and tuple(mc.input.size) != size:
            warnings.append(f"model.input.size {list(mc.input.size)} ignored: the model's input is fixed at "
                            f"{list(size)}")
    elif mc.input.size is not None:
        size, size_reason = tuple(mc.input.size), "dynamic in the model; model.input.size"
    elif info.imgsz is not None:
        size, size_reason = info.imgsz, "dynamic in the model; the metadata's imgsz"
    else:
        raise ModelError(f"{info.path}: input size is dynamic; set model.input.size: [height, width]")
    choices.append(Choice("input", f"{inp.name} {'x'.join(map(str, _shape(layout, size)))} {layout.upper()} {dtype}",
                          size_reason))

    # -- preprocessing -----------------------------------------------------------------------------
    detected: dict[str, Any] = {}
    detected_why = ""
    if dtype == "uint8":
        detected, detected_why = dict(TF_UINT8_INPUT), "uint8 input: raw pixels (TensorFlow convention: RGB)"
    elif ul is not None:
        detected, detected_why = dict(ULTRALYTICS_INPUT), u_what
    values: dict[str, Any] = {}
    for key in _PREPROCESS_KEYS:
        cfg_value = getattr(mc.input, key)
        if f"model.input.{key}" in explicit:
            values[key] = cfg_value
            why = "config"
            if key in detected and _differs(cfg_value, detected[key]):
                warnings.append(f"model.input.{key}: the config says {_show(cfg_value)} but the model's {detected_why} "
                                f"says {_show(detected[key])}; using the config's (wrong preprocessing gives "
                                f"plausible but wrong boxes)")
                why = f"config; the model says {_show(detected[key])}"
        elif key in detected:
            values[key], why = detected[key], detected_why
        else:
            values[key], why = cfg_value, "default: the model does not say"
        if key == "pad_value" and values["resize"] != "letterbox":
            continue
        choices.append(Choice(f"preprocess.{key}", values[key], why))
    if mc.input.dtype is not None and "model.input.dtype" in explicit and dtype == "uint8":
        warnings.append(f"model.input.dtype {mc.input.dtype} ignored: the model takes uint8")
    if dtype == "uint8" and (any(values["mean"]) or any(s != 1 for s in values["std"])):
        raise ConfigError("model.input: this model takes uint8 pixels; mean must be [0, 0, 0] and std [1, 1, 1]")
    input_cfg = mc.input.model_copy(update=values)

    # -- class names -------------------------------------------------------------------------------
    meta_names = info.class_names
    if "model.classes" in explicit:
        names = load_class_names(mc.classes)
        why = "config"
        if meta_names is not None and meta_names != names:
            warnings.append(f"model.classes: the config lists {len(names)} names but the model's metadata "
                            f"{len(meta_names)} ({', '.join(meta_names[:3])}, ...); using the config's")
            why = f"config; the metadata lists {len(meta_names)} others"
    elif meta_names is not None:
        names, why = meta_names, "the model's metadata: names"
    else:
        names, why = list(COCO_CLASSES), "default: the model names no classes, COCO's 80 (set model.classes)"
    choices.append(Choice("classes", names, why))

    # -- output format -----------------------------------------------------------------------------
    fmt, fmt_why = mc.format, "config"
    hint, hint_why = _format_hint(info, dtype, layout)
    if "model.format" in explicit and mc.format != "auto":
        if hint and hint != mc.format:
            warnings.append(f"model.format: the config says {mc.format} but the model looks like {hint} "
                            f"({hint_why}); using the config's")
    elif hint:
        fmt, fmt_why = hint, hint_why
    else:
        fmt, fmt_why = "auto", "from the output shapes"
    choices.insert(0, Choice("format", fmt, fmt_why))
    return ModelSetup(info, inp.name, layout, dtype, size, input_cfg, fmt, names, choices, warnings)


def _shape(layout: str, size: tuple[int, int]) -> list:
    return [1, 3, *size] if layout == "nchw" else [1, *size, 3]


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return not np.allclose(np.asarray(a, float), np.asarray(b, float))
    return a != b


def _format_hint(info: ModelInfo, dtype: str, layout: str) -> tuple[Optional[str], str]:
    """The output format the model's metadata (or TF input convention) names, if any."""
    ul = info.ultralytics
    if ul is not None:
        task = info.task
        desc = str(ul.get("description", "")).strip()
        if task not in ("detect", "pose", "segment"):
            return None, ""
        if ul.get("head") == "RTDETRDecoder" or "rtdetr" in desc.lower():
            return "rtdetr", f"Ultralytics metadata: {desc}, head RTDETRDecoder"
        if info.end2end and task != "detect":
            return None, ""  # [B, N, 6+extra]: not read
        if task == "pose":
            k, d = info.kpt_shape or (0, 0)
            return "yolov8", f"Ultralytics metadata: pose head [B, 4+classes+{k}x{d} keypoints, anchors]"
        if task == "segment":
            return "yolov8", ("Ultralytics metadata: segment head [B, 4+classes+mask coefficients, anchors] "
                              "and mask prototypes")
        if info.end2end:
            return "decoded", "Ultralytics metadata: end2end (NMS-free head: x1, y1, x2, y2, score, class)"
        return "yolov8", "Ultralytics metadata: detect head [B, 4+classes, anchors]"
    names = {o.name.split(":")[0] for o in info.outputs}
    if dtype == "uint8" and layout == "nhwc" and {"detection_boxes", "detection_scores"} <= names:
        return "tfod", "TensorFlow Object Detection outputs (detection_boxes, detection_scores, ...)"
    return None, ""


def select_for(setup: ModelSetup, shapes: Mapping[str, tuple[int, ...]]):
    """The decoder for ``setup`` given the real output shapes; records the choice and its reason."""
    from .postprocess.decoders import select_decoder

    task = setup.info.task
    decoder = None
    if setup.format == "yolov8" and task in ("pose", "segment"):
        from .postprocess.decoders.yolo import YoloV8Decoder

        nc = len(setup.class_names)
        if task == "pose":
            decoder = YoloV8Decoder.with_extra(shapes, nc, kpt_shape=setup.info.kpt_shape or (17, 3))
        else:
            heads = [s[1] for s in shapes.values() if len(s) == 3 and s[1] > 4 + nc and s[2] > s[1]]
            decoder = YoloV8Decoder.with_extra(shapes, nc, extra=heads[0] - 4 - nc) if heads else None
            if decoder is not None:
                decoder.input_hw = setup.size  # masks are cut at the input size, then mapped to the frame
        if decoder is None:
            from .errors import ModelError

            raise ModelError(f"{setup.info.path}: a {task} export whose outputs are not the Ultralytics layout: "
                             + ", ".join(f"{n} {list(s)}" for n, s in shapes.items()))
    decoder = decoder or select_decoder(setup.format, shapes, setup.size, len(setup.class_names))
    reason = next((c.reason for c in setup.choices if c.key == "format"), "")
    if setup.format == "auto":
        reason = "matched the output shapes " + ", ".join(f"{n} {list(s)}" for n, s in shapes.items())
    setup.choose_format(decoder.name, reason)
    setup.format = decoder.name
    return decoder


def output_shapes(setup: ModelSetup, infer: Optional[Callable[[dict], Mapping[str, np.ndarray]]] = None,
                  batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Output shapes: as declared when static, else from one zero batch through ``infer`` (or
    ONNX Runtime on the CPU), since exports often leave them undeclared."""
    declared = {o.name: o.shape for o in setup.info.outputs}
    if infer is None and all(isinstance(d, int) for s in declared.values() for d in s):
        return {n: tuple(int(d) for d in s) for n, s in declared.items()}
    dummy = np.zeros(setup.spec().batch_shape(batch), setup.spec().np_dtype)
    if infer is None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(setup.info.path), opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        outs = dict(zip(names, session.run(None, {setup.input_name: dummy})))
    else:
        outs = infer({setup.input_name: dummy})
    return {name: tuple(int(d) for d in np.shape(arr)) for name, arr in outs.items()}
