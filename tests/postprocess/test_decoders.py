import numpy as np
import pytest

from streamtrt.config import PostprocessConfig
from streamtrt.errors import ConfigError, ModelError
from streamtrt.postprocess import COCO_CLASSES, Detections, Postprocessor, batched_nms, nms, select_decoder
from streamtrt.preprocess.spec import PreprocessSpec

C = 80
HW = (64, 64)


def yolov8_output(boxes_cxcywh, classes, scores, n=84):
    out = np.zeros((1, 4 + C, n), np.float32)
    for i, (b, c, s) in enumerate(zip(boxes_cxcywh, classes, scores)):
        out[0, :4, i] = b
        out[0, 4 + c, i] = s
    return out


def test_yolov8_decode_and_nms():
    # two overlapping persons (one suppressed), one car overlapping a person (kept: other class)
    out = yolov8_output([(20, 20, 10, 10), (21, 20, 10, 10), (20, 21, 10, 10), (50, 50, 8, 8)],
                        [0, 0, 2, 0], [0.9, 0.8, 0.7, 0.6])
    dec = select_decoder("auto", {"out": out.shape}, HW, C)
    assert dec.name == "yolov8"
    pp = Postprocessor(dec, list(COCO_CLASSES), PostprocessConfig(score_threshold=0.5))
    geom = PreprocessSpec(64, 64).geometry(64, 64)
    (det,) = pp({"out": out}, [geom], [(64, 64)])
    assert det.class_name == ["person", "car", "person"]
    assert np.allclose(det.xyxy[0], [15, 15, 25, 25])
    assert np.allclose(det.confidence, [0.9, 0.7, 0.6])


def test_yolov5_decode_uses_objectness():
    out = np.zeros((1, 100, 5 + C), np.float32)
    out[0, 0, :5] = (32, 32, 20, 10, 0.9)
    out[0, 0, 5 + 16] = 0.8  # dog, score 0.72
    out[0, 1, :5] = (10, 10, 4, 4, 0.3)  # objectness below threshold
    out[0, 1, 5 + 1] = 1.0
    dec = select_decoder("auto", {"o": out.shape}, HW, C)
    assert dec.name == "yolov5"
    (cand,) = dec.decode({"o": out}, 0.35)
    assert cand.class_ids.tolist() == [16]
    assert np.allclose(cand.scores, [0.72])
    assert np.allclose(cand.xyxy, [[22, 27, 42, 37]])


def test_decoded_rows():
    out = np.array([[[1, 2, 30, 40, 0.9, 3], [0, 0, 0, 0, 0.0, 0]]], np.float32)
    dec = select_decoder("auto", {"det": out.shape}, HW, C)
    assert dec.name == "decoded" and dec.applies_nms
    (cand,) = dec.decode({"det": out}, 0.5)
    assert cand.class_ids.tolist() == [3] and np.allclose(cand.xyxy, [[1, 2, 30, 40]])


def test_efficientnms_layout():
    outputs = {
        "num_dets": np.array([[2]], np.int32),
        "det_boxes": np.array([[[1, 1, 10, 10], [5, 5, 20, 20], [0, 0, 0, 0]]], np.float32),
        "det_scores": np.array([[0.9, 0.4, 0.0]], np.float32),
        "det_classes": np.array([[0, 5, 0]], np.int32),
    }
    dec = select_decoder("auto", {k: v.shape for k, v in outputs.items()}, HW, C)
    assert dec.name == "efficientnms"
    pp = Postprocessor(dec, list(COCO_CLASSES), PostprocessConfig(score_threshold=0.3))
    (det,) = pp(outputs, [PreprocessSpec(64, 64).geometry(64, 64)], [(64, 64)])
    assert det.class_name == ["person", "bus"]


def test_efficientnms_unnamed_outputs_tell_classes_by_values():
    outputs = {
        "a": np.array([[1]], np.int32),
        "b": np.array([[[1, 1, 10, 10], [0, 0, 0, 0]]], np.float32),
        "c": np.array([[7.0, 0.0]], np.float32),  # classes as float
        "d": np.array([[0.8, 0.0]], np.float32),
    }
    dec = select_decoder("efficientnms", {k: v.shape for k, v in outputs.items()}, HW, C)
    (cand,) = dec.decode(outputs, 0.5)
    assert cand.class_ids.tolist() == [7] and np.allclose(cand.scores, [0.8])


def test_nanodet_single_output_layout():
    # NanoDet-Plus export: [1, sum(grid), C + 4*8] over strides 8, 16, 32, 64 for a 64x64 input
    n = 8 * 8 + 4 * 4 + 2 * 2 + 1
    out = np.zeros((1, n, C + 32), np.float32)
    out[..., C:] = -10.0
    out[0, 9, 0] = 0.9  # stride 8, cell (x=1, y=1): centre (8, 8)
    for side in range(4):
        out[0, 9, C + side * 8 + 2] = 10.0  # distance 2 bins * 8 = 16
    dec = select_decoder("auto", {"output": out.shape}, HW, C)
    assert dec.name == "nanodet"
    (cand,) = dec.decode({"output": out}, 0.5)
    assert np.allclose(cand.xyxy, [[-8, -8, 24, 24]], atol=1e-3)


def test_outputs_matching_no_decoder_are_described():
    with pytest.raises(ModelError, match=r"match any known format .* got means \[1, 3\]"):
        select_decoder("auto", {"means": (1, 3)}, HW, C)


def test_wrong_class_count_suggests_the_config():
    out_shape = (1, 4 + 3, 100)  # a 3-class YOLOv8
    with pytest.raises(ModelError, match="model.classes"):
        select_decoder("auto", {"out": out_shape}, HW, C)
    assert select_decoder("auto", {"out": out_shape}, HW, 3).name == "yolov8"


def test_class_filter_by_name_and_id():
    out = yolov8_output([(20, 20, 10, 10), (50, 50, 8, 8), (10, 50, 6, 6)], [0, 2, 7], [0.9, 0.8, 0.7])
    dec = select_decoder("yolov8", {"out": out.shape}, HW, C)
    pp = Postprocessor(dec, list(COCO_CLASSES), PostprocessConfig(classes=["car", 7]))
    (det,) = pp({"out": out}, [PreprocessSpec(64, 64).geometry(64, 64)], [(64, 64)])
    assert sorted(det.class_name) == ["car", "truck"]
    with pytest.raises(ConfigError, match="postprocess.classes: unknown class 'unicorn'"):
        Postprocessor(dec, list(COCO_CLASSES), PostprocessConfig(classes=["unicorn"]))


def test_max_detections_keeps_the_best():
    boxes = [(8 + 10 * (i % 6), 8 + 10 * (i // 6), 4, 4) for i in range(30)]
    scores = list(np.linspace(0.4, 0.99, 30))
    out = yolov8_output(boxes, [0] * 30, scores)
    dec = select_decoder("yolov8", {"out": out.shape}, HW, C)
    pp = Postprocessor(dec, list(COCO_CLASSES), PostprocessConfig(max_detections=5))
    (det,) = pp({"out": out}, [PreprocessSpec(64, 64).geometry(64, 64)], [(64, 64)])
    assert len(det) == 5 and np.allclose(det.confidence, sorted(scores, reverse=True)[:5])


def test_nms_matches_opencv():
    import cv2

    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 200, (300, 2))
    wh = rng.uniform(10, 60, (300, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    ours = nms(boxes, scores, 0.5)
    ref = cv2.dnn.NMSBoxes([[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in boxes],
                           scores.tolist(), 0.0, 0.5)
    assert sorted(ours.tolist()) == sorted(np.asarray(ref).reshape(-1).tolist())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrix_nms_keeps_exactly_what_the_row_by_row_pass_keeps(monkeypatch, seed):
    """Both passes of nms(): the one-matrix pass (small sets) and the row-by-row one (large sets)
    keep the same boxes in the same order, crowded boxes and tied scores included."""
    import importlib

    nms_module = importlib.import_module("streamtrt.postprocess.nms")  # the package exports nms() by that name
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (400, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (400, 2))], 1).astype(np.float32)
    scores = rng.choice(np.linspace(0.1, 0.9, 25), 400).astype(np.float32)  # many ties
    ids = rng.integers(0, 3, 400)
    matrix = (nms(boxes, scores, 0.45), batched_nms(boxes, scores, ids, 0.45))
    monkeypatch.setattr(nms_module, "MATRIX_NMS_MAX", 0)
    rows = (nms(boxes, scores, 0.45), batched_nms(boxes, scores, ids, 0.45))
    for a, b in zip(matrix, rows):
        assert a.dtype == b.dtype == np.int64 and a.tolist() == b.tolist()
    assert 0 < len(matrix[0]) < 400


def test_batched_nms_keeps_classes_apart():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    keep = batched_nms(boxes, np.array([0.9, 0.8], np.float32), np.array([0, 1]), 0.5)
    assert sorted(keep.tolist()) == [0, 1]


def test_detections_container():
    d = Detections(np.array([[0, 0, 1, 1], [1, 1, 2, 2]]), [0.5, 0.9], [0, 2], ["person", "car"])
    assert len(d) == 2 and len(Detections.empty()) == 0
    high = d[d.confidence > 0.6]
    assert high.class_name == ["car"] and high.xyxy.dtype == np.float32
    assert d[1].to_records() == [{"bbox": [1.0, 1.0, 2.0, 2.0], "score": 0.9, "class_id": 2, "class_name": "car"}]
    with pytest.raises(ValueError, match="differ in length"):
        Detections(np.zeros((2, 4)), [0.1], [0, 1], ["a", "b"])
