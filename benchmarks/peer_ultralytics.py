"""streamtrt against Ultralytics' own predictor on the same ONNX YOLOv8n, the same clip, in one run.

    YOLO_OFFLINE=1 PYTHONPATH=. /work/venv-ul/bin/python benchmarks/peer_ultralytics.py \
        [--model yolov8n-640.onnx] [--source samples/vtest.mp4] [--frames 200] [--rounds 3]

Without --model, the model is made here (no download): Ultralytics' own export of
``yolov8n.yaml`` at 640 with random weights (seed 0). A fresh random YOLOv8n gives the same
outputs for every image (activations vanish through the untrained layers, and the class bias
makes every score ~1e-4), which would compare nothing. So before export, the BatchNorm
statistics are taken from 8 frames of the clip, and the class bias is set so that about 0.3%
of anchors score above 0.25. Detections then depend on the image, as with trained weights.

Runners, each end to end from the video file to final boxes (decode, letterbox, inference, NMS):

- ``ultralytics``: ``YOLO(model).predict(source, stream=True)`` (its own cv2 reader, LetterBox,
  ONNX Runtime session and torch NMS);
- ``opencv+ort``: a plain loop: ``cv2.VideoCapture`` -> one-call letterbox -> ``session.run`` ->
  numpy decode -> ``cv2.dnn.NMSBoxesBatched``;
- ``streamtrt``: the pipeline (its plan decides threads: printed);
- ``ort alone``: ``session.run`` on one preprocessed frame, repeated (the inference ceiling).

Rounds alternate the runners (each round in a rotated order), so a shared machine's load hits
all of them alike; the table reports each runner's best round, the ratio to Ultralytics per round,
and the CPU-time bound (process CPU seconds per frame: on C cores no schedule beats C / that).
Detections of streamtrt are compared with Ultralytics' (F1, IoU 0.5, same class).

Needs: ultralytics with CPU torch (torchvision's NMS: if torchvision cannot load, a pure-torch
stand-in is put in its place and the JSON says so), plus streamtrt's own dependencies.
Writes benchmarks/results/peer-ultralytics-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def torchvision_stand_in() -> str:
    """Use torchvision's NMS if it loads; else register a pure-torch stand-in. Returns which."""
    try:
        import torchvision  # noqa: F401
        from torchvision.ops import nms  # noqa: F401

        return f"torchvision {torchvision.__version__}" + (
            " (stand-in)" if "stand" in (torchvision.__doc__ or "").lower() else "")
    except Exception:
        pass
    import types

    import torch

    def nms(boxes, scores, iou_threshold):
        order = scores.argsort(descending=True)
        boxes = boxes[order]
        x1, y1, x2, y2 = boxes.unbind(1)
        area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
        keep, alive = [], torch.ones(len(order), dtype=torch.bool)
        for i in range(len(order)):
            if not alive[i]:
                continue
            keep.append(i)
            xx1, yy1 = torch.maximum(x1[i], x1), torch.maximum(y1[i], y1)
            xx2, yy2 = torch.minimum(x2[i], x2), torch.minimum(y2[i], y2)
            inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
            iou = inter / (area[i] + area - inter + 1e-9)
            alive &= iou <= iou_threshold
            alive[i] = False
        return order[torch.tensor(keep, dtype=torch.long)]

    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops.nms = nms
    tv.ops, tv.__version__ = ops, "0.0-stand-in"
    sys.modules["torchvision"], sys.modules["torchvision.ops"] = tv, ops
    return "pure-torch NMS stand-in (torchvision could not load)"


NMS_NOTE = torchvision_stand_in()

from streamtrt.postprocess.compare import agreement  # noqa: E402
from streamtrt.postprocess.detections import Detections  # noqa: E402


def dets(xyxy, conf, cls) -> Detections:
    n = len(conf)
    return Detections(np.asarray(xyxy, np.float32).reshape(-1, 4), conf, cls, ["x"] * n)


class Meter:
    """Wall and process-CPU time of a block, per frame."""

    def __enter__(self):
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.t0, time.process_time() - self.c0


def make_model(path: Path, source: str) -> Path:
    """Ultralytics' ONNX export of a random-weight YOLOv8n at 640 whose detections depend on the
    image (see the module docstring). Deterministic for a given clip and library versions."""
    import shutil
    import tempfile

    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    yolo = YOLO("yolov8n.yaml")
    net = yolo.model
    cap = cv2.VideoCapture(source)
    frames = []
    for k in range(200):
        ok, img = cap.read()
        if not ok:
            break
        if k % 25 == 0:
            frames.append(np.ascontiguousarray(letterbox(img)[0][:, :, ::-1].transpose(2, 0, 1)) / 255.0)
    cap.release()
    batch = torch.from_numpy(np.stack(frames).astype(np.float32))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the calibration batch
    net.train()
    with torch.no_grad():
        net(batch)
    net.eval()
    head = net.model[-1]
    logits = []
    hooks = [head.cv3[i][-1].register_forward_hook(lambda m, i, o: logits.append((o - m.bias.view(1, -1, 1, 1))
                                                                                  .amax(1).flatten(1)))
             for i in range(len(head.cv3))]
    with torch.no_grad():
        net(batch)
    for h in hooks:
        h.remove()
    top = float(np.percentile(torch.cat(logits, 1).numpy(), 99.7))
    with torch.no_grad():
        for branch in head.cv3:
            branch[-1].bias.fill_(float(np.log(0.25 / 0.75)) - top)
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            exported = os.path.join(tmp, yolo.export(format="onnx", imgsz=640))
        finally:
            os.chdir(cwd)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(exported, path)
    return path


# -- runners ------------------------------------------------------------------------------------
def run_ultralytics(model, source, frames, conf, iou):
    out = []
    with Meter() as m:
        for r in model.predict(source, stream=True, imgsz=640, conf=conf, iou=iou, max_det=300, verbose=False):
            b = r.boxes
            out.append(dets(b.xyxy.numpy(), b.conf.numpy(), b.cls.numpy().astype(int)))
            if len(out) == frames:
                break
    return out, m


def letterbox(img, size=640, pad=114):
    """One resize and one border: Ultralytics' LetterBox geometry for centred padding."""
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    dw, dh = (size - nw) / 2, (size - nh) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad,) * 3), r, left, top


def run_plain(session, source, frames, conf, iou):
    name = session.get_inputs()[0].name
    cap = cv2.VideoCapture(source)
    out = []
    with Meter() as m:
        while len(out) < frames:
            ok, img = cap.read()
            if not ok:
                break
            boxed, r, left, top = letterbox(img)
            x = np.ascontiguousarray(boxed[:, :, ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
            pred = session.run(None, {name: x})[0][0].T  # (8400, 84)
            scores = pred[:, 4:]
            ids = scores.argmax(1)
            best = scores[np.arange(len(ids)), ids]
            keep = best > conf
            cxcywh, best, ids = pred[keep, :4], best[keep], ids[keep]
            xywh = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, 2:]], 1)
            idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), best.tolist(), ids.tolist(), conf, iou, top_k=300)
            idx = np.asarray(idx, int).reshape(-1)[:300]
            xyxy = np.concatenate([xywh[idx, :2], xywh[idx, :2] + xywh[idx, 2:]], 1) if len(idx) else np.zeros((0, 4))
            xyxy = (xyxy - [left, top, left, top]) / r
            xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, img.shape[1])
            xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, img.shape[0])
            out.append(dets(xyxy, best[idx], ids[idx]))
    cap.release()
    return out, m


def run_ort_alone(session, tensor, frames):
    name = session.get_inputs()[0].name
    with Meter() as m:
        for _ in range(frames):
            session.run(None, {name: tensor})
    return [None] * frames, m


def streamtrt_config(model, source, frames, conf, iou, overrides):
    from streamtrt.config import load_config

    cfg = {
        "source": source,
        "model": {"path": model, "format": "yolov8", "classes": [str(i) for i in range(80)],
                  "input": {"resize": "letterbox", "color": "rgb", "std": [255, 255, 255], "pad_value": 114}},
        "postprocess": {"score_threshold": conf, "iou_threshold": iou, "max_detections": 300},
        # OpenCV's resize, as Ultralytics' LetterBox: DALI's differs by up to one 8-bit level, which
        # moved 10% of this random-weight model's detections (scores crowd the threshold); with
        # --set runtime.preprocessor=dali that difference is measured.
        "runtime": {"decoder": "cpu", "runner": "onnxruntime-cpu", "preprocessor": "opencv", "max_frames": frames},
        "sinks": [],
    }
    return load_config(cfg, overrides)


def run_streamtrt(cfg):
    from streamtrt.runtime import Pipeline

    pipe = Pipeline(cfg)
    out = []
    with Meter() as m:
        with pipe:
            for r in pipe:
                out.append(r.detections)
    m.plan = {**pipe.plan.as_dict(), "reasons": list(pipe.plan.reasons)}
    m.stages = {k: v.as_dict() for k, v in pipe.summary.stages.items()}
    return out, m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="ONNX YOLOv8n at 640 (default: made here, see above)")
    ap.add_argument("--source", default=str(ROOT / "samples" / "vtest.mp4"))
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="streamtrt config override for its runner (repeatable)")
    ap.add_argument("--only", default="ultralytics,opencv+ort,streamtrt,streamtrt-1x2,ort alone",
                    help="runners; streamtrt-1x2 is streamtrt with runtime.threads=2 (one run of 2 threads, "
                         "the plan before the thread budget)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "peer-ultralytics-cpu.json"))
    args = ap.parse_args()

    import onnxruntime as ort
    import torch
    import ultralytics
    from ultralytics import YOLO

    import streamtrt

    source, frames = os.path.abspath(args.source), args.frames
    if args.model:
        model = os.path.abspath(args.model)
    else:
        model = str(make_model(Path("/tmp/streamtrt-peer/yolov8n-640-bnstats.onnx"), source))
        print(f"model: {model} (random weights, BatchNorm statistics from the clip)", file=sys.stderr)
    yolo = YOLO(model, task="detect")
    first = cv2.VideoCapture(source).read()[1]
    yolo.predict(first, imgsz=640, conf=args.conf, iou=args.iou, verbose=False)  # sets up the predictor
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    boxed = letterbox(first)[0]
    tensor = np.ascontiguousarray(boxed[:, :, ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
    cfg = streamtrt_config(model, source, frames, args.conf, args.iou, args.overrides)
    runners = {
        "ultralytics": lambda: run_ultralytics(yolo, source, frames, args.conf, args.iou),
        "opencv+ort": lambda: run_plain(session, source, frames, args.conf, args.iou),
        "streamtrt": lambda: run_streamtrt(cfg),
        "streamtrt-1x2": lambda: run_streamtrt(streamtrt_config(model, source, frames, args.conf, args.iou,
                                                                args.overrides + ["runtime.threads=2"])),
        "ort alone": lambda: run_ort_alone(session, tensor, frames),
    }
    names = [n.strip() for n in args.only.split(",")]
    rounds: list[dict] = []
    detections, extra = {}, {}
    for k in range(args.rounds):
        order = names[k % len(names):] + names[:k % len(names)]
        row = {}
        for name in order:
            d, m = runners[name]()
            n = len(d)
            row[name] = {"fps": round(n / m.wall, 2), "cpu_ms_per_frame": round(m.cpu / n * 1e3, 1),
                         "frames": n, "load": round(os.getloadavg()[0], 1)}
            if name != "ort alone":
                detections[name] = d
            if name.startswith("streamtrt"):
                extra[name] = {"plan": m.plan, "stages": m.stages}
            print(f"round {k + 1}: {name:12s} {row[name]['fps']:6.2f} fps, "
                  f"{row[name]['cpu_ms_per_frame']:6.1f} CPU ms/frame, load {row[name]['load']}", file=sys.stderr)
        rounds.append(row)

    cores = os.cpu_count() or 1
    table = {}
    for name in names:
        fps = [r[name]["fps"] for r in rounds]
        cpu = [r[name]["cpu_ms_per_frame"] for r in rounds]
        ratio = [r[name]["fps"] / r["ultralytics"]["fps"] for r in rounds] if "ultralytics" in names else []
        table[name] = {"fps_rounds": fps, "fps_best": max(fps), "cpu_ms_per_frame": min(cpu),
                       "cpu_bound_fps": round(cores * 1e3 / min(cpu), 1),
                       "vs_ultralytics_rounds": [round(x, 2) for x in ratio],
                       "vs_ultralytics_median": round(float(np.median(ratio)), 2) if ratio else None}
    agree = {}
    if "ultralytics" in detections:
        for name, d in detections.items():
            if name != "ultralytics":
                agree[name] = {str(t): agreement(d, detections["ultralytics"], t).as_dict() for t in (0.5, 0.9)}
    report = {
        "model": model, "model_made_here": not args.model, "source": source, "frames": frames, "conf": args.conf, "iou": args.iou,
        "detections_per_frame_ultralytics": (round(sum(len(x) for x in detections["ultralytics"])
                                             / max(1, len(detections["ultralytics"])), 2)
                                             if "ultralytics" in detections else None),
        "table": table, "rounds": rounds, "agreement_vs_ultralytics": agree, "streamtrt": extra,
        "streamtrt_overrides": args.overrides,
        "versions": {"ultralytics": ultralytics.__version__, "torch": torch.__version__, "torchvision": NMS_NOTE,
                     "onnxruntime": ort.__version__, "opencv": cv2.__version__, "streamtrt": streamtrt.__version__,
                     "python": platform.python_version()},
        "machine": {"cpus": cores, "cpu": _cpu_name(), "loadavg_end": [round(x, 1) for x in os.getloadavg()]},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"| runner | fps, best (rounds) | × Ultralytics (median) | CPU ms/frame | CPU-bound fps on {cores} cores |")
    print("|---|---|---|---|---|")
    for name, t in table.items():
        print(f"| {name} | {t['fps_best']:.1f} ({' / '.join(f'{x:.1f}' for x in t['fps_rounds'])}) | "
              f"{t['vs_ultralytics_median'] if t['vs_ultralytics_median'] is not None else '-'} | "
              f"{t['cpu_ms_per_frame']:.0f} | {t['cpu_bound_fps']:.1f} |")
    for name, a in agree.items():
        print(f"{name} vs ultralytics: F1 {a['0.5']['f1']:.3f} at IoU 0.5 ({a['0.5']['matched']}/"
              f"{a['0.5']['reference']} matched), F1 {a['0.9']['f1']:.3f} at IoU 0.9")
    print(f"load average at the end {os.getloadavg()[0]:.1f} on {cores} CPUs; JSON: {args.out}")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
