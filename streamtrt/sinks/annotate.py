"""Drawing detections onto frames."""

from __future__ import annotations

import cv2
import numpy as np

from ..postprocess.detections import Detections


def _color(class_id: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(class_id * 7919 + 17)
    return tuple(int(c) for c in rng.integers(64, 256, 3))


def draw_analytics(canvas: np.ndarray, cfg, counts: dict) -> None:
    """Lines with their in/out counts and zones with their occupancy, drawn in place."""
    scale = max(0.4, min(canvas.shape[:2]) / 1200)
    for line in cfg.lines:
        p1, p2 = tuple(int(v) for v in line.start), tuple(int(v) for v in line.end)
        cv2.line(canvas, p1, p2, (0, 255, 255), 2, cv2.LINE_AA)
        c = counts.get("lines", {}).get(line.name, {"in": {}, "out": {}})
        label = f"{line.name}: in {sum(c['in'].values())} out {sum(c['out'].values())}"
        cv2.putText(canvas, label, (p1[0], max(p1[1] - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 255), 1,
                    cv2.LINE_AA)
    for zone in cfg.zones:
        pts = np.asarray(zone.points, np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], True, (255, 128, 0), 2, cv2.LINE_AA)
        z = counts.get("zones", {}).get(zone.name, {"occupancy": {}})
        label = f"{zone.name}: {sum(z['occupancy'].values())} inside"
        x, y = pts[0, 0]
        cv2.putText(canvas, label, (int(x), max(int(y) - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 128, 0), 1,
                    cv2.LINE_AA)


def draw_detections(image: np.ndarray, detections: Detections) -> np.ndarray:
    """A copy of ``image`` (BGR) with boxes, class names, scores and tracker ids drawn."""
    canvas = image.copy()
    if detections.masks is not None and detections.masks.shape[1:] == canvas.shape[:2]:
        overlay = canvas.copy()
        for mask, cid in zip(detections.masks, detections.class_id):
            overlay[mask] = _color(int(cid))
        canvas = cv2.addWeighted(overlay, MASK_ALPHA, canvas, 1 - MASK_ALPHA, 0)
    ids = detections.tracker_id if detections.tracker_id is not None else [-1] * len(detections)
    thickness = max(1, round(min(image.shape[:2]) / 300))
    font_scale = max(0.4, min(image.shape[:2]) / 1200)
    for (x1, y1, x2, y2), score, cid, name, tid in zip(
        detections.xyxy, detections.confidence, detections.class_id, detections.class_name, ids
    ):
        color = _color(int(cid))
        p1, p2 = (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2)))
        cv2.rectangle(canvas, p1, p2, color, thickness, cv2.LINE_AA)
        label = (f"#{tid} " if tid >= 0 else "") + f"{name} {score:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = max(p1[1] - th - base - 2, 0)
        cv2.rectangle(canvas, (p1[0], top), (p1[0] + tw + 2, top + th + base + 2), color, -1)
        cv2.putText(canvas, label, (p1[0] + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    if detections.keypoints is not None:
        radius = max(2, thickness + 1)
        for kpts, cid in zip(detections.keypoints, detections.class_id):
            for x, y, v in kpts[:, :3]:
                if v >= KEYPOINT_VISIBLE:
                    cv2.circle(canvas, (int(round(x)), int(round(y))), radius, _color(int(cid)), -1, cv2.LINE_AA)
    return canvas


MASK_ALPHA = 0.4
"""Opacity of the mask overlay."""

KEYPOINT_VISIBLE = 0.5
"""Keypoints drawn when their visibility score reaches this (Ultralytics' plotting default)."""
