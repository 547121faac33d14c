"""Model-format decoders: raw output tensors -> candidate boxes in model-input pixels.

A decoder class registers itself with :func:`register_decoder` (its ``name`` is the
``model.format`` value); :data:`DECODERS` lists them in detection order (``model.format: auto``
tries each ``match`` in turn), which is the import order in ``decoders/__init__.py``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np

from ...registry import Registry

Shapes = Mapping[str, tuple[int, ...]]


@dataclass
class Candidates:
    """Boxes of one frame before NMS: ``xyxy`` in model-input pixels."""

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    keypoints: Optional[np.ndarray] = None
    """(N, K, 3) x, y in model-input pixels and visibility, for pose heads."""
    mask_coeffs: Optional[np.ndarray] = None
    """(N, C) mask coefficients, for segmentation heads (with ``protos``)."""
    protos: Optional[np.ndarray] = None
    """(C, h, w) mask prototypes of this image."""


class OutputDecoder(abc.ABC):
    """Decodes one model family's outputs. ``match`` recognises the family from output shapes.

    Outputs are host numpy arrays ``{output name: (B, ...)}`` as the runner returns them; boxes come
    out as :class:`Candidates` in model-input pixels (the postprocessor maps them to the source)."""

    name: str = ""
    """The ``model.format`` value this decoder answers to."""
    input_hw: Optional[tuple[int, int]] = None
    """The model input ``(height, width)`` where the decoder needs it (segmentation masks are cut at it)."""
    applies_nms: bool = False  # True when the model's outputs are already suppressed

    @classmethod
    @abc.abstractmethod
    def match(cls, shapes: Shapes, input_hw: tuple[int, int], num_classes: int) -> Optional["OutputDecoder"]:
        """A decoder for these outputs, or ``None`` if they are not this family's."""

    @abc.abstractmethod
    def decode(self, outputs: Mapping[str, np.ndarray], score_threshold: float) -> list[Candidates]:
        """One :class:`Candidates` per batch item, already filtered by ``score_threshold``."""


DECODERS: "Registry[type[OutputDecoder]]" = Registry("model format")
"""``model.format`` name -> decoder class, in detection order."""


def register_decoder(cls: type[OutputDecoder]) -> type[OutputDecoder]:
    """Class decorator: register ``cls`` under ``cls.name`` (one line in the decoder's module)."""
    DECODERS.add(cls.name, cls)
    return cls


def best_class(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the highest class score and its class id."""
    ids = np.argmax(scores, axis=-1)
    return np.take_along_axis(scores, ids[..., None], axis=-1)[..., 0], ids


def confident_rows(scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose best class score exceeds ``threshold``: (row indices, best scores, class ids).

    Thresholds on the row maximum first, so the argmax runs on the few candidates only."""
    rows = np.flatnonzero(scores.max(axis=-1) > threshold)
    best, ids = best_class(scores[rows])
    return rows, best, ids


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, 0:2] - half, b[:, 0:2] + half], axis=1)
