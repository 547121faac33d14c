import pytest

from streamtrt import Pipeline
from streamtrt.errors import ConfigError
from streamtrt.runtime.budget import derive_workspace_mb, plan_budget
from tests.conftest import SAMPLE_CONFIG, make_config
from tests.test_cli import assert_one_line_error, streamtrt

ARGS = dict(frame_hw=(1080, 1920), input_chw=(3, 640, 640), itemsize=4, model_bytes=50 * 2**20)


def test_arithmetic():
    plan = plan_budget(10_000, batch=4, slots=2, keep_images=False, workspace_mb=256, **ARGS)
    frame_mb, tensor_mb = 1080 * 1920 * 3 / 2**20, 3 * 640 * 640 * 4 / 2**20
    assert plan.slots == 2
    assert plan.total_mb == pytest.approx(4 * 4 * frame_mb + 4 * 4 * tensor_mb + 50 + 256)


def test_queue_depth_is_fitted_to_the_budget():
    roomy = plan_budget(4000, batch=4, slots=8, keep_images=True, **ARGS)
    tight = plan_budget(600, batch=4, slots=8, keep_images=True, **ARGS)
    assert roomy.slots == 8 and 1 <= tight.slots < 8 and tight.total_mb <= 600


def test_refuses_what_cannot_fit():
    with pytest.raises(ConfigError, match=r"runtime.memory_budget_mb 100: the pipeline needs at least \d+ MB"):
        plan_budget(100, batch=8, slots=2, keep_images=True, workspace_mb=64, **ARGS)


def test_workspace_from_the_budget():
    assert derive_workspace_mb(2048, None) == 256 and derive_workspace_mb(400, None) == 100
    assert derive_workspace_mb(400, 32) == 32


def test_pipeline_lowers_slots_to_fit(short_clip, tmp_path):
    cfg = make_config(short_clip, tmp_path, runtime={"slots": 16, "batch_size": 4, "memory_budget_mb": 160})
    with Pipeline.from_config(cfg, report=lambda m: None) as pipe:
        assert 1 <= pipe.config.runtime.slots < 16
        assert len(list(pipe)) == 12


def test_cli_refuses_a_budget_that_cannot_fit(short_clip):
    proc = streamtrt("run", SAMPLE_CONFIG, "--source", short_clip, "--set", "runtime.memory_budget_mb=10")
    assert_one_line_error(proc, "runtime.memory_budget_mb 10", "lower runtime.batch_size")


def test_runners_are_built_with_the_fitted_slots_and_workspace(monkeypatch, short_clip, tmp_path):
    """The budget is fitted before any runner exists: the settings a runner is built from carry the
    lowered runtime.slots (TensorRT sizes its device slots from them) and the derived workspace."""
    from streamtrt.engine import create_runner
    from streamtrt.runtime import components as components_module
    from streamtrt.runtime import plan as plan_module
    from streamtrt.runtime.plan import Plan

    seen = []

    def recording_create_runner(kind, settings, **kw):
        seen.append((kind, settings.slots, settings.workspace_mb))
        return create_runner("onnxruntime-cpu", settings, **kw)

    monkeypatch.setattr(components_module, "create_runner", recording_create_runner)
    monkeypatch.setattr(plan_module, "make_plan", lambda rt, uris, live="auto", machine=None:
                        Plan("cpu", "opencv", "tensorrt"))
    cfg = make_config(short_clip, tmp_path, runtime={"slots": 16, "batch_size": 4, "memory_budget_mb": 160})
    with Pipeline.from_config(cfg, report=lambda m: None) as pipe:
        slots = pipe.config.runtime.slots
        # 160 MB: a workspace of 160 // 4 = 40 MB (derive_workspace_mb), the rest fitted for the slots
        assert pipe.config.tensorrt.workspace_mb == 40
        assert 1 <= slots < 16
        assert seen == [("tensorrt", slots, 40)]
        assert len(list(pipe)) == 12
