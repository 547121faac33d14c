import numpy as np
import pytest

from streamtrt.config import load_config
from streamtrt.engine import EngineSettings, OnnxRuntimeRunner, create_runner
from streamtrt.errors import BackendUnavailableError, ModelError
from streamtrt.runtime.infer import run_batched
from streamtrt.system import probe_cuda
from tests.conftest import MODEL
from tests.models import constant_model


def test_metadata_is_read_from_the_model():
    with OnnxRuntimeRunner(MODEL) as runner:
        (inp,) = runner.inputs
        assert inp.name == "input_1:0" and inp.shape == (1, 3, 416, 416) and inp.dtype == np.float32
        assert runner.max_batch == 1
        assert sorted(o.shape[1:] for o in runner.outputs) == sorted(
            [(2704, 80), (676, 80), (169, 80), (2704, 44), (676, 44), (169, 44)])
        outs = runner.infer({inp.name: np.zeros((1, 3, 416, 416), np.float32)})
        assert set(outs) == {o.name for o in runner.outputs}


def test_dynamic_batch_model(tmp_path):
    path = constant_model(tmp_path / "m.onnx", {"out": np.arange(12, dtype=np.float32).reshape(2, 6)})
    with OnnxRuntimeRunner(path) as runner:
        assert runner.max_batch is None
        out = runner.infer({"images": np.zeros((3, 3, 64, 64), np.float32)})["out"]
        assert out.shape == (3, 2, 6)


def test_fixed_batch_model_runs_larger_batches_in_chunks():
    with OnnxRuntimeRunner(MODEL) as runner:
        x = np.random.default_rng(0).normal(size=(3, 3, 416, 416)).astype(np.float32)
        together = run_batched(runner, "input_1:0", x)
        for i in range(3):
            alone = runner.infer({"input_1:0": x[i : i + 1]})
            for name in alone:
                assert np.allclose(together[name][i], alone[name][0], atol=1e-5)


def test_missing_model(tmp_path):
    with pytest.raises(ModelError, match="model not found"):
        OnnxRuntimeRunner(tmp_path / "none.onnx").activate()


def test_file_that_is_not_a_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        OnnxRuntimeRunner(bad).activate()


@pytest.mark.skipif(probe_cuda().available, reason="checks the error on machines without a GPU")
def test_cuda_runner_without_gpu_is_refused_clearly():
    with pytest.raises(BackendUnavailableError, match="onnxruntime-cuda"):
        create_runner("onnxruntime-cuda", EngineSettings(MODEL))


def test_unknown_runner():
    with pytest.raises(BackendUnavailableError):
        create_runner("openvino", EngineSettings(MODEL))
