"""A Q/DQ INT8 model from `streamtrt quantize` on ONNX Runtime's CUDA execution provider: it runs
through the GPU pipeline with the same config, and its detections agree with FP32's there."""

import pytest

from streamtrt import Pipeline
from streamtrt.calibration_data import read_calibration_frames
from streamtrt.config import load_config
from streamtrt.engine import cuda_provider_available
from streamtrt.engine.quantize import quantize_model
from streamtrt.postprocess.compare import agreement
from streamtrt.system import probe_cuda
from tests.conftest import MODEL, make_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not probe_cuda().available, reason="no CUDA device on this machine"),
    pytest.mark.skipif(not cuda_provider_available(), reason="onnxruntime-gpu is not installed"),
]


def test_int8_qdq_model_on_onnxruntime_cuda_agrees_with_fp32(short_clip, tmp_path):
    cfg = make_config(short_clip, tmp_path, runtime={"decoder": "auto", "runner": "onnxruntime-cuda"})
    int8 = tmp_path / "int8.onnx"
    quantize_model(load_config(cfg), str(short_clip), int8, frames=12, cache_dir=tmp_path / "calib",
                   read_frames=read_calibration_frames)
    out = {}
    for name, model in (("fp32", MODEL), ("int8", int8)):
        with Pipeline(load_config(cfg, [f"model.path={model}"])) as pipe:
            out[name] = [r.detections for r in pipe]
    a = agreement(out["int8"], out["fp32"], 0.5)
    assert len(out["int8"]) == 12 and a.reference > 50
    assert a.f1 >= 0.85, a.as_dict()  # 0.92 on the CPU EP for the same frames
