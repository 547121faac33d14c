"""Output decoders and their automatic selection from output shapes.

Each decoder module registers its classes in :data:`DECODERS` (``@register_decoder``); the imports
below are their registration lines, and their order is the detection order of ``model.format: auto``
(TF's detection API before EfficientNMS: same shapes, told apart by TF's output names).
"""

from __future__ import annotations

from typing import Mapping

from ...errors import ModelError
from .base import DECODERS, Candidates, OutputDecoder, register_decoder
from .tfod import TFObjectDetectionDecoder  # registers tfod
from .decoded import DecodedDecoder, EfficientNMSDecoder  # registers efficientnms, decoded
from .yolo import YoloV5Decoder, YoloV8Decoder  # registers yolov8, yolov5
from .nanodet import NanoDetDecoder  # registers nanodet
from .detr import RTDETRDecoder  # registers rtdetr

__all__ = ["Candidates", "OutputDecoder", "DECODERS", "register_decoder", "check_format", "select_decoder"]


def _describe(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{n} {list(s)}" for n, s in shapes.items())


def check_format(fmt: str, key_path: str = "model.format") -> None:
    """Raise :class:`~streamtrt.errors.ConfigError` (with ``key_path`` and a did-you-mean) unless
    ``fmt`` is ``auto`` or a registered decoder."""
    if fmt != "auto":
        DECODERS.lookup(fmt, key_path)


def select_decoder(fmt: str, shapes: Mapping[str, tuple[int, ...]], input_hw: tuple[int, int],
                   num_classes: int) -> OutputDecoder:
    """The decoder for ``fmt`` (or the first that recognises the outputs, for ``auto``).

    Raises :class:`~streamtrt.errors.ConfigError` for an unknown ``fmt``,
    :class:`~streamtrt.errors.ModelError` when the outputs match no (or not that) decoder."""
    check_format(fmt)
    candidates = [cls for _, cls in DECODERS.items()] if fmt == "auto" else [DECODERS.lookup(fmt)]
    for decoder_cls in candidates:
        decoder = decoder_cls.match(shapes, input_hw, num_classes)
        if decoder is not None:
            return decoder
    wanted = f"any known format ({', '.join(DECODERS.names())})" if fmt == "auto" else f"format '{fmt}'"
    raise ModelError(
        f"model outputs do not match {wanted} with {num_classes} classes: got {_describe(shapes)}; "
        "check model.format and model.classes"
    )
