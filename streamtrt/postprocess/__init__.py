"""Postprocessing: model-format decoders, NMS and the Detections container."""

from .classes import COCO_CLASSES, load_class_names
from .decoders import DECODERS, select_decoder
from .detections import Detections
from .nms import batched_nms, nms
from .postprocessor import Postprocessor

__all__ = ["COCO_CLASSES", "DECODERS", "Detections", "Postprocessor", "batched_nms", "load_class_names",
           "nms", "select_decoder"]
