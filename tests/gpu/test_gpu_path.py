"""The GPU path: NVDEC decode and preprocessing in DALI, ONNX Runtime CUDA on device buffers.

Runs only where a CUDA device, DALI and onnxruntime-gpu are present (the GPU machine)."""

import json

import numpy as np
import pytest

from streamtrt import Pipeline
from streamtrt.engine import OnnxRuntimeRunner, cuda_provider_available
from streamtrt.preprocess.dali import DaliGpuVideoDecoder, dali_available
from streamtrt.preprocess.opencv import OpenCVPreprocessor
from streamtrt.preprocess.spec import PreprocessSpec
from streamtrt.system import probe_cuda
from tests.conftest import MODEL, NANODET_INPUT, decode_frames, make_config, same_detections, unmatched

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not probe_cuda().available, reason="no CUDA device on this machine"),
    pytest.mark.skipif(not dali_available(), reason="DALI is not installed"),
]
needs_ort_cuda = pytest.mark.skipif(not cuda_provider_available(), reason="onnxruntime-gpu is not installed")

SPEC = PreprocessSpec(416, 416, "stretch", "bgr", tuple(NANODET_INPUT["mean"]), tuple(NANODET_INPUT["std"]))


def test_nvdec_preprocessing_matches_the_cpu_path(short_clip):
    frames = decode_frames(short_clip, 12)
    expected, _ = OpenCVPreprocessor(SPEC)(frames)
    dec = DaliGpuVideoDecoder(str(short_clip), SPEC, batch_size=5, frame_count=12, src_height=576, src_width=768)
    batches = [b.to_host() for b in dec]
    assert [len(b) for b in batches] == [5, 5, 2]
    got = np.concatenate(batches)
    assert got.shape == expected.shape and got.dtype == np.float32
    pixel = np.abs(got - expected) * np.asarray(SPEC.std, np.float32).reshape(1, 3, 1, 1)
    # NVDEC's YUV->RGB conversion (colour matrix, chroma upsampling) differs from FFmpeg's
    # swscale by a couple of 8-bit levels on average (1.7 measured on an H200)
    assert pixel.mean() < 2.5, pixel.mean()


def test_nvdec_keeps_frames_for_sinks(short_clip):
    frames = decode_frames(short_clip, 12)
    dec = DaliGpuVideoDecoder(str(short_clip), SPEC, 4, 12, 576, 768, keep_frames=True)
    kept = np.concatenate([b.frames for b in dec])
    assert kept.shape == (12, 576, 768, 3)
    assert np.abs(kept.astype(int) - np.stack(frames).astype(int)).mean() < 3


@needs_ort_cuda
def test_iobinding_on_device_memory_matches_the_cpu_runner(short_clip):
    dec = DaliGpuVideoDecoder(str(short_clip), SPEC, 1, 12, 576, 768)
    batch = next(iter(dec))
    with OnnxRuntimeRunner(MODEL, "cuda") as gpu, OnnxRuntimeRunner(MODEL, "cpu") as cpu:
        on_device = gpu.infer({"input_1:0": batch})
        on_host = cpu.infer({"input_1:0": batch.to_host()})
    for name in on_host:
        assert np.abs(on_device[name] - on_host[name]).max() < 1e-2


@needs_ort_cuda
@pytest.mark.parametrize("batch", [1, 4])
def test_gpu_pipeline_matches_the_cpu_pipeline(short_clip, tmp_path, batch):
    gpu_cfg = make_config(short_clip, tmp_path, runtime={"decoder": "dali-gpu", "runner": "onnxruntime-cuda",
                                                         "batch_size": batch})
    cpu_cfg = make_config(short_clip, tmp_path, runtime={"decoder": "cpu", "runner": "onnxruntime-cpu"})
    with Pipeline.from_config(gpu_cfg) as pipe:
        assert pipe.plan.decoder == "dali-gpu" and pipe.plan.runner == "onnxruntime-cuda"
        gpu = [(r.frame_index, r.detections.to_records()) for r in pipe]
    with Pipeline.from_config(cpu_cfg) as pipe:
        cpu = [(r.frame_index, r.detections.to_records()) for r in pipe]
    assert [i for i, _ in gpu] == [i for i, _ in cpu] == list(range(12))
    clear = sum(sum(d["score"] >= 0.4 for d in c) for _, c in cpu)
    missing = sum(len(unmatched(c, g, 0.35, margin=0.05, iou=0.8)) for (_, g), (_, c) in zip(gpu, cpu))
    assert missing <= max(1, clear // 20), (missing, clear)


@needs_ort_cuda
def test_auto_plan_picks_the_gpu_and_writes_sinks(short_clip, tmp_path):
    out, video = tmp_path / "d.jsonl", tmp_path / "a.mp4"
    cfg = make_config(short_clip, tmp_path, sinks=[f"jsonl:{out}", f"video:{video}"],
                      runtime={"decoder": "auto", "runner": "auto", "batch_size": 3})
    with Pipeline.from_config(cfg) as pipe:
        # batch 3 < GPU_POSTPROCESS_MIN_BATCH: decode+NMS stay on the CPU (runtime/plan.py says why)
        assert pipe.plan.as_dict() == {"decoder": "dali-gpu", "preprocessor": "dali-gpu", "runner": "onnxruntime-cuda"}
        assert pipe.plan.postprocessor == "cpu"
        summary = pipe.run()
    assert summary.frames == 12 and summary.bad_frames == 0
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert [l["frame_index"] for l in lines] == list(range(12))
    assert lines[1]["timestamp"] == pytest.approx(0.1)
    import av

    with av.open(str(video)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 12


@needs_ort_cuda
def test_cuda_graph_replay_matches_plain_runs(short_clip):
    dec = DaliGpuVideoDecoder(str(short_clip), SPEC, 1, 12, 576, 768)
    batches = iter(dec)
    first = next(batches)
    with OnnxRuntimeRunner(MODEL, "cuda") as plain, OnnxRuntimeRunner(MODEL, "cuda", cuda_graph=True) as graph:
        for batch in (first, next(batches)):  # the first run captures, the second replays
            a = plain.infer({"input_1:0": batch})
            b = graph.infer({"input_1:0": batch})
            for name in a:
                assert np.abs(a[name] - b[name]).max() < 1e-3
        host = next(batches).to_host()
        a, b = plain.infer({"input_1:0": host}), graph.infer({"input_1:0": host})
        assert all(np.abs(a[k] - b[k]).max() < 1e-3 for k in a)


@needs_ort_cuda
def test_tracking_counts_agree_between_cpu_and_gpu_paths(tmp_path):
    from streamtrt.config import load_config
    from tests.conftest import ROOT

    def counts(decoder, runner):
        cfg = load_config(ROOT / "configs" / "sample-tracking.yaml",
                          ["runtime.max_frames=300", "sinks=[]", f"runtime.decoder={decoder}", f"runtime.runner={runner}"])
        with Pipeline(cfg) as pipe:
            summary = pipe.run()
        line = summary.analytics["0"]["lines"]["crossing"]
        zone = summary.analytics["0"]["zones"]["plaza"]
        return sum(line["in"].values()), sum(line["out"].values()), zone["enters"]

    cpu, gpu = counts("cpu", "onnxruntime-cpu"), counts("dali-gpu", "onnxruntime-cuda")
    print("CPU path (in, out, zone enters):", cpu, "GPU path:", gpu)
    # NVDEC's colour conversion shifts scores slightly; counts may move by one, not more
    assert all(abs(a - b) <= 1 for a, b in zip(cpu, gpu)), (cpu, gpu)


def _same(a, b) -> bool:
    return same_detections(a, b, box_atol=0.05, score_atol=1e-3)


@needs_ort_cuda
def test_gpu_postprocessing_matches_the_cpu_postprocessing(short_clip, tmp_path):
    """Same decoder and model; decode+NMS in CuPy vs numpy: the same detections."""
    runs = {}
    for post in ("gpu", "cpu"):
        cfg = make_config(short_clip, tmp_path, runtime={"decoder": "dali-gpu", "runner": "onnxruntime-cuda",
                                                         "postprocessor": post, "batch_size": 4},
                          postprocess={"score_threshold": 0.2})
        with Pipeline.from_config(cfg) as pipe:
            assert pipe.plan.postprocessor == post
            runs[post] = [r.detections for r in pipe]
    assert len(runs["gpu"]) == len(runs["cpu"]) == 12
    assert sum(len(d) for d in runs["cpu"]) > 12
    assert all(_same(g, c) for g, c in zip(runs["gpu"], runs["cpu"]))


@needs_ort_cuda
def test_device_outputs_match_host_outputs(short_clip):
    import cupy

    from streamtrt.postprocess.device import as_cupy

    dec = DaliGpuVideoDecoder(str(short_clip), SPEC, 1, 12, 576, 768)
    batch = next(iter(dec))
    with OnnxRuntimeRunner(MODEL, "cuda") as runner:
        host = runner.infer({"input_1:0": batch})
        dtypes = {o.name: o.dtype for o in runner.outputs}
        device = {k: cupy.asnumpy(as_cupy(v, dtypes[k])) for k, v in runner.infer_on_device({"input_1:0": batch}).items()}
    assert host.keys() == device.keys()
    assert all(np.abs(host[k] - device[k]).max() < 1e-4 for k in host)


@needs_ort_cuda
def test_many_gpu_streams_match_single_stream_runs(tmp_path):
    """NVDEC per stream, frames of 3 streams gathered on the device into shared batches."""
    from tests.conftest import SAMPLES, VIDEO, write_video

    frames = decode_frames(VIDEO, 40)
    clips = {"a": (write_video(tmp_path / "a.mp4", frames[:12], "libx264"), 12),
             "b": (write_video(tmp_path / "b.mp4", frames[20:27], "libx264"), 7),
             "c": (write_video(tmp_path / "c.mp4", frames[27:37], "libx264"), 10)}
    cfg = make_config(clips["a"][0], tmp_path, runtime={"decoder": "dali-gpu", "runner": "onnxruntime-cuda",
                                                        "batch_size": 6, "stream_batch": 4})
    del cfg["source"]
    cfg["sources"] = [{"uri": str(p), "id": k} for k, (p, _) in clips.items()]
    cfg["model"]["path"] = str(SAMPLES / "nanodet-m-416-dynamic.onnx")
    with Pipeline.from_config(cfg) as pipe:
        got: dict = {}
        for r in pipe:
            got.setdefault(r.stream_id, []).append(r)
        stages = pipe.summary.stages
    assert {k: [r.frame_index for r in v] for k, v in got.items()} == {k: list(range(n)) for k, (_, n) in clips.items()}
    assert "batch" in stages  # chunks of 4 were gathered into batches of 6 on the device
    for sid, (path, n) in clips.items():
        single = make_config(path, tmp_path, runtime={"decoder": "dali-gpu", "runner": "onnxruntime-cuda"})
        with Pipeline.from_config(single) as pipe:
            alone = [r.detections for r in pipe]
        assert all(_same(m.detections, a) for m, a in zip(got[sid], alone)), sid


def test_mapped_host_memory_is_read_and_written_by_the_device():
    """The zero-copy buffers the TensorRT runner uses on Jetson, on a real GPU (a discrete one
    reaches them over PCIe): host writes seen by the device, device writes seen by the host."""
    from streamtrt.engine import cuda

    cuda.set_device(0)
    src, dst = cuda.MappedBuffer((4, 8), np.float32), cuda.MappedBuffer((4, 8), np.float32)
    mid = cuda.DeviceBuffer(src.nbytes)
    stream = cuda.Stream()
    try:
        src.array[...] = np.arange(32, dtype=np.float32).reshape(4, 8)
        cuda.copy_async(mid.ptr, src.ptr, src.nbytes, "d2d", stream)
        cuda.copy_async(dst.ptr, mid.ptr, src.nbytes, "d2d", stream)
        stream.synchronize()
        np.testing.assert_array_equal(dst.array, src.array)
        from streamtrt.system import is_jetson

        assert cuda.is_integrated(0) is is_jetson()  # only Jetson's GPU shares the CPU's memory
    finally:
        for b in (src, dst, mid):
            b.free()
        stream.destroy()


@pytest.mark.parametrize("spec", [
    PreprocessSpec(320, 320, "letterbox", "rgb", (0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),  # Ultralytics
    PreprocessSpec(320, 320, "stretch", "rgb", dtype="uint8", layout="nhwc"),  # TensorFlow OD
], ids=["ultralytics", "tf-nhwc-uint8"])
def test_nvdec_preprocessing_of_model_derived_specs_matches_the_cpu_path(short_clip, spec):
    frames = decode_frames(short_clip, 4)
    expected, _ = OpenCVPreprocessor(spec)(frames)
    dec = DaliGpuVideoDecoder(str(short_clip), spec, batch_size=4, frame_count=4, src_height=576, src_width=768)
    got = np.concatenate([b.to_host() for b in dec])
    assert got.shape == expected.shape and got.dtype == expected.dtype
    scale = 1.0 if spec.dtype == "uint8" else 255.0
    assert (np.abs(got.astype(np.float32) - expected.astype(np.float32)) * scale).mean() < 2.5


@needs_ort_cuda
def test_model_without_config_runs_on_the_gpu_path(short_clip, tmp_path):
    """`run --model` for an Ultralytics export and the TF OD layout, on NVDEC + DALI GPU + ORT CUDA."""
    from tests.conftest import ROOT

    for name in ("yolov8n-256x416.onnx", "tfod-yolo26n-320.onnx"):
        cfg = {"source": str(short_clip), "model": {"path": str(ROOT / "tests" / "data" / "models" / name)}, "sinks": []}
        with Pipeline.from_config(cfg) as pipe:
            assert pipe.plan.decoder == "dali-gpu"
            results = list(pipe)
        assert len(results) == 12 and sum(len(r.detections) for r in results) > 0
