"""Each detector format on a real export (random weights), against an independent numpy reference.

The models in tests/data/models/ were made by Ultralytics' own exporter from its architecture YAMLs
(tools/export_reference_models.py; versions and sha256 in tests/data/models/README.md). For each,
streamtrt configures itself from the model alone (no config), preprocesses a frame of the sample
clip, runs ONNX Runtime and decodes; the reference re-does every step here in plain numpy/OpenCV
after Ultralytics' documented behaviour (``LetterBox``: centred, pad 114; BGR->RGB; /255;
``scale_boxes``) and each layout's definition. The threshold is low enough that random weights exceed it.
The exports have 4 classes (COCO's first four names in their metadata) to stay small; YOLO12's smallest
export is 2 MB, so its test exports it into a temporary folder (slow; needs ultralytics).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from streamtrt.config import load_config
from streamtrt.errors import ConfigError, ModelError
from streamtrt.model_setup import output_shapes, resolve_model, select_for
from streamtrt.postprocess.postprocessor import Postprocessor
from streamtrt.preprocess.opencv import OpenCVPreprocessor
from tests.conftest import ROOT

MODELS = ROOT / "tests" / "data" / "models"
THRESHOLD = 0.25  # Ultralytics predict default; random weights give many scores above it
IOU = 0.5
NAMES = ["person", "bicycle", "car", "motorcycle"]  # the exports' metadata names (tools/export_reference_models.py)
NC = len(NAMES)


def configure(model: Path, **model_keys):
    raw = {"source": "unused", "model": {"path": str(model), **model_keys},
           "postprocess": {"score_threshold": THRESHOLD, "iou_threshold": IOU, "max_detections": 10000}}
    return load_config(raw)


def session(model: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])


def streamtrt_detect(model: Path, frame: np.ndarray, **model_keys):
    """streamtrt's own path: setup from the model, OpenCV preprocessing, decode, NMS, map back."""
    cfg = configure(model, **model_keys)
    setup = resolve_model(cfg)
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    infer = lambda feeds: dict(zip(names, sess.run(None, feeds)))  # noqa: E731
    decoder = select_for(setup, output_shapes(setup, infer))
    tensor, geoms = OpenCVPreprocessor(setup.spec())([frame])
    post = Postprocessor(decoder, setup.class_names, cfg.postprocess)
    (dets,) = post(infer({setup.input_name: tensor}), geoms, [frame.shape[:2]])
    return setup, tensor, dets


# -- the independent reference --------------------------------------------------------------------
def ul_letterbox(frame: np.ndarray, hw: tuple[int, int]):
    """Ultralytics ``LetterBox(center=True)`` + ``preprocess``: (NCHW /255 RGB tensor, gain, (padw, padh))."""
    h0, w0 = frame.shape[:2]
    r = min(hw[0] / h0, hw[1] / w0)
    new_w, new_h = int(round(w0 * r)), int(round(h0 * r))
    dw, dh = (hw[1] - new_w) / 2, (hw[0] - new_h) / 2
    img = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    x = img[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    return x, (new_w / w0, new_h / h0), (left, top)


def unletterbox(xyxy: np.ndarray, gain, pad, frame_hw) -> np.ndarray:
    """Ultralytics ``scale_boxes``: remove padding, divide by the gain, clip to the frame."""
    out = xyxy.astype(np.float64).copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - pad[0]) / gain[0]
    out[:, [1, 3]] = (out[:, [1, 3]] - pad[1]) / gain[1]
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, frame_hw[1])
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, frame_hw[0])
    return out


def greedy_nms(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """Per-class greedy NMS (boxes of different classes never suppress each other)."""
    keep = []
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        while idx.size:
            i, idx = idx[0], idx[1:]
            keep.append(i)
            if idx.size:
                x1 = np.maximum(xyxy[i, 0], xyxy[idx, 0])
                y1 = np.maximum(xyxy[i, 1], xyxy[idx, 1])
                x2 = np.minimum(xyxy[i, 2], xyxy[idx, 2])
                y2 = np.minimum(xyxy[i, 3], xyxy[idx, 3])
                inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
                area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
                iou_ = inter / (area(xyxy[i]) + area(xyxy[idx]) - inter + 1e-9)
                idx = idx[iou_ <= iou]
    return np.array(keep, np.int64)


def cxcywh2xyxy(b: np.ndarray) -> np.ndarray:
    return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)


def assert_same(dets, ref_xyxy, ref_scores, ref_classes, atol=1e-2):
    """The same detections in any order: matched one to one within each class (Hungarian on box distance)."""
    from scipy.optimize import linear_sum_assignment

    ref_xyxy, ref_scores = np.asarray(ref_xyxy, np.float64), np.asarray(ref_scores, np.float64)
    ref_classes = np.asarray(ref_classes, np.int64)
    assert len(ref_scores) > 0, "random weights gave nothing above the threshold: the test would prove nothing"
    assert len(dets) == len(ref_scores), (len(dets), len(ref_scores))
    assert sorted(dets.class_id.tolist()) == sorted(ref_classes.tolist())
    for c in np.unique(ref_classes):
        got, want = np.flatnonzero(dets.class_id == c), np.flatnonzero(ref_classes == c)
        cost = np.abs(dets.xyxy[got][:, None, :] - ref_xyxy[want][None, :, :]).max(-1) \
            + 1e3 * np.abs(dets.confidence[got][:, None] - ref_scores[want][None, :])
        rows_, cols = linear_sum_assignment(cost)
        np.testing.assert_allclose(dets.xyxy[got][rows_], ref_xyxy[want][cols], atol=atol, rtol=1e-5)
        np.testing.assert_allclose(dets.confidence[got][rows_], ref_scores[want][cols], atol=1e-5)


@pytest.fixture(scope="module")
def frame(first_frames) -> np.ndarray:
    return first_frames[0]  # 768x576 BGR


def reference_raw(model: Path, x: np.ndarray) -> list[np.ndarray]:
    sess = session(model)
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})


# -- Ultralytics YOLO [B, 4+nc, N] ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["yolov5nu-320.onnx", "yolo11n-320.onnx", "yolov8n-256x416.onnx"])
def test_ultralytics_anchor_free_heads(frame, name):
    check_anchor_free_head(MODELS / name, frame)


@pytest.mark.slow
def test_yolo12_anchor_free_head_exported_here(frame, tmp_path):
    """YOLO12 (area attention) has the YOLOv8/11 output layout; its export is made here by the tool."""
    pytest.importorskip("ultralytics", reason="exporting YOLO12 needs ultralytics (and torch)")
    pytest.importorskip("torch", reason="exporting YOLO12 needs torch")
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_reference_models",
                                                  ROOT / "tools" / "export_reference_models.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([str(tmp_path), "--only=yolo12n-320.onnx"])
    check_anchor_free_head(tmp_path / "yolo12n-320.onnx", frame)


def check_anchor_free_head(model: Path, frame: np.ndarray) -> None:
    setup, tensor, dets = streamtrt_detect(model, frame)
    hw = setup.size
    x, gain, pad = ul_letterbox(frame, hw)
    # configured from the metadata: letterbox 114, RGB, /255, the names the export carries
    assert (setup.format, setup.input.resize, setup.input.color, setup.input.pad_value) == \
        ("yolov8", "letterbox", "rgb", 114)
    assert tuple(setup.input.std) == (255, 255, 255) and setup.class_names == NAMES
    np.testing.assert_allclose(tensor, x, atol=1e-6)
    (out,) = reference_raw(model, tensor)  # the same input: raw outputs identical, decoding compared
    pred = out[0].T  # (N, 4+nc)
    scores, classes = pred[:, 4:].max(1), pred[:, 4:].argmax(1)
    keep = scores > THRESHOLD
    boxes, scores, classes = cxcywh2xyxy(pred[keep, :4]), scores[keep], classes[keep]
    k = greedy_nms(boxes, scores, classes, IOU)
    assert pred.shape[1] == 4 + NC
    assert_same(dets, unletterbox(boxes[k], gain, pad, frame.shape[:2]), scores[k], classes[k])
    assert len(dets) > 1 and len(set(dets.class_id.tolist())) > 1


def test_non_square_input_geometry(frame):
    setup, tensor, _ = streamtrt_detect(MODELS / "yolov8n-256x416.onnx", frame)
    assert setup.size == (256, 416) and tensor.shape == (1, 3, 256, 416)
    # 768x576 into 416x256: height limits, gain 256/576; 341 wide, centred: 37 px left, 38 right
    pad = 114 / 255
    assert np.allclose(tensor[0, :, :, :37], pad) and np.allclose(tensor[0, :, :, -38:], pad)
    assert not np.allclose(tensor[0, :, :, 37], pad) and not np.allclose(tensor[0, :, :, -39], pad)


# -- dynamic H and W ---------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [None, (288, 384)])
def test_dynamic_input_size_from_config_or_metadata(frame, size):
    model = MODELS / "yolov8n-dynamic.onnx"
    keys = {"input": {"size": list(size)}} if size else {}
    setup, tensor, dets = streamtrt_detect(model, frame, **keys)
    expected = size or (320, 320)  # the metadata's imgsz
    assert setup.size == expected and tensor.shape == (1, 3, *expected)
    reason = next(c.reason for c in setup.choices if c.key == "input")
    assert ("model.input.size" if size else "imgsz") in reason
    x, gain, pad = ul_letterbox(frame, expected)
    np.testing.assert_allclose(tensor, x, atol=1e-6)
    (out,) = reference_raw(model, tensor)
    pred = out[0].T
    assert pred.shape[0] == sum((expected[0] // s) * (expected[1] // s) for s in (8, 16, 32))
    scores, classes = pred[:, 4:].max(1), pred[:, 4:].argmax(1)
    keep = scores > THRESHOLD
    boxes, scores, classes = cxcywh2xyxy(pred[keep, :4]), scores[keep], classes[keep]
    k = greedy_nms(boxes, scores, classes, IOU)
    assert_same(dets, unletterbox(boxes[k], gain, pad, frame.shape[:2]), scores[k], classes[k])


# -- NMS-free end-to-end heads [B, N, 6] -------------------------------------------------------------
@pytest.mark.parametrize("name", ["yolov10n-320.onnx", "yolo26n-320.onnx"])
def test_end_to_end_heads(frame, name):
    model = MODELS / name
    setup, tensor, dets = streamtrt_detect(model, frame)
    assert setup.format == "decoded" and "end2end" in next(c.reason for c in setup.choices if c.key == "format")
    x, gain, pad = ul_letterbox(frame, setup.size)
    np.testing.assert_allclose(tensor, x, atol=1e-6)
    (out,) = reference_raw(model, tensor)
    assert out.shape[0] == 1 and out.shape[2] == 6
    r = out[0]
    r = r[r[:, 4] > THRESHOLD]
    assert_same(dets, unletterbox(r[:, :4], gain, pad, frame.shape[:2]), r[:, 4], r[:, 5].astype(int))


# -- RT-DETR ---------------------------------------------------------------------------------------------
def test_rtdetr_ultralytics_topk_rows(frame):
    """Ultralytics 8.4 RT-DETR export: [B, K, 6] rows of normalised cx, cy, w, h, score, class."""
    model = MODELS / "rtdetr-320.onnx"
    setup, tensor, dets = streamtrt_detect(model, frame)
    assert setup.format == "rtdetr"
    h, w = setup.size
    x, gain, pad = ul_letterbox(frame, setup.size)
    np.testing.assert_allclose(tensor, x, atol=1e-6)
    (out,) = reference_raw(model, tensor)
    r = out[0][out[0][:, 4] > THRESHOLD]
    boxes = cxcywh2xyxy(r[:, :4] * np.array([w, h, w, h]))
    assert_same(dets, unletterbox(boxes, gain, pad, frame.shape[:2]), r[:, 4], r[:, 5].astype(int))


def test_rtdetr_joined_per_class_scores(frame):
    """Earlier Ultralytics RT-DETR exports: [B, Q, 4+nc], the best class per query."""
    model = MODELS / "rtdetr-joined-320.onnx"
    setup, tensor, dets = streamtrt_detect(model, frame)
    assert setup.format == "rtdetr"
    h, w = setup.size
    x, gain, pad = ul_letterbox(frame, setup.size)
    np.testing.assert_allclose(tensor, x, atol=1e-6)
    (out,) = reference_raw(model, tensor)
    q = out[0]
    scores, classes = q[:, 4:].max(1), q[:, 4:].argmax(1)
    keep = scores > THRESHOLD
    boxes = cxcywh2xyxy(q[keep, :4] * np.array([w, h, w, h]))
    assert_same(dets, unletterbox(boxes, gain, pad, frame.shape[:2]), scores[keep], classes[keep])


def test_rtdetr_split_logits_layout(frame):
    """PaddleDetection/DETR layout: boxes [B, Q, 4] and class logits [B, Q, nc]; no metadata, so the
    preprocessing and the class names must be given (here: as the model was trained, Ultralytics')."""
    model = MODELS / "rtdetr-split-320.onnx"
    keys = {"format": "rtdetr", "classes": NAMES,
            "input": {"resize": "letterbox", "color": "rgb", "std": [255, 255, 255]}}
    setup, tensor, dets = streamtrt_detect(model, frame, **keys)
    assert setup.format == "rtdetr" and not setup.warnings
    h, w = setup.size
    x, gain, pad = ul_letterbox(frame, setup.size)
    np.testing.assert_allclose(tensor, x, atol=1e-6)
    boxes_raw, logits = reference_raw(model, tensor)
    probs = 1 / (1 + np.exp(-logits[0]))
    scores, classes = probs.max(1), probs.argmax(1)
    keep = scores > THRESHOLD
    boxes = cxcywh2xyxy(boxes_raw[0][keep] * np.array([w, h, w, h]))
    assert_same(dets, unletterbox(boxes, gain, pad, frame.shape[:2]), scores[keep], classes[keep], atol=2e-2)


# -- TensorFlow Object Detection API layout -----------------------------------------------------------
def test_tensorflow_object_detection_layout(frame):
    model = MODELS / "tfod-yolo26n-320.onnx"
    setup, tensor, dets = streamtrt_detect(model, frame, classes="coco")
    assert (setup.layout, setup.dtype, setup.format) == ("nhwc", "uint8", "tfod")
    assert (setup.input.resize, setup.input.color) == ("stretch", "rgb") and setup.value_range == "0..255 (uint8)"
    h, w = setup.size
    x = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)[:, :, ::-1][None]
    assert tensor.dtype == np.uint8 and np.array_equal(tensor, x)
    sess = session(model)
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input_tensor": np.ascontiguousarray(x)})))
    n = int(outs["num_detections"][0])
    yxyx, scores = outs["detection_boxes"][0, :n], outs["detection_scores"][0, :n]
    labels = outs["detection_classes"][0, :n].astype(int)
    keep = scores > THRESHOLD
    fh, fw = frame.shape[:2]
    xyxy = yxyx[keep][:, [1, 0, 3, 2]] * np.array([fw, fh, fw, fh])  # normalised to the stretched input = to the frame
    xyxy = np.clip(xyxy, 0, [fw, fh, fw, fh])
    assert_same(dets, xyxy, scores[keep], labels[keep] - 1, atol=2e-2)


# -- metadata against config -----------------------------------------------------------------------------
def test_config_that_contradicts_the_metadata_is_used_and_warned():
    cfg = configure(MODELS / "yolov8n-256x416.onnx", input={"resize": "stretch", "color": "bgr"})
    setup = resolve_model(cfg)
    assert (setup.input.resize, setup.input.color) == ("stretch", "bgr")
    text = " | ".join(setup.warnings)
    assert "model.input.resize: the config says stretch" in text and "letterbox" in text
    assert "model.input.color: the config says bgr" in text and "rgb" in text


def test_model_without_metadata_uses_defaults_and_says_so():
    setup = resolve_model(configure(ROOT / "samples" / "nanodet-m-416.onnx"))
    reasons = {c.key: c.reason for c in setup.choices}
    assert setup.input.resize == "stretch" and reasons["preprocess.resize"].startswith("default")
    assert reasons["classes"].startswith("default") and setup.format == "auto"


def test_uint8_input_refuses_normalisation():
    with pytest.raises(ConfigError, match="uint8"):
        resolve_model(configure(MODELS / "tfod-yolo26n-320.onnx", input={"std": [255, 255, 255]}))


def test_dynamic_size_without_metadata_or_config_is_an_error(tmp_path):
    import onnx

    m = onnx.load(str(MODELS / "yolov8n-dynamic.onnx"))
    del m.metadata_props[:]
    onnx.save(m, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelError, match="set model.input.size"):
        resolve_model(configure(tmp_path / "bare.onnx"))


# -- pose: keypoints -------------------------------------------------------------------------------------
def test_pose_keypoints_follow_their_boxes(frame):
    """YOLOv8-pose export: [B, 4+1+17*3, N]; keypoints mapped back through the letterbox like boxes."""
    from scipy.optimize import linear_sum_assignment

    model = MODELS / "yolov8n-pose-320.onnx"
    setup, tensor, dets = streamtrt_detect(model, frame)
    assert setup.format == "yolov8" and setup.class_names == ["person"] and setup.info.kpt_shape == (17, 3)
    x, gain, pad = ul_letterbox(frame, setup.size)
    np.testing.assert_allclose(tensor, x, atol=1e-6)
    (out,) = reference_raw(model, tensor)
    pred = out[0].T  # (N, 4 + 1 + 51)
    keep = pred[:, 4] > THRESHOLD
    boxes, scores, kpts = cxcywh2xyxy(pred[keep, :4]), pred[keep, 4], pred[keep, 5:].reshape(-1, 17, 3)
    k = greedy_nms(boxes, scores, np.zeros(len(scores), int), IOU)
    ref_boxes = unletterbox(boxes[k], gain, pad, frame.shape[:2])
    assert_same(dets, ref_boxes, scores[k], np.zeros(len(k), int))
    ref_kpts = kpts[k].astype(np.float64)
    ref_kpts[..., 0] = ((ref_kpts[..., 0] - pad[0]) / gain[0]).clip(0, frame.shape[1])
    ref_kpts[..., 1] = ((ref_kpts[..., 1] - pad[1]) / gain[1]).clip(0, frame.shape[0])
    rows_, cols = linear_sum_assignment(np.abs(dets.xyxy[:, None] - ref_boxes[None]).max(-1))
    assert dets.keypoints.shape == (len(dets), 17, 3)
    np.testing.assert_allclose(dets.keypoints[rows_], ref_kpts[cols], atol=1e-2, rtol=1e-5)
    record = dets.to_records()[0]
    assert len(record["keypoints"]) == 17 and all(len(p) == 3 for p in record["keypoints"])
    assert len(dets[[0, 1]].keypoints) == 2


def torch_free_bilinear(img: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """``F.interpolate(mode="bilinear", align_corners=False)`` in plain numpy (half-pixel centres)."""
    h, w = img.shape
    oh, ow = out_hw
    ys = np.clip((np.arange(oh) + 0.5) * h / oh - 0.5, 0, h - 1)
    xs = np.clip((np.arange(ow) + 0.5) * w / ow - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def test_segment_masks_match_ultralytics_process_mask(frame):
    """YOLOv8-seg export: output0 [B, 4+nc+32, N] and prototypes [B, 32, h, w]. Boxes decode like a
    detect head; masks follow Ultralytics' process_mask(upsample=True) + scale_masks, re-done here."""
    from streamtrt.postprocess.masks import rle_to_mask

    model = MODELS / "yolov8n-seg-320.onnx"
    setup, tensor, dets = streamtrt_detect(model, frame)
    assert setup.format == "yolov8" and not setup.warnings
    x, gain, pad = ul_letterbox(frame, setup.size)
    np.testing.assert_allclose(tensor, x, atol=1e-6)
    out = reference_raw(model, tensor)
    (pred,) = [o[0].T for o in out if o.ndim == 3 and o.shape[1] == 4 + NC + 32]
    (protos,) = [o[0] for o in out if o.ndim == 4]
    scores, classes = pred[:, 4:4 + NC].max(1), pred[:, 4:4 + NC].argmax(1)
    keep = scores > THRESHOLD
    boxes, scores, classes, coeffs = cxcywh2xyxy(pred[keep, :4]), scores[keep], classes[keep], pred[keep, 4 + NC:]
    k = greedy_nms(boxes, scores, classes, IOU)
    ref_boxes = unletterbox(boxes[k], gain, pad, frame.shape[:2])
    assert_same(dets, ref_boxes, scores[k], classes[k])
    assert dets.keypoints is None and dets.masks.shape == (len(dets), *frame.shape[:2])
    # the reference masks, for the 20 best detections
    ih, iw = setup.size
    fh, fw = frame.shape[:2]
    left, top = pad
    rh, rw = int(round(fh * gain[1])), int(round(fw * gain[0]))
    order = np.argsort(-scores[k])[:20]
    ious = []
    for j in order:
        logit = torch_free_bilinear((coeffs[k][j] @ protos.reshape(32, -1)).reshape(protos.shape[1:]), (ih, iw))
        b = boxes[k][j]
        cols, rows = np.arange(iw)[None], np.arange(ih)[:, None]
        m = (logit > 0) & (cols >= b[0]) & (cols < b[2]) & (rows >= b[1]) & (rows < b[3])
        m = torch_free_bilinear(m[top:top + rh, left:left + rw].astype(np.float64), (fh, fw)) > 0.5
        match = np.flatnonzero((dets.class_id == classes[k][j]) & np.all(np.abs(dets.xyxy - ref_boxes[j]) < 0.01, 1))
        got = dets.masks[match[0]]
        union = (got | m).sum()
        ious.append((got & m).sum() / union if union else 1.0)
    # OpenCV's bilinear resize against torch's (align_corners=False) re-done in numpy: a pixel may differ
    assert min(ious) > 0.99, ious
    record = dets.to_records()[int(np.argmax(dets.masks.sum((1, 2))))]
    assert np.array_equal(rle_to_mask(record["mask"]), dets.masks[int(np.argmax(dets.masks.sum((1, 2))))])
