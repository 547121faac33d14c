"""The plan is resolved once, in steps that return new frozen values: choices, then budget and engine
settings, then the postprocessor once the model's decoder is known."""

import dataclasses
from types import SimpleNamespace

import pytest

from streamtrt.config import load_config
from streamtrt.errors import ConfigError
from streamtrt.postprocess.decoders.nanodet import NanoDetDecoder
from streamtrt.preprocess.spec import PreprocessSpec
from streamtrt.runtime.plan import Plan, resolve_plan, settle_postprocessor
from streamtrt.runtime.threads import plan_threads
from streamtrt.sources import parse_source_uri


def test_a_plan_is_frozen():
    plan = Plan("cpu", "opencv", "onnxruntime-cpu", ("decoder cpu: no CUDA device",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.runner = "tensorrt"
    assert plan.as_dict() == {"decoder": "cpu", "preprocessor": "opencv", "runner": "onnxruntime-cpu"}
    assert plan.format() == "decoder: cpu\npreprocessor: opencv\nrunner: onnxruntime-cpu\n  - decoder cpu: no CUDA device"


def test_each_stream_gets_its_decoder_from_the_plan(tmp_path):
    plan = Plan("dali-gpu", "dali-gpu", "onnxruntime-cuda", live_decoder="nvdec", has_live=True)
    assert plan.decoder_for(parse_source_uri("clip.mp4")) == "dali-gpu"
    assert plan.decoder_for(parse_source_uri("rtsp://127.0.0.1:8554/cam")) == "nvdec"
    assert parse_source_uri(str(tmp_path)).kind == "images"
    assert plan.decoder_for(parse_source_uri(str(tmp_path))) == "cpu"
    cpu_live = dataclasses.replace(plan, live_decoder="cpu")
    assert cpu_live.decoder_for(parse_source_uri("rtsp://127.0.0.1:8554/cam")) == "cpu"


def test_the_gpu_postprocessor_falls_back_for_formats_it_cannot_decode():
    gpu = Plan("cpu", "opencv", "onnxruntime-cuda", ("runner onnxruntime-cuda: ...",), postprocessor="gpu")
    yolo = SimpleNamespace(name="yolov8")
    settled = settle_postprocessor(gpu, yolo, "auto")
    assert settled.postprocessor == "cpu" and "postprocessor" not in settled.as_dict()
    assert settled.reasons[-1] == "postprocessor cpu: no GPU decoder for yolov8 outputs"
    assert gpu.postprocessor == "gpu"  # the plan it was given is unchanged
    with pytest.raises(ConfigError, match="runtime.postprocessor gpu supports NanoDet outputs; this model's are yolov8"):
        settle_postprocessor(gpu, yolo, "gpu")
    nanodet = NanoDetDecoder.__new__(NanoDetDecoder)  # only its type matters here
    assert settle_postprocessor(gpu, nanodet, "gpu") is gpu


def test_engine_configs_turn_cuda_graphs_off_beside_nvdec_and_split_cpu_threads(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"0" * 1000)
    cfg = load_config({"sources": ["rtsp://127.0.0.1:8554/a", "b.mp4"], "model": {"path": str(model)},
                       "runtime": {"engines": 2}})
    spec = PreprocessSpec(64, 64)
    live = Plan("cpu", "opencv", "onnxruntime-cuda", live_decoder="nvdec", has_live=True,
                thread_plan=plan_threads("onnxruntime-cuda", "cpu", "opencv", cores=2))
    plan, effective = resolve_plan(cfg, live, frame_sizes=[(480, 640)], spec=spec, keep_images=False)
    assert [e.cuda_graph for e in plan.engine_settings] == [False, False]
    assert plan.engines == ("engine 0", "engine 1")
    assert "cuda graph off: live streams decode on NVDEC beside the runner" in plan.reasons
    assert effective.runtime.cuda_graph == "auto"  # the job's config keeps its setting; each engine's is off
    cpu = Plan("cpu", "opencv", "onnxruntime-cpu", thread_plan=plan_threads("onnxruntime-cpu", "cpu", "opencv",
                                                                            engines=2, cores=4))
    plan, _ = resolve_plan(cfg, cpu, frame_sizes=[(480, 640)], spec=spec, keep_images=False)
    # 4 cores, 2 engines: 2 cores each, 2 runs side by side with 1 intra-op thread (runtime/threads.py)
    assert [e.threads for e in plan.engine_settings] == [1, 1]
    assert [e.cuda_graph for e in plan.engine_settings] == ["auto", "auto"]
    assert {e.calibration_spec for e in plan.engine_settings} == {spec}  # INT8 calibration preprocesses as inference
