"""The decoder registry: detection order, unknown formats, and a decoder added in one place."""

import numpy as np
import pytest

from streamtrt.errors import ConfigError, ModelError
from streamtrt.postprocess.decoders import DECODERS, Candidates, OutputDecoder, register_decoder, select_decoder


def test_detection_order_tries_tf_before_efficientnms():
    assert DECODERS.names() == ["tfod", "efficientnms", "decoded", "yolov8", "yolov5", "nanodet", "rtdetr"]


def test_unknown_format_names_the_key_and_the_closest():
    with pytest.raises(ConfigError, match=r"^model\.format: unknown model format 'yolov9'; did you mean 'yolov8'\?"):
        select_decoder("yolov9", {"out": (1, 84, 8400)}, (640, 640), 80)


def test_a_new_decoder_is_one_registration():
    @register_decoder
    class Fixed(OutputDecoder):
        name = "fixed-test"

        @classmethod
        def match(cls, shapes, input_hw, num_classes):
            return cls() if list(shapes.values()) == [(1, 3, 7)] else None

        def decode(self, outputs, score_threshold):
            rows = next(iter(outputs.values()))[0]
            return [Candidates(rows[:, :4], rows[:, 4], np.zeros(len(rows), np.int64))]

    try:
        assert isinstance(select_decoder("auto", {"o": (1, 3, 7)}, (64, 64), 1), Fixed)
        assert isinstance(select_decoder("fixed-test", {"o": (1, 3, 7)}, (64, 64), 1), Fixed)
        with pytest.raises(ModelError, match="do not match format 'fixed-test'"):
            select_decoder("fixed-test", {"o": (1, 4, 7)}, (64, 64), 1)
    finally:
        DECODERS._entries.pop("fixed-test")
