"""box_iou against values computed by hand (areas and overlaps of small integer boxes)."""

import numpy as np
import pytest

from streamtrt.postprocess.boxes import box_iou
from streamtrt.postprocess.nms import nms


def test_hand_computed_pairs():
    a = [[0, 0, 10, 10],     # area 100
         [5, 5, 15, 15]]     # area 100; overlaps the first in [5,10]x[5,10] = 25
    b = [[0, 0, 10, 10],     # identical to a[0]
         [10, 10, 20, 20],   # touches a[0] at a corner: no area in common
         [0, 0, 5, 10],      # inside a[0], area 50
         [20, 20, 30, 30]]   # far away
    iou = box_iou(np.array(a, np.float32), np.array(b, np.int64))
    expected = np.array([
        [1.0, 0.0, 50 / 100, 0.0],
        [25 / 175, 25 / 175, 0.0, 0.0],   # a[1] & b[1]: [10,15]x[10,15] = 25, union 100 + 100 - 25
    ])
    assert iou.shape == (2, 4) and iou.dtype == np.float64
    np.testing.assert_allclose(iou, expected, rtol=0, atol=1e-12)


def test_fractional_overlap():
    # [0,0,2,1] (area 2) and [1.5,0,3.5,1] (area 2): overlap 0.5 x 1 = 0.5, union 3.5
    assert box_iou([[0, 0, 2, 1]], [[1.5, 0, 3.5, 1]])[0, 0] == pytest.approx(0.5 / 3.5, abs=1e-15)


def test_empty_and_degenerate():
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)
    assert box_iou([], []).shape == (0, 0)
    # Zero-area boxes (a point, an inverted box) have IoU 0 with anything, themselves included.
    point = [[3, 3, 3, 3]]
    inverted = [[5, 5, 1, 1]]
    assert box_iou(point, point)[0, 0] == 0.0
    assert box_iou(inverted, [[0, 0, 10, 10]])[0, 0] == 0.0


def test_batched_leading_dimensions():
    boxes = np.array([[[0, 0, 10, 10], [5, 5, 15, 15]],
                      [[0, 0, 2, 2], [0, 0, 2, 2]]], np.float32)  # (2 frames, 2 boxes, 4)
    iou = box_iou(boxes, boxes)
    assert iou.shape == (2, 2, 2)
    np.testing.assert_allclose(iou[0], [[1.0, 25 / 175], [25 / 175, 1.0]], atol=1e-12)
    np.testing.assert_allclose(iou[1], np.ones((2, 2)), atol=1e-12)


def test_symmetric_and_used_by_nms():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (20, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 40, (20, 2))], axis=1)
    iou = box_iou(boxes, boxes)
    np.testing.assert_allclose(iou, iou.T, atol=1e-15)
    np.testing.assert_allclose(np.diag(iou), 1.0, atol=1e-12)
    # Greedy NMS by hand: keep a box if it overlaps no kept box above the threshold.
    scores = rng.uniform(0, 1, 20)
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        if all(iou[i, j] <= 0.3 for j in kept):
            kept.append(i)
    assert nms(boxes, scores, 0.3).tolist() == kept


@pytest.mark.gpu
def test_cupy_matches_numpy():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("no GPU")
    except Exception:
        pytest.skip("no GPU")
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], np.float32)
    on_device = box_iou(cupy.asarray(a), cupy.asarray(a), xp=cupy)
    assert isinstance(on_device, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(on_device), box_iou(a, a), atol=1e-12)
