"""Output decoders and their automatic selection from output shapes."""

from __future__ import annotations

from typing import Mapping

from ...errors import ModelError
from .base import Candidates, OutputDecoder
from .decoded import DecodedDecoder, EfficientNMSDecoder
from .detr import RTDETRDecoder
from .nanodet import NanoDetDecoder
from .tfod import TFObjectDetectionDecoder
from .yolo import YoloV5Decoder, YoloV8Decoder

DECODERS: dict[str, type[OutputDecoder]] = {
    "tfod": TFObjectDetectionDecoder,  # before efficientnms: same shapes, told apart by TF's output names
    "efficientnms": EfficientNMSDecoder,
    "decoded": DecodedDecoder,
    "yolov8": YoloV8Decoder,
    "yolov5": YoloV5Decoder,
    "nanodet": NanoDetDecoder,
    "rtdetr": RTDETRDecoder,
}

__all__ = ["Candidates", "OutputDecoder", "DECODERS", "select_decoder"]


def _describe(shapes: Mapping[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{n} {list(s)}" for n, s in shapes.items())


def select_decoder(fmt: str, shapes: Mapping[str, tuple[int, ...]], input_hw: tuple[int, int],
                   num_classes: int) -> OutputDecoder:
    """The decoder for ``fmt`` (or the first that recognises the outputs, for ``auto``)."""
    candidates = DECODERS.values() if fmt == "auto" else [DECODERS[fmt]]
    for decoder_cls in candidates:
        decoder = decoder_cls.match(shapes, input_hw, num_classes)
        if decoder is not None:
            return decoder
    wanted = f"any known format ({', '.join(DECODERS)})" if fmt == "auto" else f"format '{fmt}'"
    raise ModelError(
        f"model outputs do not match {wanted} with {num_classes} classes: got {_describe(shapes)}; "
        "check model.format and model.classes"
    )
