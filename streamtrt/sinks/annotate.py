"""Drawing detections, lines and zones onto frames.

Labels stay inside the frame and are placed greedily so they do not cover one another where
that can be avoided: each label tries above its box, inside the box's top, then below the box,
and takes the first place free of the labels already placed (else the one overlapping least).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..postprocess.detections import Detections

Rect = tuple[int, int, int, int]  # x1, y1, x2, y2: pixels, x2/y2 exclusive

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MAX_SHIFTED = 12  # places tried beside labels in the way, per label (bounds the work in crowds)


def _color(class_id: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(class_id * 7919 + 17)
    return tuple(int(c) for c in rng.integers(64, 256, 3))


def clamp_rect(x: int, y: int, w: int, h: int, width: int, height: int) -> Rect:
    """A ``w`` x ``h`` rectangle at (x, y) moved (not shrunk) inside a ``width`` x ``height`` image;
    one larger than the image keeps its top-left corner at 0."""
    x = max(0, min(x, width - w))
    y = max(0, min(y, height - h))
    return x, y, x + w, y + h


def place_label(size: tuple[int, int], anchors: Sequence[tuple[int, int]], placed: list[Rect],
                width: int, height: int) -> Rect:
    """Where a label of ``size`` (w, h) goes: the first of ``anchors`` (top-left corners, in order of
    preference) that, clamped into the image, overlaps none of ``placed``; failing that, each anchor
    moved just below or above the labels it hits; else the least-overlapping place. The chosen
    rectangle is appended to ``placed``."""
    w, h = size
    others = np.asarray(placed, np.int64).reshape(-1, 4)
    best, best_cost = None, None
    shifted: list[tuple[int, int]] = []
    for pass_anchors in (list(anchors), shifted):
        for x, y in pass_anchors:
            rect = clamp_rect(x, y, w, h, width, height)
            ow = np.minimum(others[:, 2], rect[2]) - np.maximum(others[:, 0], rect[0])
            oh = np.minimum(others[:, 3], rect[3]) - np.maximum(others[:, 1], rect[1])
            hit = (ow > 0) & (oh > 0)
            cost = int((ow * oh)[hit].sum())
            if best_cost is None or cost < best_cost:
                best, best_cost = rect, cost
            if cost == 0:
                break
            if pass_anchors is not shifted and len(shifted) < _MAX_SHIFTED:
                shifted += [(rect[0], int(p[3])) for p in others[hit][:2]]
                shifted += [(rect[0], int(p[1]) - h) for p in others[hit][:2]]
        if best_cost == 0:
            break
    placed.append(best)
    return best


def _text_size(label: str, scale: float) -> tuple[int, int, int]:
    (tw, th), base = cv2.getTextSize(label, _FONT, scale, 1)
    return tw, th, base


def draw_analytics(canvas: np.ndarray, cfg, counts: dict) -> None:
    """Lines with their in/out counts and zones with their occupancy, drawn in place; their labels
    inside the frame and apart from one another."""
    height, width = canvas.shape[:2]
    scale = max(0.4, min(height, width) / 1200)
    placed: list[Rect] = []

    def put(label: str, x: int, y: int, color) -> None:
        tw, th, base = _text_size(label, scale)
        w, h = tw + 2, th + base + 2
        rect = place_label((w, h), [(x, y - h - 4), (x, y + 4), (x - w, y - h - 4), (x - w, y + 4)], placed,
                           width, height)
        cv2.putText(canvas, label, (rect[0] + 1, rect[1] + th + 1), _FONT, scale, color, 1, cv2.LINE_AA)

    for line in cfg.lines:
        p1, p2 = tuple(int(v) for v in line.start), tuple(int(v) for v in line.end)
        cv2.line(canvas, p1, p2, (0, 255, 255), 2, cv2.LINE_AA)
        c = counts.get("lines", {}).get(line.name, {"in": {}, "out": {}})
        put(f"{line.name}: in {sum(c['in'].values())} out {sum(c['out'].values())}", p1[0], p1[1], (0, 255, 255))
    for zone in cfg.zones:
        pts = np.asarray(zone.points, np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], True, (255, 128, 0), 2, cv2.LINE_AA)
        z = counts.get("zones", {}).get(zone.name, {"occupancy": {}})
        x, y = pts[0, 0]
        put(f"{zone.name}: {sum(z['occupancy'].values())} inside", int(x), int(y), (255, 128, 0))


def label_rects(detections: Detections, shape: tuple[int, ...]) -> list[Rect]:
    """Where :func:`draw_detections` puts each detection's label in an image of ``shape`` (H, W, ...)."""
    return [rect for rect, _, _ in _layout(detections, shape)]


def _layout(detections: Detections, shape: tuple[int, ...]):
    height, width = shape[:2]
    font_scale = max(0.4, min(height, width) / 1200)
    ids = detections.tracker_id if detections.tracker_id is not None else [-1] * len(detections)
    placed: list[Rect] = []
    out = []
    for (x1, y1, x2, y2), score, name, tid in zip(detections.xyxy, detections.confidence, detections.class_name, ids):
        label = (f"#{tid} " if tid >= 0 else "") + f"{name} {score:.2f}"
        tw, th, base = _text_size(label, font_scale)
        w, h = tw + 2, th + base + 2
        bx1, by1, by2 = int(round(x1)), int(round(y1)), int(round(y2))
        # above the box, inside its top, below it
        rect = place_label((w, h), [(bx1, by1 - h), (bx1, by1), (bx1, by2)], placed, width, height)
        out.append((rect, label, th))
    return out


def draw_detections(image: np.ndarray, detections: Detections) -> np.ndarray:
    """A copy of ``image`` (BGR) with boxes, class names, scores and tracker ids drawn; boxes first,
    then the labels (see :func:`label_rects` for where)."""
    canvas = image.copy()
    if detections.masks is not None and detections.masks.shape[1:] == canvas.shape[:2]:
        overlay = canvas.copy()
        for mask, cid in zip(detections.masks, detections.class_id):
            overlay[mask] = _color(int(cid))
        canvas = cv2.addWeighted(overlay, MASK_ALPHA, canvas, 1 - MASK_ALPHA, 0)
    thickness = max(1, round(min(image.shape[:2]) / 300))
    font_scale = max(0.4, min(image.shape[:2]) / 1200)
    colors = [_color(int(cid)) for cid in detections.class_id]
    for (x1, y1, x2, y2), color in zip(detections.xyxy, colors):
        p1, p2 = (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2)))
        cv2.rectangle(canvas, p1, p2, color, thickness, cv2.LINE_AA)
    if detections.keypoints is not None:
        radius = max(2, thickness + 1)
        for kpts, cid in zip(detections.keypoints, detections.class_id):
            for x, y, v in kpts[:, :3]:
                if v >= KEYPOINT_VISIBLE:
                    cv2.circle(canvas, (int(round(x)), int(round(y))), radius, _color(int(cid)), -1, cv2.LINE_AA)
    for ((lx1, ly1, lx2, ly2), label, th), color in zip(_layout(detections, image.shape), colors):
        cv2.rectangle(canvas, (lx1, ly1), (lx2 - 1, ly2 - 1), color, -1)
        cv2.putText(canvas, label, (lx1 + 1, ly1 + th + 1), _FONT, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


MASK_ALPHA = 0.4
"""Opacity of the mask overlay."""

KEYPOINT_VISIBLE = 0.5
"""Keypoints drawn when their visibility score reaches this (Ultralytics' plotting default)."""
