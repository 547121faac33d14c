"""The model: its file, input tensor and postprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field, field_validator


from .base import _Strict


class InputConfig(_Strict):
    """How frames become the model's input tensor. A key left unset takes what the model's metadata
    says (an Ultralytics export: letterbox, pad 114, RGB, /255), else the default shown; a key set
    here wins, and ``run`` warns where it disagrees with the metadata."""

    resize: Literal["stretch", "letterbox"] = "stretch"
    """``stretch``: plain resize to the input size; ``letterbox``: keep aspect ratio and pad."""
    color: Literal["bgr", "rgb"] = "bgr"
    """Channel order the model expects."""
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Subtracted per channel, in pixel units (0..255), in the order given by ``color``."""
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Divides per channel after the mean, e.g. ``[255, 255, 255]`` for YOLO models."""
    pad_value: int = Field(114, ge=0, le=255)
    """Fill value of the letterbox border."""
    dtype: Optional[Literal["float32", "float16"]] = None
    """Input dtype; by default read from the model."""
    size: Optional[tuple[int, int]] = None
    """Input (height, width) for a model that leaves them dynamic; default: the metadata's ``imgsz``."""

    @field_validator("std")
    @classmethod
    def _std_not_zero(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(s == 0 for s in v):
            raise ValueError("std values must be non-zero")
        return v


class ModelConfig(_Strict):
    """The detector."""

    path: Path
    """An ONNX model (or, with the TensorRT runner, an ONNX model to build an engine from)."""
    format: str = "auto"
    """Output layout: ``auto`` or a registered decoder (``streamtrt.postprocess.decoders.DECODERS``:
    nanodet, yolov8, yolov5, decoded, efficientnms, rtdetr, tfod; checked when the model is set up);
    ``auto`` picks it from the model's metadata (Ultralytics exports) and output shapes.
    ``decoded``: ``[B, N, 6]`` rows of x1, y1, x2, y2, score, class (YOLOv10, YOLO26, end-to-end exports);
    ``rtdetr``: normalised cxcywh queries with per-class scores; ``tfod``: TensorFlow Object Detection API."""
    classes: Union[Literal["coco"], list[str], Path] = "coco"
    """Class names: ``coco``, a list, or a text file with one name per line. When unset, the names
    in the model's metadata (Ultralytics ``names``), else COCO's."""
    input: InputConfig = InputConfig()


class PostprocessConfig(_Strict):
    """Turning raw outputs into detections."""

    score_threshold: float = Field(0.35, ge=0.0, le=1.0)
    iou_threshold: float = Field(0.5, ge=0.0, le=1.0)
    """IoU above which a lower-scored box of the same class is suppressed."""
    max_detections: int = Field(100, ge=1)
    """Per frame, after NMS."""
    classes: Optional[list[Union[int, str]]] = None
    """Keep only these classes (ids or names); all when unset."""
