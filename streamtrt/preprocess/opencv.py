"""The OpenCV/numpy preprocessor: for machines without DALI, and the reference for DALI's output."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .spec import Geometry, PreprocessSpec


def letterbox_or_resize(image: np.ndarray, spec: PreprocessSpec, geom: Geometry) -> np.ndarray:
    """Resize (and pad, for letterbox) one HxWx3 uint8 frame to the model's input size."""
    resized = cv2.resize(image, (geom.resized_width, geom.resized_height), interpolation=cv2.INTER_LINEAR)
    if spec.resize == "stretch":
        return resized
    bottom = spec.height - geom.resized_height - geom.pad_y
    right = spec.width - geom.resized_width - geom.pad_x
    return cv2.copyMakeBorder(
        resized, geom.pad_y, bottom, geom.pad_x, right, cv2.BORDER_CONSTANT, value=(spec.pad_value,) * 3
    )


class OpenCVPreprocessor:
    """Frames (BGR uint8) -> one NCHW (or NHWC) tensor plus the geometry of each frame."""

    name = "opencv"

    def __init__(self, spec: PreprocessSpec):
        self.spec = spec
        self._mean = np.asarray(spec.mean, np.float32).reshape(3, 1, 1)
        self._inv_std = (1.0 / np.asarray(spec.std, np.float32)).reshape(3, 1, 1)

    def __call__(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Geometry]]:
        spec = self.spec
        out = np.empty(spec.batch_shape(len(images)), spec.np_dtype)
        geoms = []
        for i, image in enumerate(images):
            geom = spec.geometry(image.shape[0], image.shape[1])
            boxed = letterbox_or_resize(image, spec, geom)
            if spec.color == "rgb":
                boxed = boxed[:, :, ::-1]
            if spec.dtype == "uint8":  # raw pixels (mean 0, std 1 by construction)
                out[i] = boxed if spec.layout == "nhwc" else boxed.transpose(2, 0, 1)
            elif spec.layout == "nhwc":
                out[i] = (boxed.astype(np.float32) - self._mean.reshape(1, 1, 3)) * self._inv_std.reshape(1, 1, 3)
            else:
                out[i] = (boxed.transpose(2, 0, 1).astype(np.float32) - self._mean) * self._inv_std
            geoms.append(geom)
        return out, geoms

    def close(self) -> None:
        pass
