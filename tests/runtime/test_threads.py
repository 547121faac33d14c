"""The CPU thread budget: what the plan gives each stage for a machine's cores, and the CPU
runner's frame-level parallelism (several runs in flight, results in submission order)."""

import numpy as np
import pytest

from streamtrt.config import load_config
from streamtrt.engine import OnnxRuntimeRunner
from streamtrt.runtime import Pipeline
from streamtrt.runtime.threads import plan_threads
from tests.conftest import make_config
from tests.models import mean_model


def test_two_cores_run_two_frames_side_by_side_on_one_thread_each_without_spinning():
    t = plan_threads("onnxruntime-cpu", "cpu", "dali-cpu", cores=2)
    assert (t.intra_op, t.workers, t.spin, t.decode, t.preprocess, t.opencv) == (1, 2, False, 1, 1, None)
    assert any("spinning off" in r for r in t.reasons) and any("side by side" in r for r in t.reasons)
    assert plan_threads("onnxruntime-cpu", "cpu", "opencv", cores=2).opencv == 1


def test_engines_share_the_cores_and_large_machines_keep_library_defaults():
    assert (plan_threads("onnxruntime-cpu", "cpu", "opencv", engines=2, cores=2).workers,
            plan_threads("onnxruntime-cpu", "cpu", "opencv", engines=2, cores=2).intra_op) == (1, 1)
    big = plan_threads("onnxruntime-cpu", "cpu", "dali-cpu", cores=16)
    assert (big.workers, big.intra_op, big.decode, big.preprocess, big.opencv) == (2, 8, None, None, None)


def test_runtime_threads_and_gpu_runners_keep_their_settings():
    t = plan_threads("onnxruntime-cpu", "cpu", "opencv", threads=3, cores=2)
    assert (t.intra_op, t.workers, t.decode, t.preprocess) == (3, 1, 3, 3)
    for runner, decoder, spin in (("onnxruntime-cuda", "dali-gpu", True), ("tensorrt", "cpu", False)):
        g = plan_threads(runner, decoder, "dali-gpu" if decoder == "dali-gpu" else "dali-cpu", cores=2)
        assert (g.intra_op, g.workers, g.spin) == (None, 1, spin)


def test_cpu_runner_workers_return_results_in_submission_order(tmp_path):
    runner = OnnxRuntimeRunner(mean_model(tmp_path / "m.onnx"), threads=1, spin=False, workers=2)
    runner.activate()
    try:
        assert runner.in_flight == 2
        inputs = [np.full((1, 3, 32, 32), i, np.float32) for i in range(7)]
        for x in inputs:
            runner.submit({"images": x})
        got = [float(runner.collect()["means"][0, 0]) for _ in inputs]
        assert got == [float(i) for i in range(7)]
    finally:
        runner.deactivate()


@pytest.mark.slow
def test_pipeline_with_two_workers_matches_one_run_at_a_time(short_clip, tmp_path):
    def detections(threads):
        cfg = load_config(make_config(short_clip, tmp_path, runtime={"preprocessor": "opencv", "max_frames": 8,
                                                                      **threads}))
        with Pipeline(cfg) as pipe:
            out = [(r.frame_index, r.detections) for r in pipe]
            return out, pipe.plan.as_dict()["threads"]

    one, plan_one = detections({"threads": 1})
    two, plan_two = detections({})
    assert plan_one["workers"] == 1
    assert plan_two["workers"] == (plan_two["cores"] if plan_two["cores"] <= 4 else 2)
    assert [i for i, _ in two] == list(range(8)) == [i for i, _ in one]
    for (_, a), (_, b) in zip(one, two):
        assert np.allclose(a.xyxy, b.xyxy, atol=1e-3) and np.array_equal(a.class_id, b.class_id)


def test_chunks_of_a_large_batch_run_side_by_side_in_order(tmp_path):
    from streamtrt.runtime.infer import run_batched

    runner = OnnxRuntimeRunner(mean_model(tmp_path / "m.onnx"), threads=1, spin=False, workers=2)
    runner.activate()
    try:
        batch = np.stack([np.full((3, 32, 32), i, np.float32) for i in range(5)])  # the model takes 1 at a time
        assert run_batched(runner, "images", batch)["means"][:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert not runner._futures  # every submitted chunk was collected
    finally:
        runner.deactivate()


def test_live_or_paced_streams_run_one_frame_at_a_time_on_all_cores():
    t = plan_threads("onnxruntime-cpu", "cpu", "opencv", cores=2, latency=True)
    assert (t.workers, t.intra_op, t.spin) == (1, 2, False)
    assert any("live or paced" in r for r in t.reasons)
