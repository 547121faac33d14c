"""Everything of the TensorRT workflow that does not execute an engine, on any machine.

TensorRT itself is replaced by a small stand-in module where a test needs its enums or its
parser's error objects; the cache, keys, profiles, calibration batches and CLI are real."""

import json
import multiprocessing
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from streamtrt.config import ProfileConfig, load_config
from streamtrt.engine.tensorrt import EngineCache, EngineKey, builder_flags, compute_profiles, hash_model
from streamtrt.engine.tensorrt.builder import BuildOptions, compute_profiles, is_explicitly_quantized, parse_onnx
from streamtrt.engine.tensorrt.cache import atomic_write
from streamtrt.calibration_data import calibration_batches
from streamtrt.errors import BackendUnavailableError, ConfigError, ModelError
from streamtrt.system import probe_cuda, tensorrt_module
from streamtrt.preprocess.opencv import OpenCVPreprocessor
from streamtrt.preprocess.spec import PreprocessSpec
from tests.conftest import MODEL, NANODET_INPUT, decode_frames
from tests.test_cli import assert_one_line_error, streamtrt

KEY = EngineKey(model_sha256="a" * 64, tensorrt="tensorrt 10.13.0", device="NVIDIA H100 sm9.0 132SM",
                precision="fp16", profiles=(("images", (1, 3, 64, 64), (4, 3, 64, 64), (8, 3, 64, 64)),))


def fake_trt(typed_only=False):
    flags = ["GPU_FALLBACK", "TF32"] if typed_only else ["FP16", "INT8", "GPU_FALLBACK", "TF32"]
    return SimpleNamespace(__name__="tensorrt_rtx_bindings" if typed_only else "tensorrt", __version__="x",
                           BuilderFlag=SimpleNamespace(**{f: f for f in flags}))


# -- keys ---------------------------------------------------------------------------------------
def test_key_digest_is_stable_and_covers_every_field():
    assert KEY.digest == EngineKey(**{**KEY.__dict__}).digest
    variants = [
        dict(model_sha256="b" * 64), dict(tensorrt="tensorrt 10.14.0"), dict(device="NVIDIA A100 sm8.0 108SM"),
        dict(device="DLA0 on Orin sm8.7 16SM with GPU fallback"), dict(precision="int8"), dict(profiles=()),
        dict(workspace_mb=512), dict(calibration_sha256="c" * 64), dict(plugins_sha256=("d" * 64,)),
        dict(options=(("gpu_fallback", "False"),)),
    ]
    digests = {EngineKey(**{**KEY.__dict__, **v}).digest for v in variants}
    assert len(digests) == len(variants) and KEY.digest not in digests


def test_key_differences_name_what_changed():
    other = EngineKey(**{**KEY.__dict__, "tensorrt": "tensorrt 10.3.0", "device": "NVIDIA A100 sm8.0 108SM"})
    diff = KEY.differences(other.as_dict())
    assert "tensorrt tensorrt 10.3.0 -> tensorrt 10.13.0" in diff
    assert "device NVIDIA A100 sm8.0 108SM -> NVIDIA H100 sm9.0 132SM" in diff
    assert KEY.differences({**KEY.as_dict(), "model_sha256": "z"}) == ["model changed"]


# -- model hash ---------------------------------------------------------------------------------
def test_model_hash_is_the_file_sha256_without_external_data():
    import hashlib

    assert hash_model(MODEL) == hashlib.sha256(MODEL.read_bytes()).hexdigest()


def _external_model(tmp_path: Path, value: float) -> Path:
    weight = numpy_helper.from_array(np.full((256, 256), value, np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])], [weight])
    path = tmp_path / "ext.onnx"
    onnx.save(helper.make_model(graph), str(path), save_as_external_data=True, location="ext.bin",
              size_threshold=0)
    return path


def test_model_hash_covers_external_data(tmp_path):
    a = hash_model(_external_model(tmp_path, 1.0))
    b = hash_model(_external_model(tmp_path, 2.0))  # same .onnx bytes, other weights file
    assert a != b
    (tmp_path / "ext.bin").unlink()
    with pytest.raises(ModelError, match="external data file not found: ext.bin"):
        hash_model(tmp_path / "ext.onnx")


# -- cache --------------------------------------------------------------------------------------
def test_cache_roundtrip_and_sidecar(tmp_path):
    cache = EngineCache(tmp_path)
    assert cache.load(KEY, "model.onnx") is None
    entry = cache.store(KEY, "model.onnx", b"plan-bytes")
    assert entry.engine.name == f"model-{KEY.digest}.engine"
    assert cache.load(KEY, "model.onnx") == b"plan-bytes"
    meta = json.loads(entry.meta.read_text())
    assert meta["key"] == KEY.as_dict() and meta["size"] == 10
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]  # no temp files left


def test_engine_for_another_gpu_or_version_is_a_miss_with_a_reason(tmp_path):
    cache = EngineCache(tmp_path)
    cache.store(KEY, "model.onnx", b"old")
    newer = EngineKey(**{**KEY.__dict__, "tensorrt": "tensorrt 10.14.0"})
    assert cache.load(newer, "model.onnx") is None
    assert cache.explain_miss(newer, "model.onnx") == "tensorrt tensorrt 10.13.0 -> tensorrt 10.14.0"
    other_gpu = EngineKey(**{**KEY.__dict__, "device": "NVIDIA L4 sm8.9 58SM"})
    assert "device NVIDIA H100 sm9.0 132SM -> NVIDIA L4 sm8.9 58SM" in cache.explain_miss(other_gpu, "model.onnx")
    assert cache.explain_miss(KEY, "unrelated.onnx") is None


def test_tampered_sidecar_is_a_miss(tmp_path):
    cache = EngineCache(tmp_path)
    entry = cache.store(KEY, "model.onnx", b"plan")
    meta = json.loads(entry.meta.read_text())
    meta["key"]["precision"] = "fp32"
    entry.meta.write_text(json.dumps(meta))
    assert cache.load(KEY, "model.onnx") is None


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        atomic_write(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def _hold_lock(root, ready, release):
    with EngineCache(Path(root)).lock(KEY):
        ready.set()
        release.wait(120)


def test_lock_makes_a_second_process_wait(tmp_path):
    """The second taker gets the lock only once the holder lets go, however slow the machine."""
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        got = threading.Event()

        def take():
            with EngineCache(tmp_path).lock(KEY):
                got.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert not got.wait(1.0)  # held by the other process: waiting
        release.set()
        assert got.wait(60)  # and taken as soon as it is free
    finally:
        release.set()
        holder.join(30)


# -- profiles and flags -------------------------------------------------------------------------
def test_profiles():
    fixed = [("images", (1, 3, 416, 416))]
    assert compute_profiles(fixed, ProfileConfig(), 4) == []
    dyn = [("images", (None, 3, 416, 416))]
    (p,) = compute_profiles(dyn, ProfileConfig(), 4)
    assert (p.min, p.opt, p.max) == ((1, 3, 416, 416), (4, 3, 416, 416), (4, 3, 416, 416))
    (p,) = compute_profiles(dyn, ProfileConfig(min_batch=2, opt_batch=8, max_batch=16), 4)
    assert (p.min[0], p.opt[0], p.max[0]) == (2, 8, 16)
    (p,) = compute_profiles([("images", (None, 3, None, None))], ProfileConfig(), 2, input_size=(384, 640))
    assert p.opt == (2, 3, 384, 640)
    with pytest.raises(ConfigError, match="set model.input.size"):
        compute_profiles([("images", (None, 3, None, None))], ProfileConfig(), 2)
    with pytest.raises(ConfigError, match="min_batch <= opt_batch <= max_batch"):
        compute_profiles(dyn, ProfileConfig(min_batch=8, opt_batch=4, max_batch=16), 4)
    with pytest.raises(ConfigError, match="exceeds tensorrt.profile.max_batch"):
        compute_profiles(dyn, ProfileConfig(max_batch=2, opt_batch=2), 4)


@pytest.mark.parametrize("precision, dla, explicit, expected", [
    ("fp32", None, False, []),
    ("fp16", None, False, ["FP16"]),
    ("int8", None, False, ["INT8", "FP16"]),
    ("int8", None, True, ["INT8", "FP16"]),
    ("fp16", 0, False, ["FP16", "GPU_FALLBACK"]),
])
def test_builder_flags_for_full_tensorrt(precision, dla, explicit, expected):
    opts = BuildOptions(precision=precision, dla_core=dla, explicitly_quantized=explicit)
    assert builder_flags(opts, fake_trt()) == expected


def test_dla_without_fallback():
    assert builder_flags(BuildOptions(precision="fp16", dla_core=1, gpu_fallback=False), fake_trt()) == ["FP16"]


def test_strongly_typed_tensorrt_rtx():
    rtx = fake_trt(typed_only=True)
    assert builder_flags(BuildOptions(precision="fp32"), rtx) == []
    assert builder_flags(BuildOptions(precision="int8", explicitly_quantized=True), rtx) == []
    assert builder_flags(BuildOptions(precision="fp16", convert_fp16=True), rtx) == []
    with pytest.raises(BackendUnavailableError, match="strongly typed"):
        builder_flags(BuildOptions(precision="fp16"), rtx)
    with pytest.raises(BackendUnavailableError, match="explicitly quantized"):
        builder_flags(BuildOptions(precision="int8"), rtx)


def test_parse_errors_name_each_node():
    class Err:
        def __init__(self, node, name, op, desc):
            self.node, self.node_name, self.node_operator, self.desc = (lambda: node), (lambda: name), (lambda: op), (lambda: desc)

    class Parser:
        num_errors = 2

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            return False

        def get_error(self, i):
            return [Err(3, "conv1", "Conv", "weights are not constant"), Err(-1, "", "", "unsupported opset")][i]

    with pytest.raises(ModelError) as info:
        parse_onnx(SimpleNamespace(OnnxParser=Parser), None, None, Path("m.onnx"))
    msg = str(info.value)
    assert "node 3 (Conv 'conv1'): weights are not constant" in msg and "model: unsupported opset" in msg


def test_explicit_quantization_is_detected(tmp_path):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
                               numpy_helper.from_array(np.array(0, np.int8), "z")])
    path = tmp_path / "qdq.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert is_explicitly_quantized(path) and not is_explicitly_quantized(MODEL)


def test_fp16_copy_keeps_fp32_io_and_outputs(tmp_path):
    pytest.importorskip("onnxconverter_common")
    import onnxruntime as ort

    from streamtrt.engine.tensorrt.builder import fp16_copy

    path = fp16_copy(MODEL, tmp_path)
    m = onnx.load(str(path))
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert any(i.data_type == TensorProto.FLOAT16 for i in m.graph.initializer)
    x = np.random.default_rng(0).normal(size=(1, 3, 416, 416)).astype(np.float32)
    a = ort.InferenceSession(str(MODEL)).run(None, {"input_1:0": x})
    b = ort.InferenceSession(str(path)).run(None, {"input_1:0": x})
    assert max(float(np.abs(p - q).max()) for p, q in zip(a, b)) < 1e-2


# -- calibration --------------------------------------------------------------------------------
def test_calibration_batches_use_the_inference_preprocessing(short_clip):
    spec = PreprocessSpec(416, 416, mean=tuple(NANODET_INPUT["mean"]), std=tuple(NANODET_INPUT["std"]))
    batches = list(calibration_batches(str(short_clip), spec, batch_size=5, frames=12))
    assert [b.shape for b in batches] == [(5, 3, 416, 416)] * 2  # the partial third batch is dropped
    expected, _ = OpenCVPreprocessor(spec)(decode_frames(short_clip, 10))
    assert np.allclose(np.concatenate(batches), expected)
    assert len(list(calibration_batches(str(short_clip), spec, batch_size=4, frames=8))) == 2
    with pytest.raises(ConfigError, match="at least batch_size"):
        list(calibration_batches(str(short_clip), spec, batch_size=8, frames=4))


# -- config and CLI -----------------------------------------------------------------------------
def test_tensorrt_config_defaults_and_paths(tmp_path):
    cfg_file = tmp_path / "job.yaml"
    cfg_file.write_text("source: a.mp4\nmodel: {path: m.onnx}\n"
                        "tensorrt: {plugins: [libmy.so], calibration: {source: calib/}, cache_dir: engines}\n")
    cfg = load_config(cfg_file)
    assert cfg.tensorrt.precision == "fp16" and cfg.tensorrt.gpu_fallback and cfg.runtime.cuda_graph == "auto"
    assert cfg.tensorrt.plugins == [tmp_path / "libmy.so"]
    assert cfg.tensorrt.calibration.source == str(tmp_path / "calib")
    assert cfg.tensorrt.cache_dir == tmp_path / "engines"
    with pytest.raises(ConfigError, match="unknown key 'tensorrt.precison'"):
        load_config(cfg_file, ["tensorrt.precison=int8"])


@pytest.mark.skipif(tensorrt_module() is not None and probe_cuda().available, reason="TensorRT and a GPU are here")
def test_tensorrt_runner_without_tensorrt_or_gpu_is_refused_clearly():
    from streamtrt.runtime import make_plan
    from streamtrt.config import RuntimeConfig

    with pytest.raises(BackendUnavailableError, match="runtime.runner tensorrt"):
        make_plan(RuntimeConfig(runner="tensorrt"))


@pytest.mark.skipif(tensorrt_module() is not None, reason="TensorRT is installed here")
def test_cli_build_without_tensorrt_is_one_line(tmp_path):
    assert_one_line_error(streamtrt("build", MODEL), "TensorRT is not available")


@pytest.mark.slow  # over 5 s on a busy 2-core machine: .ci/run's second command
def test_cli_inspect_model_and_engine(tmp_path):
    proc = streamtrt("inspect", MODEL, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["inputs"] == [{"name": "input_1:0", "shape": [1, 3, 416, 416]}] and len(info["outputs"]) == 6
    entry = EngineCache(tmp_path).store(KEY, "model.onnx", b"not really an engine")
    proc = streamtrt("inspect", entry.engine)
    assert proc.returncode == 0, proc.stderr
    assert KEY.digest in proc.stdout and "precision: fp16" in proc.stdout and "size_bytes: 20" in proc.stdout
    assert_one_line_error(streamtrt("inspect", tmp_path / "missing.engine"), "engine not found")


def test_profiles_of_nhwc_and_metadata_sized_inputs():
    from streamtrt.config import ProfileConfig

    (spec,) = compute_profiles([("input_tensor", (None, None, None, 3))], ProfileConfig(), 2, (256, 416))
    assert spec.min == (1, 256, 416, 3) and spec.max == (2, 256, 416, 3)
    (spec,) = compute_profiles([("images", (None, 3, None, None))], ProfileConfig(), 1, (320, 320))
    assert spec.opt == (1, 3, 320, 320)
