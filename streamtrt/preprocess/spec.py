"""What the model wants as input, and the geometry that maps boxes back to the frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..config import InputConfig


@dataclass(frozen=True)
class PreprocessSpec:
    """Everything a preprocessor needs: output size, resize mode, channel order, normalisation."""

    height: int
    width: int
    resize: Literal["stretch", "letterbox"] = "stretch"
    color: Literal["bgr", "rgb"] = "bgr"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_value: int = 114
    dtype: Literal["float32", "float16", "uint8"] = "float32"
    layout: Literal["nchw", "nhwc"] = "nchw"
    """Tensor layout: ``nchw`` (PyTorch, Ultralytics) or ``nhwc`` (TensorFlow exports)."""

    def __post_init__(self) -> None:
        if self.dtype == "uint8" and (any(self.mean) or any(s != 1 for s in self.std)):
            raise ValueError("a uint8 input takes raw pixels: mean must be 0 and std 1")

    @classmethod
    def from_config(cls, cfg: InputConfig, height: int, width: int, model_dtype: str,
                    layout: str = "nchw") -> "PreprocessSpec":
        return cls(
            height=height, width=width, resize=cfg.resize, color=cfg.color,
            mean=tuple(cfg.mean), std=tuple(cfg.std), pad_value=cfg.pad_value,
            dtype=model_dtype if model_dtype == "uint8" else (cfg.dtype or model_dtype), layout=layout,
        )

    def batch_shape(self, batch: int) -> tuple[int, int, int, int]:
        """The input tensor's shape for ``batch`` frames, in this spec's layout."""
        if self.layout == "nhwc":
            return batch, self.height, self.width, 3
        return batch, 3, self.height, self.width

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def geometry(self, src_height: int, src_width: int) -> "Geometry":
        """The resize and padding that take a ``src_height x src_width`` frame to the model input."""
        if self.resize == "stretch":
            return Geometry(self.width / src_width, self.height / src_height, 0, 0, self.width, self.height)
        scale = min(self.width / src_width, self.height / src_height)
        new_w = max(1, min(self.width, int(round(src_width * scale))))
        new_h = max(1, min(self.height, int(round(src_height * scale))))
        pad_x = (self.width - new_w) // 2
        pad_y = (self.height - new_h) // 2
        return Geometry(new_w / src_width, new_h / src_height, pad_x, pad_y, new_w, new_h)


@dataclass(frozen=True)
class Geometry:
    """Frame -> input mapping: ``x_in = x_src * scale_x + pad_x`` (likewise for y)."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    resized_width: int
    resized_height: int

    def to_source(self, xyxy: np.ndarray, src_height: int, src_width: int) -> np.ndarray:
        """Map boxes from model-input pixels back to source pixels, clipped to the frame."""
        out = np.empty_like(xyxy, dtype=np.float32)
        out[:, [0, 2]] = (xyxy[:, [0, 2]] - self.pad_x) / self.scale_x
        out[:, [1, 3]] = (xyxy[:, [1, 3]] - self.pad_y) / self.scale_y
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, src_width)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, src_height)
        return out
