import dataclasses

import cv2
import numpy as np
import pytest

from streamtrt.preprocess.dali import DaliCpuPreprocessor, dali_available
from streamtrt.preprocess.opencv import OpenCVPreprocessor
from streamtrt.preprocess.spec import PreprocessSpec

MEAN = (103.53, 116.28, 123.675)
STD = (57.375, 57.12, 58.395)


def spec(**kw):
    base = dict(height=416, width=416, mean=MEAN, std=STD)
    base.update(kw)
    return PreprocessSpec(**base)


def test_stretch_geometry():
    g = spec().geometry(576, 768)
    assert (g.pad_x, g.pad_y, g.resized_width, g.resized_height) == (0, 0, 416, 416)
    assert g.scale_x == pytest.approx(416 / 768)


def test_letterbox_geometry_centres_the_image():
    g = spec(resize="letterbox", height=640, width=640).geometry(1080, 1920)
    assert (g.resized_width, g.resized_height) == (640, 360)
    assert (g.pad_x, g.pad_y) == (0, 140)


def test_boxes_map_back_through_letterbox():
    s = spec(resize="letterbox", height=640, width=640)
    g = s.geometry(1080, 1920)
    src = np.array([[100.0, 200.0, 500.0, 900.0]], np.float32)
    in_model = src.copy()
    in_model[:, [0, 2]] = src[:, [0, 2]] * g.scale_x + g.pad_x
    in_model[:, [1, 3]] = src[:, [1, 3]] * g.scale_y + g.pad_y
    assert np.allclose(g.to_source(in_model, 1080, 1920), src, atol=1e-3)


def test_boxes_are_clipped_to_the_frame():
    g = spec().geometry(100, 100)
    out = g.to_source(np.array([[-50, -50, 500, 500]], np.float32), 100, 100)
    assert out.tolist() == [[0, 0, 100, 100]]


def test_opencv_output_layout_and_normalisation(first_frames):
    s = spec()
    tensor, geoms = OpenCVPreprocessor(s)(first_frames[:2])
    assert tensor.shape == (2, 3, 416, 416) and tensor.dtype == np.float32
    import cv2

    expected = (cv2.resize(first_frames[0], (416, 416)).astype(np.float32) - MEAN) / STD
    assert np.allclose(tensor[0], expected.transpose(2, 0, 1), atol=1e-5)


def test_letterbox_border_has_pad_value(first_frames):
    s = spec(resize="letterbox", mean=(0, 0, 0), std=(1, 1, 1))
    tensor, geoms = OpenCVPreprocessor(s)(first_frames[:1])
    g = geoms[0]
    assert g.pad_y > 0
    assert np.all(tensor[0, :, : g.pad_y, :] == 114)
    assert np.all(tensor[0, :, g.pad_y + g.resized_height :, :] == 114)


def test_rgb_swaps_channels(first_frames):
    bgr, _ = OpenCVPreprocessor(spec(mean=(0, 0, 0), std=(1, 1, 1)))(first_frames[:1])
    rgb, _ = OpenCVPreprocessor(spec(color="rgb", mean=(0, 0, 0), std=(1, 1, 1)))(first_frames[:1])
    assert np.array_equal(bgr[0, ::-1], rgb[0])


@pytest.mark.skipif(not dali_available(), reason="DALI is not installed")
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize("color", ["bgr", "rgb"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_dali_cpu_matches_opencv_within_one_level(first_frames, resize, color, dtype):
    """The DALI CPU pipeline and the OpenCV fallback give the same tensor within 1/255 of range."""
    frames = first_frames[:3] + [np.ascontiguousarray(first_frames[3][:300, :200])]  # mixed sizes
    s = spec(resize=resize, color=color, dtype=dtype)
    a, ga = OpenCVPreprocessor(s)(frames)
    b, gb = DaliCpuPreprocessor(s, max_batch=4, threads=2)(frames)
    assert a.dtype == b.dtype == np.dtype(dtype) and a.shape == b.shape
    assert ga == gb
    pixel_diff = np.abs(a.astype(np.float32) - b.astype(np.float32)) * np.asarray(STD, np.float32).reshape(1, 3, 1, 1)
    # one 8-bit level is 1/255 of the range; float16 adds its own rounding on top
    assert pixel_diff.max() <= 1.0 + (0.06 if dtype == "float16" else 1e-3)
    assert pixel_diff.mean() < 0.3


@pytest.mark.skipif(not dali_available(), reason="DALI is not installed")
def test_dali_cpu_rejects_oversized_batch(first_frames):
    with pytest.raises(ValueError):
        DaliCpuPreprocessor(spec(), max_batch=2, threads=1)(first_frames[:3])


def test_nhwc_uint8_is_raw_pixels(first_frames):
    """TensorFlow-style input: NHWC uint8 RGB pixels, stretched, no normalisation."""
    s = PreprocessSpec(96, 128, resize="stretch", color="rgb", dtype="uint8", layout="nhwc")
    tensor, (g,) = OpenCVPreprocessor(s)(first_frames[:1])
    assert tensor.shape == (1, 96, 128, 3) and tensor.dtype == np.uint8
    expected = cv2.resize(first_frames[0], (128, 96), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]
    assert np.array_equal(tensor[0], expected)
    with pytest.raises(ValueError, match="raw pixels"):
        PreprocessSpec(96, 128, dtype="uint8", std=(255.0, 255.0, 255.0))


def test_nhwc_float_matches_nchw(first_frames):
    nchw, _ = OpenCVPreprocessor(spec(resize="letterbox"))(first_frames[:2])
    nhwc, _ = OpenCVPreprocessor(dataclasses.replace(spec(resize="letterbox"), layout="nhwc"))(first_frames[:2])
    assert np.allclose(nchw.transpose(0, 2, 3, 1), nhwc)


@pytest.mark.skipif(not dali_available(), reason="DALI is not installed")
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_dali_cpu_nhwc_matches_opencv(first_frames, dtype):
    frames = first_frames[:2]
    s = PreprocessSpec(96, 128, resize="letterbox", color="rgb", dtype=dtype, layout="nhwc")
    a, _ = OpenCVPreprocessor(s)(frames)
    b, _ = DaliCpuPreprocessor(s, max_batch=2, threads=2)(frames)
    assert a.shape == b.shape == (2, 96, 128, 3) and a.dtype == b.dtype
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32))
    assert diff.max() <= 1.0 + 1e-3 and diff.mean() < 0.3


@pytest.mark.parametrize("color", ["bgr", "rgb"])
@pytest.mark.parametrize("mean,std", [(MEAN, STD), ((0, 0, 0), (255, 255, 255))])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_nchw_normalisation_is_bit_exact_against_the_whole_array_formula(first_frames, color, mean, std, dtype):
    """The per-channel writer gives exactly ``((rgb or bgr).astype(float32) - mean) / std`` computed
    as one numpy expression (with 1/std in float32), cast to the output dtype."""
    s = spec(resize="letterbox", color=color, mean=mean, std=std, dtype=dtype)
    frames = first_frames[:2] + [np.ascontiguousarray(first_frames[2][:300, :200])]
    tensor, geoms = OpenCVPreprocessor(s)(frames)
    inv = (1.0 / np.asarray(std, np.float32)).reshape(3, 1, 1)
    for i, (frame, g) in enumerate(zip(frames, geoms)):
        boxed = cv2.resize(frame, (g.resized_width, g.resized_height), interpolation=cv2.INTER_LINEAR)
        boxed = cv2.copyMakeBorder(boxed, g.pad_y, 416 - g.resized_height - g.pad_y, g.pad_x,
                                   416 - g.resized_width - g.pad_x, cv2.BORDER_CONSTANT, value=(114, 114, 114))
        if color == "rgb":
            boxed = boxed[:, :, ::-1]
        expected = (boxed.transpose(2, 0, 1).astype(np.float32) - np.asarray(mean, np.float32).reshape(3, 1, 1)) * inv
        assert tensor.dtype == np.dtype(dtype)
        assert np.array_equal(tensor[i], expected.astype(dtype))
