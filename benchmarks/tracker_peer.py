"""streamtrt's tracker against supervision's ByteTrack, on the same per-frame detections.

Two inputs:

* ``real``: the sample clip (``samples/vtest.mp4``, 795 frames, 768x576, 10 fps) through the real
  detector (NanoDet-m, CPU), persons down to score 0.1, cached in ``benchmarks/data/vtest_person_dets.npz``
  (``--make-cache`` rebuilds it). No ground truth: each tracker is scored against the other's output.
* ``synthetic``: people walking across one another (crossing paths, occlusions), boxes with pixel
  noise, 15 % missed detections, modest scores (0.3-0.9, lower while occluded) and a few false
  positives, with known identities: ground truth.

For each: tracks (distinct ids), ID switches and fragmentations as in the CLEAR MOT metrics
(Bernardin and Stiefelhagen 2008: each frame, last frame's correspondences are kept while their
IoU stays >= 0.5, the other ground-truth boxes are matched to tracker boxes at IoU >= 0.5 by
optimal assignment; an ID switch is a ground-truth object matched to another id than
at its previous match; a fragmentation is a ground-truth track whose tracking stops and resumes),
the share of ground-truth boxes covered, and the time per frame of the update call alone (best of
``--repeat``). Both trackers associate from 0.25, start tracks from 0.35 (supervision: its
``track_activation_threshold`` + 0.1; streamtrt: ``postprocess.score_threshold``), keep a lost track
3 s and confirm one on its second match; a second streamtrt row starts tracks from 0.25 (Ultralytics).

Run: ``PYTHONPATH=. python benchmarks/tracker_peer.py`` (needs ``pip install '.[bench]'``:
supervision's ByteTrack, removed from supervision after 0.27).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamtrt.config import TrackerConfig  # noqa: E402
from streamtrt.postprocess.detections import Detections  # noqa: E402
from streamtrt.postprocess.boxes import box_iou  # noqa: E402
from streamtrt.track.bytetrack import ByteTracker  # noqa: E402

CACHE = ROOT / "benchmarks" / "data" / "vtest_person_dets.npz"
FPS = 10.0
SCORE_THRESHOLD = 0.35  # configs/sample.yaml: what the sinks report
BUFFER_S = 3.0

Frames = list[tuple[np.ndarray, np.ndarray]]  # per frame: xyxy (N, 4) float32, confidence (N,) float32


# -- inputs --------------------------------------------------------------------------------------

def make_cache() -> None:
    from streamtrt import Pipeline
    from streamtrt.config import load_config

    cfg = load_config(ROOT / "configs" / "sample.yaml", [
        "sinks=[]", "runtime.decoder=cpu", "runtime.runner=onnxruntime-cpu", "postprocess.score_threshold=0.1",
        "postprocess.classes=[person]"])
    counts, boxes, scores = [], [], []
    with Pipeline(cfg) as pipe:
        for r in pipe:
            counts.append(len(r.detections))
            boxes.append(r.detections.xyxy)
            scores.append(r.detections.confidence)
    save_cache(np.array(counts, np.int32), np.concatenate(boxes), np.concatenate(scores))


def save_cache(counts: np.ndarray, xyxy: np.ndarray, confidence: np.ndarray) -> None:
    """Boxes to 0.1 px and scores to 1e-4 (as the JSON records round them), as integers: ~200 kB."""
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(CACHE, counts=counts.astype(np.int32), xyxy_dpx=np.round(xyxy * 10).astype(np.int16),
                        confidence_e4=np.round(confidence * 1e4).astype(np.uint16))
    print(f"wrote {CACHE} ({len(counts)} frames, {int(counts.sum())} detections)")


def load_real() -> Frames:
    data = np.load(CACHE)
    ends = np.cumsum(data["counts"])
    starts = ends - data["counts"]
    xyxy = data["xyxy_dpx"].astype(np.float32) / 10
    confidence = data["confidence_e4"].astype(np.float32) / 1e4
    return [(xyxy[s:e], confidence[s:e]) for s, e in zip(starts, ends)]


def make_synthetic(frames: int = 400, people: int = 12, seed: int = 0) -> tuple[Frames, list[np.ndarray], list[np.ndarray]]:
    """Walkers on straight paths across a 768x576 view, crossing each other.

    Returns the detections per frame and, per frame, the ground-truth ids (K,) and boxes (K, 4)."""
    rng = np.random.default_rng(seed)
    walkers = []
    for i in range(people):
        start_f = int(rng.integers(0, frames // 2))
        length = int(rng.integers(120, 240))
        h = float(rng.uniform(70, 120))
        y = float(rng.uniform(150, 500))
        going_right = i % 2 == 0
        x0, x1 = (-20.0, 790.0) if going_right else (790.0, -20.0)
        dy = float(rng.uniform(-0.4, 0.4))
        walkers.append((start_f, length, h, y, x0, x1, dy))
    dets: Frames = []
    gt_ids, gt_boxes = [], []
    for f in range(frames):
        ids, boxes = [], []
        for k, (start_f, length, h, y, x0, x1, dy) in enumerate(walkers):
            t = f - start_f
            if not 0 <= t < length:
                continue
            cx = x0 + (x1 - x0) * t / length
            cy = y + dy * t
            w = 0.4 * h
            b = np.array([cx - w / 2, cy - h, cx + w / 2, cy])
            if b[2] < 0 or b[0] > 768:
                continue
            ids.append(k + 1)
            boxes.append(b)
        boxes_a = np.array(boxes).reshape(-1, 4)
        gt_ids.append(np.array(ids, np.int64))
        gt_boxes.append(boxes_a)
        # detections: noise, misses, occlusion lowers the score of the one behind (the smaller y)
        overlap = box_iou(boxes_a, boxes_a) if len(boxes_a) else np.zeros((0, 0))
        out_b, out_s = [], []
        for j, b in enumerate(boxes_a):
            occluded = any(overlap[j, m] > 0.3 and boxes_a[m, 3] > b[3] for m in range(len(boxes_a)) if m != j)
            if rng.random() < (0.5 if occluded else 0.15):
                continue
            h = b[3] - b[1]
            out_b.append(b + rng.normal(0, 0.02 * h, 4))
            out_s.append(rng.uniform(0.15, 0.4) if occluded else rng.uniform(0.3, 0.9))
        for _ in range(rng.poisson(0.3)):  # false positives
            x, yb = rng.uniform(0, 700), rng.uniform(100, 560)
            out_b.append(np.array([x, yb - 60, x + 25, yb]))
            out_s.append(rng.uniform(0.1, 0.45))
        dets.append((np.array(out_b, np.float32).reshape(-1, 4), np.array(out_s, np.float32)))
    return dets, gt_ids, gt_boxes


# -- trackers ------------------------------------------------------------------------------------

def run_streamtrt(frames: Frames, **settings) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    tracker = ByteTracker(TrackerConfig(enabled=True, track_buffer_s=BUFFER_S, **settings), SCORE_THRESHOLD, FPS)
    out, spent = [], 0.0
    for xyxy, conf in frames:
        t0 = time.perf_counter()
        d = tracker.update(Detections(xyxy, conf, np.zeros(len(conf), np.int32), ["person"] * len(conf)))
        spent += time.perf_counter() - t0
        keep = d.tracker_id > 0
        out.append((d.tracker_id[keep], d.xyxy[keep]))
    return out, spent / len(frames)


def run_streamtrt_025(frames: Frames):
    """New tracks from 0.25, as Ultralytics' ``new_track_thresh`` (below what the detector reports)."""
    return run_streamtrt(frames, new_track_threshold=0.25)


def run_supervision(frames: Frames) -> tuple[list[tuple[np.ndarray, np.ndarray]], float]:
    import supervision as sv

    if not hasattr(sv, "ByteTrack"):
        raise SystemExit(f"supervision {sv.__version__} has no ByteTrack (removed after 0.27): "
                         "pip install 'supervision>=0.25,<0.28' (the bench extra)")
    # lost_track_buffer is in frames at 30 fps: max_time_lost = frame_rate / 30 * buffer = 3 s here
    tracker = sv.ByteTrack(track_activation_threshold=0.25, lost_track_buffer=int(BUFFER_S * 30),
                           minimum_matching_threshold=0.8, frame_rate=int(FPS), minimum_consecutive_frames=1)
    out, spent = [], 0.0
    for xyxy, conf in frames:
        t0 = time.perf_counter()
        d = tracker.update_with_detections(sv.Detections(xyxy=xyxy.astype(np.float32), confidence=conf,
                                                         class_id=np.zeros(len(conf), int)))
        spent += time.perf_counter() - t0
        out.append((np.asarray(d.tracker_id, np.int64), d.xyxy))
    return out, spent / len(frames)


# -- scores --------------------------------------------------------------------------------------

def clear_mot(gt: list[tuple[np.ndarray, np.ndarray]], pred: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """ID switches, fragmentations and coverage of ``gt`` by ``pred`` (per frame: ids, boxes).

    As CLEAR MOT prescribes, a correspondence of the previous frame is kept while its IoU stays
    >= 0.5; the remaining objects are matched by optimal assignment on IoU (>= 0.5)."""
    last: dict[int, int] = {}
    tracked_before: dict[int, bool] = {}
    switches = fragments = matched = total = 0
    for (g_ids, g_boxes), (p_ids, p_boxes) in zip(gt, pred):
        total += len(g_ids)
        now: dict[int, int] = {}
        if len(g_ids) and len(p_ids):
            iou = box_iou(np.asarray(g_boxes, np.float64), np.asarray(p_boxes, np.float64))
            g_list, p_list = [int(g) for g in g_ids], [int(p) for p in p_ids]
            for r, g in enumerate(g_list):  # keep last frame's correspondences that still hold
                if g in last and last[g] in p_list and last[g] not in now.values():
                    c = p_list.index(last[g])
                    if iou[r, c] >= 0.5:
                        now[g] = last[g]
            free_r = [r for r, g in enumerate(g_list) if g not in now]
            free_c = [c for c, p in enumerate(p_list) if p not in now.values()]
            if free_r and free_c:
                sub = iou[np.ix_(free_r, free_c)]
                for r, c in zip(*linear_sum_assignment(-sub)):
                    if sub[r, c] >= 0.5:
                        now[g_list[free_r[r]]] = p_list[free_c[c]]
        for g, p in now.items():
            matched += 1
            if g in last and last[g] != p:
                switches += 1
            last[g] = p
        for g in map(int, g_ids):
            if g in now and tracked_before.get(g) is False:
                fragments += 1
            if g in now or g in tracked_before:
                tracked_before[g] = g in now
    return {"id_switches": switches, "fragments": fragments, "coverage": matched / max(total, 1)}


def tracks(pred) -> int:
    return len({int(i) for ids, _ in pred for i in ids})


def report(name: str, rows: list[tuple[str, dict]]) -> None:
    print(f"\n{name}")
    print("| tracker | tracks | ID switches | fragments | coverage | ms/frame |")
    print("|---|---:|---:|---:|---:|---:|")
    for who, r in rows:
        print(f"| {who} | {r['tracks']:.0f} | {r['id_switches']:.0f} | {r['fragments']:.0f} | {r['coverage']:.1%} "
              f"| {r['ms']:.2f} |")


def best_of(fn, frames, repeat):
    results = [fn(frames) for _ in range(repeat)]
    return results[0][0], min(r[1] for r in results) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--make-cache", action="store_true", help="rerun the detector on the sample clip first")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=5, help="synthetic clips")
    args = ap.parse_args()
    if args.make_cache or not CACHE.exists():
        make_cache()

    trackers = (("streamtrt ByteTracker", run_streamtrt), ("streamtrt, new tracks from 0.25", run_streamtrt_025),
                ("supervision ByteTrack", run_supervision))
    seeds = range(args.seeds)
    clips = [make_synthetic(seed=seed) for seed in seeds]
    rows = []
    for who, fn in trackers:
        total = {"tracks": 0, "id_switches": 0, "fragments": 0, "coverage": 0.0, "ms": 0.0}
        for dets, gt_ids, gt_boxes in clips:
            pred, ms = best_of(fn, dets, args.repeat)
            scores = {"tracks": tracks(pred), **clear_mot(list(zip(gt_ids, gt_boxes)), pred), "ms": ms}
            for k in total:
                total[k] += scores[k] / (len(clips) if k in ("coverage", "ms") else 1)
        rows.append((who, total))
    people = sum(len({int(i) for ids in gt_ids for i in ids}) for _, gt_ids, _ in clips)
    report(f"synthetic: {len(clips)} clips of {len(clips[0][0])} frames, {people} people in all (ground truth), "
           f"{sum(len(s) for dets, _, _ in clips for _, s in dets)} detections", rows)

    real = load_real()
    ours, ms_ours = best_of(run_streamtrt, real, args.repeat)
    ours25, ms_ours25 = best_of(run_streamtrt_025, real, args.repeat)
    peer, ms_peer = best_of(run_supervision, real, args.repeat)
    rows = [("streamtrt ByteTracker, scored against supervision", {"tracks": tracks(ours), **clear_mot(peer, ours), "ms": ms_ours}),
            ("streamtrt, new tracks from 0.25, scored against supervision",
             {"tracks": tracks(ours25), **clear_mot(peer, ours25), "ms": ms_ours25}),
            ("supervision ByteTrack, scored against streamtrt", {"tracks": tracks(peer), **clear_mot(ours, peer), "ms": ms_peer}),
            ("supervision ByteTrack, scored against streamtrt from 0.25",
             {"tracks": tracks(peer), **clear_mot(ours25, peer), "ms": ms_peer})]
    report(f"real: samples/vtest.mp4, {len(real)} frames, NanoDet-m persons >= 0.1, "
           f"{sum(len(s) for _, s in real)} detections", rows)
    reported = sum(int(np.sum(s > SCORE_THRESHOLD)) for _, s in real)
    print(f"\nreported detections (> {SCORE_THRESHOLD}): {reported}; with an id: streamtrt "
          f"{sum(len(i) for i, _ in ours)}, supervision {sum(len(i) for i, _ in peer)} (both also keep low-score "
          "detections that continue a track)")


if __name__ == "__main__":
    main()
