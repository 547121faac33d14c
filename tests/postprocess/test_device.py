"""GPU postprocessing (decode + NMS in CuPy) runs the same array code on NumPy here: it must give
the host postprocessor's detections on real model outputs, whatever the thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from streamtrt.config import PostprocessConfig
from streamtrt.engine.onnxruntime import OnnxRuntimeRunner
from streamtrt.postprocess import COCO_CLASSES, Postprocessor, select_decoder
from streamtrt.postprocess.device import DeviceNanoDetPostprocessor, FinalDetectionsDecoder
from streamtrt.preprocess.opencv import OpenCVPreprocessor
from streamtrt.preprocess.spec import PreprocessSpec
from tests.conftest import NANODET_INPUT, SAMPLES, VIDEO, decode_frames


@pytest.fixture(scope="module")
def raw_outputs():
    frames = decode_frames(VIDEO, 200)[::25]  # 8 frames spread over the clip
    spec = PreprocessSpec(416, 416, "stretch", "bgr", tuple(NANODET_INPUT["mean"]), tuple(NANODET_INPUT["std"]), 114, "float32")
    tensor, geoms = OpenCVPreprocessor(spec)(frames)
    with OnnxRuntimeRunner(SAMPLES / "nanodet-m-416-dynamic.onnx") as runner:
        outputs = runner.infer({runner.inputs[0].name: tensor})
    shapes = {k: v.shape for k, v in outputs.items()}
    decoder = select_decoder("nanodet", shapes, (416, 416), 80)
    return outputs, geoms, [(f.shape[0], f.shape[1]) for f in frames], decoder


@pytest.mark.parametrize("cfg", [
    {},
    {"score_threshold": 0.05},  # hundreds of candidates per frame
    {"score_threshold": 0.2, "iou_threshold": 0.3},
    {"classes": ["person"], "score_threshold": 0.1},
    {"max_detections": 3},
    {"score_threshold": 0.99},  # nothing at all
])
def test_device_postprocessing_matches_the_host(raw_outputs, cfg):
    outputs, geoms, sizes, decoder = raw_outputs
    pcfg = PostprocessConfig(**cfg)
    host = Postprocessor(decoder, COCO_CLASSES, pcfg)
    expected = host(outputs, geoms, sizes)
    device = DeviceNanoDetPostprocessor(decoder, host.threshold, pcfg.iou_threshold, pcfg.max_detections,
                                        host.class_filter, len(COCO_CLASSES), xp=np)
    final = device(outputs)
    assert set(final) == {"final_boxes", "final_scores", "final_class_ids", "final_counts"}
    assert final["final_boxes"].shape == (len(sizes), pcfg.max_detections, 4)  # all that crosses to the host
    got = Postprocessor(FinalDetectionsDecoder(), COCO_CLASSES, pcfg, host.threshold)(final, geoms, sizes)
    total = 0
    for e, g in zip(expected, got):
        assert len(e) == len(g)
        assert np.array_equal(e.class_id, g.class_id)
        assert np.allclose(e.confidence, g.confidence, atol=1e-6)
        assert np.allclose(e.xyxy, g.xyxy, atol=1e-3)
        total += len(e)
    if cfg.get("score_threshold") != 0.99:
        assert total > 0
