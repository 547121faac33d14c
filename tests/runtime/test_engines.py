"""Several engines in one pipeline (one per Jetson DLA core, or ``runtime.engines``): each
stream stays on one engine, every frame arrives in order, results equal a one-engine run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from streamtrt import Pipeline
from streamtrt.config import load_config
from streamtrt.engine import create_runner
from streamtrt.engine.tensorrt.runner import TensorRTRunner
from streamtrt.errors import ConfigError, ModelError
from streamtrt.runtime import components as components_module
from streamtrt.runtime import plan as plan_module
from streamtrt.runtime.budget import plan_budget
from streamtrt.runtime.plan import Plan
from tests.conftest import same_detections
from tests.runtime.test_multistream import by_stream, clips, multi_config  # noqa: F401 - fixture


def run(cfg):
    with Pipeline.from_config(cfg) as pipe:
        results = by_stream(list(pipe))
        return results, pipe.summary


def test_two_engines_split_the_streams_and_match_one_engine(clips, tmp_path):  # noqa: F811
    single, _ = run(multi_config(clips, tmp_path))
    cfg = multi_config(clips, tmp_path, engines=2)
    cfg["sinks"] = [f"summary:{tmp_path / 'summary.json'}"]
    results, summary = run(cfg)
    assert {k: len(v) for k, v in results.items()} == {k: n for k, (_, n) in clips.items()}
    for sid, rs in results.items():
        assert [r.frame_index for r in rs] == list(range(clips[sid][1]))
        assert all(same_detections(a.detections, b.detections) for a, b in zip(rs, single[sid]))
    # fewest streams first: a -> 0, b -> 1, c -> 0; each engine ran its own streams' frames
    assert {sid: s["engine"] for sid, s in summary.streams.items()} == {"a": 0, "b": 1, "c": 0}
    assert [(e["label"], e["streams"], e["frames"]) for e in summary.engines] == [
        ("engine 0", ["a", "c"], 12 + 10), ("engine 1", ["b"], 7)]
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["plan"]["engines"] == ["engine 0", "engine 1"]
    assert [e["frames"] for e in written["engines"]] == [22, 7]


def test_a_source_can_name_its_engine(clips, tmp_path):  # noqa: F811
    cfg = multi_config(clips, tmp_path, engines=2)
    for s in cfg["sources"]:
        s["engine"] = 1
    results, summary = run(cfg)
    assert sum(len(v) for v in results.values()) == 29
    assert [(e["streams"], e["frames"]) for e in summary.engines] == [([], 0), (["a", "b", "c"], 29)]


def test_engine_index_out_of_range_is_a_config_error(clips, tmp_path):  # noqa: F811
    cfg = multi_config(clips, tmp_path, engines=2)
    cfg["sources"][2]["engine"] = 2
    with pytest.raises(ConfigError, match=r"sources\.2\.engine: 2 is not one of the 2 engine"):
        Pipeline.from_config(cfg)


def test_a_stream_added_while_running_joins_the_least_busy_engine(clips, tmp_path):  # noqa: F811
    cfg = multi_config(clips, tmp_path, engines=2)
    cfg["sources"] = [{**cfg["sources"][0], "pace": True}]  # still running when b comes
    with Pipeline.from_config(cfg, keep_alive=True) as pipe:
        got = []
        for r in pipe:
            got.append(r)
            if len(got) == 1:
                pipe.add_source({"uri": str(clips["b"][0]), "id": "b"})
                with pytest.raises(ConfigError, match="engine: 5 is not one of the 2"):
                    pipe.add_source({"uri": str(clips["c"][0]), "id": "c", "engine": 5})
            if len(got) == 12 + 7:
                pipe.stop()
        status = {s["id"]: s for s in pipe.stream_status()}
    assert status["a"]["engine"] == 0 and status["b"]["engine"] == 1
    assert "c" not in status
    assert len(by_stream(got)["b"]) == 7


def test_dla_core_list_gives_one_engine_per_core(monkeypatch, clips, tmp_path):  # noqa: F811
    """The pipeline's wiring for two DLA engines, with the TensorRT runner stood in for by ONNX
    Runtime on the CPU (no DLA here): each engine gets its own core's config and its streams."""
    made = []

    def fake_create_runner(name, settings, **kw):
        made.append((name, settings.dla_core))
        return create_runner("onnxruntime-cpu", settings, **kw)

    monkeypatch.setattr(components_module, "create_runner", fake_create_runner)
    monkeypatch.setattr(plan_module, "make_plan", lambda rt, uris, live="auto", machine=None:
                        Plan("cpu", "opencv", "tensorrt"))
    cfg = multi_config(clips, tmp_path)
    cfg["sources"] = cfg["sources"][:2]
    cfg["tensorrt"] = {"dla_core": [0, 1], "precision": "fp16"}
    results, summary = run(cfg)
    assert made == [("tensorrt", 0), ("tensorrt", 1)]
    assert [(e["label"], e["streams"]) for e in summary.engines] == [("DLA0", ["a"]), ("DLA1", ["b"])]
    assert {k: len(v) for k, v in results.items()} == {"a": 12, "b": 7}


def test_dla_core_list_config():
    base = {"sources": ["a.mp4", "b.mp4"], "model": {"path": "m.onnx"}}
    cfg = load_config({**base, "tensorrt": {"dla_core": [1, 0]}})
    assert cfg.engine_count() == 2
    assert [c.tensorrt.dla_core for c in cfg.engine_configs()] == [1, 0]
    assert load_config({**base, "tensorrt": {"dla_core": 1}}).engine_count() == 1
    assert load_config({**base, "tensorrt": {"dla_core": [0, 1]}, "runtime": {"engines": 2}}).engine_count() == 2
    for bad, match in [({"tensorrt": {"dla_core": [0, 0]}}, "each core once"),
                       ({"tensorrt": {"dla_core": []}}, "each core once"),
                       ({"tensorrt": {"dla_core": [0, -1]}}, "numbered from 0"),
                       ({"tensorrt": {"dla_core": [0, 1]}, "runtime": {"engines": 3}}, "does not match the 2 cores")]:
        with pytest.raises(ConfigError, match=match):
            load_config({**base, **bad})


def test_engine_key_needs_one_core():
    from streamtrt.engine import EngineSettings

    cfg = load_config({"source": "a.mp4", "model": {"path": "m.onnx"}, "tensorrt": {"dla_core": [0, 1]}})
    with pytest.raises(ConfigError, match="engine_configs"):
        EngineSettings.from_config(cfg)


def test_tensorrt_runner_runs_on_the_dla_core_it_is_given(monkeypatch):
    """TensorRT runs a DLA engine on the core the runtime names (default: core 0), so the second
    engine must set it before deserializing."""
    from streamtrt.engine import cuda

    seen = {}

    class FakeRuntime:
        def __init__(self, logger):
            self.DLA_core = -1

        def deserialize_cuda_engine(self, plan):
            seen["core"] = self.DLA_core
            return None

    trt = SimpleNamespace(Logger=lambda level: None, Runtime=FakeRuntime)
    trt.Logger.WARNING = 2
    monkeypatch.setattr(cuda, "set_device", lambda device_id: None)
    with pytest.raises(ModelError):
        TensorRTRunner(trt, b"plan", dla_core=1, zero_copy=False).activate()
    assert seen["core"] == 1
    with pytest.raises(ModelError):
        TensorRTRunner(trt, b"plan", zero_copy=False).activate()
    assert seen["core"] == -1


def test_budget_counts_each_engine():
    one = plan_budget(1024, frame_hw=(720, 1280), input_chw=(3, 416, 416), itemsize=2, batch=1, slots=2,
                      keep_images=False, model_bytes=8 << 20, workspace_mb=128)
    two = plan_budget(1024, frame_hw=(720, 1280), input_chw=(3, 416, 416), itemsize=2, batch=1, slots=2,
                      keep_images=False, model_bytes=8 << 20, workspace_mb=128, engines=2)
    assert two.total_mb == pytest.approx(2 * one.total_mb)
    with pytest.raises(ConfigError, match="TensorRT workspace x 2 engines 512 MB"):
        plan_budget(530, frame_hw=(720, 1280), input_chw=(3, 416, 416), itemsize=2, batch=1, slots=2,
                    keep_images=False, model_bytes=8 << 20, workspace_mb=256, engines=2)


class _FakeCuda:
    """Stands in for ``streamtrt.engine.cuda`` on an integrated GPU: buffers are numpy arrays
    known by address, and any host/device copy is recorded (there should be none)."""

    def __init__(self):
        import numpy as np

        self.np = np
        self.memory: dict[int, object] = {}
        self.copies: list[str] = []
        outer = self

        class MappedBuffer:
            def __init__(self, shape, dtype):
                self.array = np.zeros(shape, dtype)
                self.ptr = self.array.ctypes.data
                outer.memory[self.ptr] = self.array

            def free(self):
                outer.memory.pop(self.ptr, None)

        class Handle:
            ptr = 0

            def record(self, stream=None):
                pass

            def synchronize(self):
                pass

            def destroy(self):
                pass

        self.MappedBuffer = MappedBuffer
        self.Stream = self.Event = Handle

    def set_device(self, device_id):
        pass

    def is_integrated(self, device_id):
        return True

    def cudart(self):
        return None  # only CUDA graphs need it, and they are off here

    def copy_async(self, dst, src, nbytes, kind, stream):
        self.copies.append(kind)

    def DeviceBuffer(self, nbytes):  # noqa: N802 - mirrors the real class
        raise AssertionError("a device buffer on an integrated GPU")

    PinnedBuffer = DeviceBuffer


def _fake_trt(cuda_fake, batch=2, width=3):
    import numpy as np

    class Context:
        def __init__(self):
            self.addr = {}

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr

        def set_input_shape(self, name, shape):
            pass

        def get_tensor_shape(self, name):
            return (batch, width)

        def execute_async_v3(self, stream):
            src, dst = cuda_fake.memory[self.addr["images"]], cuda_fake.memory[self.addr["scores"]]
            dst[...] = src * 2
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i):
            return ["images", "scores"][i]

        def get_tensor_dtype(self, name):
            return "float32"

        def get_tensor_shape(self, name):
            return (batch, width)

        def get_tensor_mode(self, name):
            return "in" if name == "images" else "out"

        def create_execution_context(self):
            return Context()

    class Runtime:
        DLA_core = -1

        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, plan):
            return Engine()

    logger = lambda level: None  # noqa: E731
    logger.WARNING = 2
    return SimpleNamespace(Logger=logger, Runtime=Runtime, nptype=np.dtype,
                           TensorIOMode=SimpleNamespace(INPUT="in", OUTPUT="out"))


def test_tensorrt_runner_on_unified_memory_makes_no_copies(monkeypatch):
    """On an integrated GPU the runner's buffers are mapped host memory: inputs are written and
    outputs read in place, with two batches in flight, and no host/device copy is queued."""
    import numpy as np

    from streamtrt.engine.tensorrt import runner as runner_module

    fake = _FakeCuda()
    monkeypatch.setattr(runner_module, "cuda", fake)
    runner = TensorRTRunner(_fake_trt(fake), b"plan", slots=2)
    runner.activate()
    assert runner.zero_copy
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = -a
    runner.submit({"images": a})
    runner.submit({"images": b})  # both in flight: each slot has its own mapped buffers
    out_a, out_b = runner.collect(), runner.collect()
    np.testing.assert_array_equal(out_a["scores"], a * 2)
    np.testing.assert_array_equal(out_b["scores"], b * 2)
    out_a["scores"][...] = 0  # returned arrays are copies, not the slot's memory
    np.testing.assert_array_equal(runner.infer({"images": a})["scores"], a * 2)
    assert fake.copies == []
    runner.deactivate()
    assert fake.memory == {}
