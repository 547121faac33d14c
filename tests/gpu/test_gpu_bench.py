"""`streamtrt bench` on the GPU measures the postprocessor `run` uses: with CuPy, decode + NMS on
the device (it crashed with KeyError 'final_boxes' when fed raw outputs)."""

import json

import pytest

from streamtrt.engine import cuda_provider_available
from streamtrt.postprocess.device import cupy_available
from streamtrt.preprocess.dali import dali_available
from streamtrt.system import probe_cuda
from tests.conftest import SAMPLE_CONFIG
from tests.test_cli import streamtrt

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not probe_cuda().available, reason="no CUDA device on this machine"),
    pytest.mark.skipif(not dali_available(), reason="DALI is not installed"),
    pytest.mark.skipif(not cuda_provider_available(), reason="onnxruntime-gpu is not installed"),
    pytest.mark.skipif(not cupy_available(), reason="CuPy is not installed"),
]


@pytest.mark.parametrize("post", ["gpu", "cpu"])
def test_bench_runs_with_the_postprocessor_of_run(tmp_path, short_clip, post):
    out = tmp_path / "b.json"
    proc = streamtrt("bench", SAMPLE_CONFIG, "--source", short_clip, "--frames", "12", "--repeat", "1",
                     "--set", f"runtime.postprocessor={post}", "--json", out)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    assert r["plan"].get("postprocessor", "cpu") == post
    assert ("GPU" in r["stages"]["postprocess"]["name"]) == (post == "gpu")
    assert r["pipeline"]["frames"] == 12 and r["naive"]["frames"] == 12
