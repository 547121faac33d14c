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
from streamtrt.runtime import pipeline as pipeline_module
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

    def fake_create_runner(name, config, **kw):
        made.append((name, config.tensorrt.dla_core))
        cpu = config.model_copy(update={"runtime": config.runtime.model_copy(update={"runner": "onnxruntime-cpu"})})
        return create_runner("onnxruntime-cpu", cpu, **kw)

    monkeypatch.setattr(pipeline_module, "create_runner", fake_create_runner)
    monkeypatch.setattr(pipeline_module, "make_plan", lambda rt, uris: Plan("cpu", "opencv", "tensorrt"))
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
    from streamtrt.engine.tensorrt.engines import key_for

    cfg = load_config({"source": "a.mp4", "model": {"path": "m.onnx"}, "tensorrt": {"dla_core": [0, 1]}})
    with pytest.raises(ConfigError, match="engine_configs"):
        key_for(cfg, SimpleNamespace())


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
        TensorRTRunner(trt, b"plan", dla_core=1).activate()
    assert seen["core"] == 1
    with pytest.raises(ModelError):
        TensorRTRunner(trt, b"plan").activate()
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
