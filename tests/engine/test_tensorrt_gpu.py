"""TensorRT engines executed on the GPU, compared with ONNX Runtime. Skips (with the reason)
where there is no TensorRT, no GPU, or a TensorRT that cannot run engines on this GPU."""

import numpy as np
import pytest

from streamtrt.config import load_config
from streamtrt.errors import BackendUnavailableError, ModelError
from streamtrt.system import probe_cuda, tensorrt_module
from tests.conftest import MODEL

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.skipif(tensorrt_module() is None, reason="TensorRT is not installed"),
    pytest.mark.skipif(not probe_cuda().available, reason="no CUDA device"),
]


@pytest.fixture(scope="module")
def fp32_runner(tmp_path_factory):
    from streamtrt.engine import EngineSettings
    from streamtrt.engine.tensorrt import load_tensorrt, prepare_engine
    from streamtrt.engine.tensorrt.runner import TensorRTRunner

    trt = load_tensorrt()
    cfg = load_config({"source": "unused", "model": {"path": str(MODEL)}},
                      ["tensorrt.precision=fp32", f"tensorrt.cache_dir={tmp_path_factory.mktemp('engines')}"])
    prepared = prepare_engine(EngineSettings.from_config(cfg), trt=trt)
    runner = TensorRTRunner(trt, prepared.plan, 0, 2)
    try:
        runner.activate()
    except (ModelError, BackendUnavailableError) as exc:
        pytest.skip(f"this TensorRT cannot execute engines on this GPU ({exc}); "
                    "TensorRT-RTX refuses compute capability 9.0")
    yield runner
    runner.deactivate()


def test_outputs_match_onnxruntime(fp32_runner):
    from streamtrt.engine import OnnxRuntimeRunner

    x = np.random.default_rng(0).normal(size=(1, 3, 416, 416)).astype(np.float32)
    with OnnxRuntimeRunner(MODEL) as ort_runner:
        expected = ort_runner.infer({"input_1:0": x})
    got = fp32_runner.infer({"input_1:0": x})
    for name, value in expected.items():
        assert np.abs(got[name] - value).max() < 1e-3


def test_two_slots_keep_two_batches_in_flight(fp32_runner):
    x = [np.full((1, 3, 416, 416), v, np.float32) for v in (0.0, 1.0)]
    fp32_runner.submit({"input_1:0": x[0]})
    fp32_runner.submit({"input_1:0": x[1]})
    a, b = fp32_runner.collect(), fp32_runner.collect()
    assert a.keys() == b.keys() and any(not np.array_equal(a[k], b[k]) for k in a)


def test_a_thousand_create_destroy_cycles_do_not_leak(fp32_runner):
    from streamtrt.engine import cuda
    from streamtrt.engine.tensorrt.runner import TensorRTRunner

    rt = cuda.cudart()

    def free_bytes():
        return cuda.check(rt.cudaMemGetInfo(), "cudaMemGetInfo")[0]

    def cycle():
        r = TensorRTRunner(fp32_runner.trt, fp32_runner.plan, 0, 2)
        r.activate()
        r.infer({"input_1:0": np.zeros((1, 3, 416, 416), np.float32)})
        r.deactivate()

    for _ in range(10):  # let allocator pools settle
        cycle()
    before = free_bytes()
    for _ in range(1000):
        cycle()
    assert before - free_bytes() < 16 << 20
