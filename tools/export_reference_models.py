"""Regenerate the small reference models in tests/data/models/ (random weights, no download).

Run with a Python that has ultralytics, torch (CPU) and onnx:

    YOLO_OFFLINE=1 /path/to/venv-ul/bin/python tools/export_reference_models.py [OUT_DIR] [--only=NAME.onnx ...] [--full]

Each model is built by Ultralytics' own exporter from its own architecture YAML, at the 'n' scale
with the width multiplier lowered to 1/16 (``WIDTH``) and channels capped at 128 (``MAX_CHANNELS``),
4 classes (``NC``) and 4 DFL bins (``REG_MAX``) so that the files stay small (the layers, head and
output layout are the architecture's; only channel and class counts shrink). ``graph.value_info``
(optional intermediate shapes) is dropped. The class-score biases are
re-drawn (seeded) so that random weights give a spread of scores, not the near-zero scores of
Ultralytics' prior-probability initialisation. ``--full`` also exports the full-width
``yolov8n.yaml`` at 640 (12.8 MB; not committed: the CLI test makes it when ultralytics is present).

Derived layouts, made by editing the ONNX graph (no metadata, as those exporters write none):

* ``tfod-*.onnx``: the YOLO26 end-to-end export behind a TensorFlow Object Detection API interface:
  NHWC uint8 input, ``detection_boxes`` (normalised ymin, xmin, ymax, xmax), ``detection_scores``,
  ``detection_classes`` (label ids from 1, float) and ``num_detections``.
* ``rtdetr-split-*.onnx``: the joined RT-DETR export with boxes and class logits as two outputs
  (PaddleDetection ``exclude_post_process`` / DETR style).

Writes README-ready lines (sha256, versions) to stdout.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamtrt.postprocess.classes import COCO_CLASSES  # noqa: E402

CLIP = Path(__file__).resolve().parents[1] / "samples" / "vtest.mp4"
WIDTH = 0.0625
MAX_CHANNELS = 128
"""The 'n' scale's width and channel cap; the narrowest layer still has 8 channels (Ultralytics' rounding)."""
NC = 4
"""Classes of the detect/segment/RT-DETR models (COCO's first four names): the class branch is sized by it."""
REG_MAX = 4
"""DFL bins of the box branch (16 in the released models, 1 in YOLO26): the box branch is 4 * REG_MAX wide."""
LOGIT_MEAN, LOGIT_STD = -5.0, 1.5
WIDTHS = {"yolo12n-320.onnx": (0.25, 256)}
"""YOLO12's A2C2f blocks need hidden channels (half their output) in multiples of 32, also the 256-wide
ones: width 1/4 with a cap of 256 makes them all 64 wide (one 32-channel attention head each)."""
NOT_COMMITTED = {"yolo12n-320.onnx"}
"""2 MB even so: made only when named with --only (tests/postprocess/test_formats.py exports it into a
temporary folder when ultralytics is installed)."""
SEED = 0

# (output file, family yaml under ultralytics/cfg/models, model name given to YOLO(), export kwargs)
MODELS = [
    ("yolov5nu-320.onnx", "v5/yolov5.yaml", "yolov5n.yaml", dict(imgsz=320)),
    ("yolo11n-320.onnx", "11/yolo11.yaml", "yolo11n.yaml", dict(imgsz=320)),
    ("yolo12n-320.onnx", "12/yolo12.yaml", "yolo12n.yaml", dict(imgsz=320)),  # attention: the real n width (see WIDTHS)
    # nms=False selects the NMS-free one-to-one head (Ultralytics 8.4: the default, nms=None, exports the
    # one-to-many head, i.e. the YOLOv8 layout). (nms=True, NMS embedded after a YOLOv8 head, did not finish
    # exporting here with a pure-torch stand-in for torchvision.ops.nms.)
    ("yolov10n-320.onnx", "v10/yolov10n.yaml", "yolov10n.yaml", dict(imgsz=320, nms=False)),
    ("yolo26n-320.onnx", "26/yolo26.yaml", "yolo26n.yaml", dict(imgsz=320, nms=False)),
    ("yolov8n-256x416.onnx", "v8/yolov8.yaml", "yolov8n.yaml", dict(imgsz=(256, 416))),
    ("yolov8n-dynamic.onnx", "v8/yolov8.yaml", "yolov8n.yaml", dict(imgsz=320, dynamic=True)),
    ("yolov8n-pose-320.onnx", "v8/yolov8-pose.yaml", "yolov8n-pose.yaml", dict(imgsz=320)),
    ("yolov8n-seg-320.onnx", "v8/yolov8-seg.yaml", "yolov8n-seg.yaml", dict(imgsz=320)),
    ("rtdetr-320.onnx", "v8/yolov8-rtdetr.yaml", "yolov8n-rtdetr.yaml", dict(imgsz=320)),
    # The head of earlier Ultralytics releases: [B, Q, 4+nc] (cxcywh normalised, per-class sigmoid scores),
    # made by replacing RTDETRDecoder.postprocess (top-k rows) with the plain concatenation.
    ("rtdetr-joined-320.onnx", "v8/yolov8-rtdetr.yaml", "yolov8n-rtdetr.yaml", dict(imgsz=320, joined=True)),
]


def _narrow_yaml(src: Path, dst_dir: Path, width: float = WIDTH, max_channels: int = MAX_CHANNELS) -> Path:
    """A copy of ``src`` whose 'n' scale has width ``width`` and channel cap ``max_channels``, ``NC``
    classes (pose keeps its one class), at most ``REG_MAX`` DFL bins (and, for RT-DETR, a small decoder)."""
    import yaml

    d = yaml.safe_load(src.read_text())
    scales = d.get("scales") or {}
    if "n" in scales:
        depth, _, max_ch = scales["n"]
        d["scales"] = {"n": [depth, width, min(max_ch, max_channels)]}
    if d.get("nc", 80) > NC:
        d["nc"] = NC
    if d.get("reg_max", 16) > REG_MAX:
        d["reg_max"] = REG_MAX
    for section in ("backbone", "head"):
        for layer in d.get(section, []):
            if layer[2] == "RTDETRDecoder":  # [nc, hidden dim, queries, points, heads, layers]
                layer[3] = ["nc", 32, 300, 4, 4, 1, 64]  # ... and feed-forward width 64 (d_ffn)
    dst = dst_dir / src.name
    dst.write_text(yaml.safe_dump(d, sort_keys=False))
    return dst


def _calibrate_batchnorm(net, imgsz) -> None:
    """Give every BatchNorm the statistics of its own inputs (on frames of the sample clip).

    With PyTorch's default init and BatchNorm's initial statistics, activations shrink layer by layer
    and a random network's outputs collapse to constants (every box alike). Normalised layers keep
    them varied, as in a trained network."""
    import torch

    for mod in net.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None  # a plain average over the calibration batches
    net.train()
    with torch.no_grad():
        for i in range(4):
            net(_calibration_images(imgsz, 100 + 50 * i))
    net.eval()


def _calibration_images(imgsz, start: int):
    """Four frames of samples/vtest.mp4 from frame ``start``, stretched to ``imgsz``, RGB, 0..1."""
    import cv2
    import numpy as np
    import torch

    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    cap = cv2.VideoCapture(str(CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    while len(frames) < 4:
        ok, bgr = cap.read()
        if not ok:
            raise RuntimeError(f"cannot read frame {start + len(frames)} of {CLIP}")
        frames.append(cv2.resize(bgr, (w, h))[:, :, ::-1].transpose(2, 0, 1) / 255.0)
    cap.release()
    return torch.from_numpy(np.stack(frames).astype(np.float32))


def _spread_class_scores(net, head, imgsz) -> None:
    """Rescale the last class-score layers so their logits are ``LOGIT_STD * z + LOGIT_MEAN`` with z
    standardised per class on calibration images: scores then spread over 0..1 (mostly low, a few
    high), as a trained detector's do, instead of all near 0 (Ultralytics' prior init) or all near 1."""
    import torch

    layers = []
    for attr in ("cv3", "one2one_cv3"):
        for branch in getattr(head, attr, None) or []:
            last = list(branch.modules())[-1]
            if isinstance(last, torch.nn.Conv2d):
                layers.append((last, 1))
    for lin in getattr(head, "dec_score_head", None) or []:
        layers.append((lin, -1))
    if getattr(head, "enc_score_head", None) is not None:
        layers.append((head.enc_score_head, -1))
    stats = {}

    def hook(mod, _inp, out, dim):
        o = out.detach().movedim(dim, 0).reshape(out.shape[dim], -1)
        stats[mod] = (o.mean(1), o.std(1) + 1e-6)

    handles = [m.register_forward_hook(lambda mod, i, o, d=d: hook(mod, i, o, d)) for m, d in layers]
    net.eval()
    with torch.no_grad():
        net(_calibration_images(imgsz, 400))
    for h in handles:
        h.remove()
    with torch.no_grad():
        for mod, _ in layers:
            if mod not in stats:  # a branch this forward did not run (e.g. RT-DETR's non-final decoder layers)
                continue
            mean, std = stats[mod]
            shape = (-1,) + (1,) * (mod.weight.dim() - 1)
            mod.weight.mul_((LOGIT_STD / std).view(shape))
            mod.bias.copy_((mod.bias - mean) / std * LOGIT_STD + LOGIT_MEAN)


def export_one(name: str, family: str, model_name: str, kwargs: dict, out_dir: Path, work: Path,
               narrow: bool = True) -> Path:
    import torch
    import ultralytics
    from ultralytics import RTDETR, YOLO

    from ultralytics.nn.modules.head import Detect

    cfg_dir = Path(ultralytics.__file__).parent / "cfg" / "models"
    # v10Detect passes no reg_max to Detect (the YAML's is not used): lower Detect's default as well
    d = Detect.__init__.__defaults__  # (nc, reg_max, end2end, ch)
    Detect.__init__.__defaults__ = (d[0], min(d[1], REG_MAX), *d[2:])
    torch.manual_seed(SEED)  # before building: the random weights depend on this model alone
    if narrow:
        tmp = work / ("cfg-" + "abcdefghijklmnopqrstuvwxyz"[[m[0] for m in MODELS].index(name) % 26])
        tmp.mkdir(parents=True, exist_ok=True)
        _narrow_yaml(cfg_dir / family, tmp, *WIDTHS.get(name, (WIDTH, MAX_CHANNELS)))
        model = (RTDETR if "rtdetr" in model_name else YOLO)(str(tmp / model_name))
    else:
        model = YOLO(model_name)
    net = model.model
    _calibrate_batchnorm(net, kwargs.get("imgsz", 320))
    head = net.model[-1]
    net.names = dict(enumerate(COCO_CLASSES[: head.nc]))
    _spread_class_scores(net, head, kwargs.get("imgsz", 320))
    kwargs = dict(kwargs)
    if kwargs.pop("joined", False):
        import types

        head.postprocess = types.MethodType(lambda self, boxes, scores: torch.cat([boxes, scores], -1), head)
    exported = Path(model.export(format="onnx", simplify=True, opset=17, **kwargs))
    target = out_dir / name
    _drop_value_info(exported, target)
    return target


def _drop_value_info(src: Path, dst: Path) -> None:
    """Copy the export without ``graph.value_info``, the optional shapes of intermediate tensors (with
    dynamic axes 0.5 MB of a 0.6 MB file); nodes, weights, inputs, outputs and metadata are unchanged."""
    import onnx

    m = onnx.load(str(src))
    del m.graph.value_info[:]
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))


def make_tfod(src: Path, dst: Path) -> Path:
    """An end-to-end ``[1, K, 6]`` (xyxy px, score, class) model behind TF OD API inputs and outputs."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    old_in = g.input[0]
    dims = [d.dim_value for d in old_in.type.tensor_type.shape.dim]
    _, _, h, w = dims
    old_out = g.output[0].name
    new_in = helper.make_tensor_value_info("input_tensor", TensorProto.UINT8, [1, h, w, 3])
    pre = [
        helper.make_node("Cast", ["input_tensor"], ["tf_float"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["tf_float"], ["tf_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Div", ["tf_nchw", "tf_255"], [old_in.name]),
    ]
    inits = [numpy_helper.from_array(np.array(255.0, np.float32), "tf_255"),
             numpy_helper.from_array(np.array([0], np.int64), "tf_s0"),
             numpy_helper.from_array(np.array([4], np.int64), "tf_s4"),
             numpy_helper.from_array(np.array([5], np.int64), "tf_s5"),
             numpy_helper.from_array(np.array([6], np.int64), "tf_s6"),
             numpy_helper.from_array(np.array([2], np.int64), "tf_ax2"),
             numpy_helper.from_array(np.array([1, 0, 3, 2], np.int64), "tf_yxyx"),
             numpy_helper.from_array(np.array([h, w, h, w], np.float32), "tf_hwhw"),
             numpy_helper.from_array(np.array(1.0, np.float32), "tf_one"),
             numpy_helper.from_array(np.array([1], np.int64), "tf_i1")]
    post = [
        helper.make_node("Slice", [old_out, "tf_s0", "tf_s4", "tf_ax2"], ["tf_xyxy"]),
        helper.make_node("Gather", ["tf_xyxy", "tf_yxyx"], ["tf_yxyx_px"], axis=2),
        helper.make_node("Div", ["tf_yxyx_px", "tf_hwhw"], ["detection_boxes"]),
        helper.make_node("Slice", [old_out, "tf_s4", "tf_s5", "tf_ax2"], ["tf_score3"]),
        helper.make_node("Squeeze", ["tf_score3", "tf_ax2"], ["detection_scores"]),
        helper.make_node("Slice", [old_out, "tf_s5", "tf_s6", "tf_ax2"], ["tf_class3"]),
        helper.make_node("Squeeze", ["tf_class3", "tf_ax2"], ["tf_class0"]),
        helper.make_node("Add", ["tf_class0", "tf_one"], ["detection_classes"]),  # label ids start at 1
        helper.make_node("Shape", ["detection_scores"], ["tf_shape"]),
        helper.make_node("Slice", ["tf_shape", "tf_i1", "tf_ax2"], ["tf_k"]),  # [K]
        helper.make_node("Cast", ["tf_k"], ["num_detections"], to=TensorProto.FLOAT),
    ]
    k = g.output[0].type.tensor_type.shape.dim[1].dim_value
    outs = [helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [1, k, 4]),
            helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [1, k]),
            helper.make_tensor_value_info("detection_classes", TensorProto.FLOAT, [1, k]),
            helper.make_tensor_value_info("num_detections", TensorProto.FLOAT, [1])]
    graph = helper.make_graph(pre + list(g.node) + post, "tfod", [new_in], outs, list(g.initializer) + inits)
    model = helper.make_model(graph, opset_imports=m.opset_import, producer_name="tf2onnx-layout (edited)")
    model.ir_version = m.ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def make_rtdetr_split(src: Path, dst: Path, nc: int) -> Path:
    """The RT-DETR ``[1, Q, 4+C]`` output split into ``boxes [1, Q, 4]`` and class logits ``scores [1, Q, C]``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    out = g.output[0]
    q = out.type.tensor_type.shape.dim[1].dim_value
    inits = [numpy_helper.from_array(np.array([4, nc], np.int64), "sp_sizes"),
             numpy_helper.from_array(np.array(1e-6, np.float32), "sp_eps"),
             numpy_helper.from_array(np.array(1.0 - 1e-6, np.float32), "sp_hi"),
             numpy_helper.from_array(np.array(1.0, np.float32), "sp_one")]
    post = [
        helper.make_node("Split", [out.name, "sp_sizes"], ["boxes", "sp_prob"], axis=2),
        helper.make_node("Clip", ["sp_prob", "sp_eps", "sp_hi"], ["sp_p"]),
        helper.make_node("Sub", ["sp_one", "sp_p"], ["sp_q"]),
        helper.make_node("Div", ["sp_p", "sp_q"], ["sp_odds"]),
        helper.make_node("Log", ["sp_odds"], ["scores"]),  # logits, as a DETR head emits them
    ]
    outs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, q, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, q, nc])]
    graph = helper.make_graph(list(g.node) + post, "detr_split", list(g.input), outs, list(g.initializer) + inits)
    model = helper.make_model(graph, opset_imports=m.opset_import, producer_name="paddle-layout (edited)")
    model.ir_version = m.ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def main(argv: list[str]) -> None:
    import onnx
    import torch
    import ultralytics

    args = [a for a in argv if not a.startswith("--")]
    only = [a.split("=", 1)[1] for a in argv if a.startswith("--only=")]
    out_dir = Path(args[0] if args else Path(__file__).resolve().parents[1] / "tests" / "data" / "models")
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    # Ultralytics reads the scale from the first "<digits><n|s|m|l|x>" in the whole YAML path, so the
    # work folder's path must hold no such pair (a random temporary name may).
    work = Path(tempfile.gettempdir()) / "streamtrt-ultralytics-export"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    if True:
        cwd = os.getcwd()
        os.chdir(work)  # the exporter writes beside the (yaml-named) model
        try:
            for name, family, model_name, kwargs in [m for m in MODELS if m[0] in only
                                                     or (not only and m[0] not in NOT_COMMITTED)]:
                made.append(export_one(name, family, model_name, kwargs, out_dir, work))
            if "--full" in argv:
                made.append(export_one("yolov8n-640.onnx", "v8/yolov8.yaml", "yolov8n.yaml", dict(imgsz=640),
                                       out_dir, work, narrow=False))
        finally:
            os.chdir(cwd)
            shutil.rmtree(work, ignore_errors=True)
    if (out_dir / "yolo26n-320.onnx").is_file():
        made.append(make_tfod(out_dir / "yolo26n-320.onnx", out_dir / "tfod-yolo26n-320.onnx"))
    if (out_dir / "rtdetr-joined-320.onnx").is_file():
        made.append(make_rtdetr_split(out_dir / "rtdetr-joined-320.onnx", out_dir / "rtdetr-split-320.onnx",
                                      NC))
    print(f"ultralytics {ultralytics.__version__}, torch {torch.__version__}, onnx {onnx.__version__}, "
          f"width {WIDTH}, max_channels {MAX_CHANNELS}, nc {NC}, reg_max {REG_MAX}, seed {SEED}")
    for p in made:
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        print(f"| {p.name} | {p.stat().st_size} | `{digest}` |")


if __name__ == "__main__":
    main(sys.argv[1:])
