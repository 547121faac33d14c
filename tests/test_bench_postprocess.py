"""The bench's "postprocess alone" measures what `run` does after inference. With the GPU
postprocessor (CuPy decode + NMS) the runner's outputs stay on the device and go through the
device postprocessor, then the host mapping; raw outputs never reach the final-boxes reader
(that was `KeyError: 'final_boxes'` on a GPU). Here a stand-in array module fakes CuPy."""

from __future__ import annotations

import types

import numpy as np
import pytest

from streamtrt.bench import postprocess_alone
from streamtrt.config import PostprocessConfig
from streamtrt.engine.onnxruntime import OnnxRuntimeRunner
from streamtrt.postprocess import COCO_CLASSES, Postprocessor, select_decoder
from streamtrt.postprocess.device import DeviceNanoDetPostprocessor, FinalDetectionsDecoder
from streamtrt.preprocess.opencv import OpenCVPreprocessor
from streamtrt.preprocess.spec import PreprocessSpec
from tests.conftest import NANODET_INPUT, SAMPLES, VIDEO, decode_frames


class _OnDevice:
    """An output left in (fake) device memory: not an array the host code can read."""

    def __init__(self, array: np.ndarray):
        self.device_array = array
        self.shape = array.shape


class _FakeCupy(types.ModuleType):
    """CuPy's array API on NumPy, with ``asnumpy`` the only way back to the host."""

    def __init__(self):
        super().__init__("cupy")
        self.copies_to_host = 0

    def __getattr__(self, name):
        return getattr(np, name)

    def asnumpy(self, a):
        self.copies_to_host += 1
        return np.asarray(a)


class _DeviceOutputRunner:
    """The sample model on ONNX Runtime CPU, answering like a CUDA runner: outputs stay on the device."""

    def __init__(self, runner: OnnxRuntimeRunner):
        self.runner = runner
        self.max_batch = runner.max_batch
        self.inputs = runner.inputs
        self.device_calls = 0

    def infer_on_device(self, feeds):
        self.device_calls += 1
        return {k: _OnDevice(v) for k, v in self.runner.infer(feeds).items()}

    def infer(self, feeds):
        raise AssertionError("with a device postprocessor the bench must keep the outputs on the device")


@pytest.fixture(scope="module")
def batch():
    frames = decode_frames(VIDEO, 100)[::25]  # 4 frames
    spec = PreprocessSpec(416, 416, "stretch", "bgr", tuple(NANODET_INPUT["mean"]), tuple(NANODET_INPUT["std"]),
                          114, "float32")
    tensor, geoms = OpenCVPreprocessor(spec)(frames)
    return tensor, geoms, frames[0].shape[:2]


def test_bench_postprocess_alone_runs_the_device_postprocessor_like_run(batch):
    tensor, geoms, size = batch
    pcfg = PostprocessConfig()
    with OnnxRuntimeRunner(SAMPLES / "nanodet-m-416-dynamic.onnx") as ort_runner:
        name = ort_runner.inputs[0].name
        raw = ort_runner.infer({name: tensor})
        decoder = select_decoder("nanodet", {k: v.shape for k, v in raw.items()}, (416, 416), len(COCO_CLASSES))
        host = Postprocessor(decoder, COCO_CLASSES, pcfg)
        expected = host(raw, [geoms[0]] * len(tensor), [size] * len(tensor))
        # Wired as runtime.components._device_postprocessor wires it: a device decode+NMS, then a host
        # postprocessor that only reads the final boxes.
        cupy = _FakeCupy()
        device = DeviceNanoDetPostprocessor(decoder, host.threshold, pcfg.iou_threshold, pcfg.max_detections,
                                            host.class_filter, len(COCO_CLASSES), xp=cupy)
        device_post = lambda outs: device({k: cupy.asarray(v.device_array) for k, v in outs.items()})  # noqa: E731
        final_reader = Postprocessor(FinalDetectionsDecoder(), COCO_CLASSES, pcfg, host.threshold)
        runner = _DeviceOutputRunner(ort_runner)
        measure, got = postprocess_alone(runner, name, tensor, final_reader, device_post, geoms[0], size, 12)
    assert measure.frames == 12 and len(measure.samples_ms) == 3 and "GPU" in measure.name
    assert runner.device_calls == 1 and cupy.copies_to_host == 3 * 4  # four final arrays per batch
    assert len(got) == len(expected) == 4
    for e, g in zip(expected, got):
        assert np.array_equal(e.class_id, g.class_id) and np.allclose(e.xyxy, g.xyxy, atol=1e-3)
    assert sum(len(e) for e in expected) > 0


def test_bench_postprocess_alone_on_the_host(batch):
    tensor, geoms, size = batch
    with OnnxRuntimeRunner(SAMPLES / "nanodet-m-416-dynamic.onnx") as runner:
        name = runner.inputs[0].name
        raw = runner.infer({name: tensor})
        decoder = select_decoder("nanodet", {k: v.shape for k, v in raw.items()}, (416, 416), len(COCO_CLASSES))
        post = Postprocessor(decoder, COCO_CLASSES, PostprocessConfig())
        measure, got = postprocess_alone(runner, name, tensor, post, None, geoms[0], size, 8)
    assert measure.frames == 8 and measure.name == "postprocess" and len(got) == 4
