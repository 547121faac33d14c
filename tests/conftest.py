"""Shared fixtures: the real sample model and clip, and short media derived from it."""

from __future__ import annotations

import os
import shutil
import time
from typing import Optional
from pathlib import Path

import av

import numpy as np
import pytest

from streamtrt.postprocess.boxes import box_iou

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
MODEL = SAMPLES / "nanodet-m-416.onnx"
VIDEO = SAMPLES / "vtest.mp4"
SAMPLE_CONFIG = ROOT / "configs" / "sample.yaml"
NANODET_INPUT = {"mean": [103.53, 116.28, 123.675], "std": [57.375, 57.12, 58.395]}


def decode_frames(path: Path, count: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="bgr24"))
            if len(frames) == count:
                break
    return frames


def write_video(path: Path, frames: list[np.ndarray], codec: str, fps: int = 10,
                options: Optional[dict] = None) -> Path:
    """Encode BGR frames with PyAV's bundled FFmpeg (``options``: encoder options)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="session")
def first_frames() -> list[np.ndarray]:
    """The first 12 frames of the sample clip (BGR)."""
    return decode_frames(VIDEO, 12)


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory, first_frames) -> Path:
    """A 12-frame H.264 MP4 cut from the sample."""
    return write_video(tmp_path_factory.mktemp("media") / "short.mp4", first_frames, "libx264")


def wait_for(condition, timeout_s: float = 30.0, poll_s: float = 0.05) -> bool:
    """Whether ``condition()`` became true within ``timeout_s`` (a generous bound, never a speed test)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


def make_config(source, tmp_path: Path, **sections) -> dict:
    """A config dict for the sample model over ``source``, on the CPU path unless ``runtime`` says
    otherwise (so the same assertions hold on a GPU machine)."""
    cfg = {
        "source": str(source),
        "model": {"path": str(MODEL), "format": "nanodet", "input": dict(NANODET_INPUT)},
        "sinks": [],
    }
    for key, value in sections.items():
        cfg[key] = value
    cfg["runtime"] = {"decoder": "cpu", "runner": "onnxruntime-cpu", **sections.get("runtime", {})}
    return cfg


@pytest.fixture
def sample_dir(tmp_path) -> Path:
    """A copy of configs/ and samples/ so tests never write into the repository."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    os.symlink(SAMPLES, tmp_path / "samples")
    return tmp_path


def unmatched(a: list[dict], b: list[dict], threshold: float, margin: float = 0.02, iou: float = 0.9) -> list[dict]:
    """Detections of ``a`` (clearly above ``threshold``) that have no same-class twin in ``b``.

    Near-equal tensors can reorder near-equal scores or move a box across the threshold; a clear
    detection must still be found with nearly the same box and score.
    """
    missing = []
    for d in a:
        if d["score"] < threshold + margin:
            continue
        if not any(d["class_id"] == e["class_id"] and abs(d["score"] - e["score"]) <= margin
                   and float(box_iou(d["bbox"], e["bbox"])[0, 0]) >= iou for e in b):
            missing.append(d)
    return missing


def same_detections(a, b, box_atol: float = 1e-2, score_atol: float = 1e-4) -> bool:
    """Equal detections up to order and float noise (batched vs single runs, GPU vs CPU)."""
    if len(a) != len(b):
        return False
    if not len(a):
        return True
    oa, ob = np.lexsort(a.xyxy.T[::-1]), np.lexsort(b.xyxy.T[::-1])
    return (np.array_equal(a.class_id[oa], b.class_id[ob]) and np.allclose(a.xyxy[oa], b.xyxy[ob], atol=box_atol)
            and np.allclose(a.confidence[oa], b.confidence[ob], atol=score_atol))
