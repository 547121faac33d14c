"""INT8 from the user's own video: the shared calibration set and its cache, `streamtrt quantize`
(ONNX Runtime static Q/DQ) and the quantized model's detections against FP32."""

import json
from collections import Counter

import numpy as np
import onnx
import pytest
import yaml

from streamtrt.calibration_data import read_calibration_frames
from streamtrt.config import load_config
from streamtrt.engine import calibration as calibration_module
from streamtrt.engine.calibration import load_calibration_set
from streamtrt.engine.quantize import _bad_scale_tensors, quantize_model
from streamtrt.errors import ConfigError
from streamtrt.postprocess.compare import agreement
from streamtrt.postprocess.detections import Detections
from streamtrt.preprocess.opencv import OpenCVPreprocessor
from streamtrt.preprocess.spec import PreprocessSpec
from tests.conftest import MODEL, NANODET_INPUT, decode_frames, make_config
from tests.test_cli import assert_one_line_error, streamtrt

SPEC = PreprocessSpec(416, 416, mean=tuple(NANODET_INPUT["mean"]), std=tuple(NANODET_INPUT["std"]))


def _no_decoding(*args, **kwargs):
    raise AssertionError("the calibration source was read again")


def test_calibration_set_is_the_pipeline_preprocessing_and_is_reused(short_clip, tmp_path, monkeypatch):
    first = load_calibration_set("a" * 64, str(short_clip), SPEC, 6, tmp_path, read_frames=read_calibration_frames)
    assert first.frames_read == 6 and not first.reused
    expected, _ = OpenCVPreprocessor(SPEC)(decode_frames(short_clip, 6))
    assert first.tensors.shape == (6, 3, 416, 416) and np.allclose(first.tensors, expected)
    assert [b.shape for b in first.batches(4)] == [(4, 3, 416, 416)]  # the partial batch is dropped

    again = load_calibration_set("a" * 64, str(short_clip), SPEC, 6, tmp_path, read_frames=_no_decoding)
    assert again.reused and again.frames_read == 0 and again.path == first.path
    assert np.array_equal(again.tensors, first.tensors)
    # Another model, frame count or preprocessing is another set: the source is read again.
    for args in (("b" * 64, SPEC, 6), ("a" * 64, SPEC, 5), ("a" * 64, PreprocessSpec(416, 416, color="rgb"), 6)):
        with pytest.raises(AssertionError, match="read again"):
            load_calibration_set(args[0], str(short_clip), args[1], args[2], tmp_path, read_frames=_no_decoding)
    assert len(list(tmp_path.glob("calib-*.npz"))) == 1


def test_a_damaged_calibration_cache_is_rebuilt(short_clip, tmp_path):
    first = load_calibration_set("a" * 64, str(short_clip), SPEC, 2, tmp_path, read_frames=read_calibration_frames)
    first.path.write_bytes(b"not an npz")
    again = load_calibration_set("a" * 64, str(short_clip), SPEC, 2, tmp_path, read_frames=read_calibration_frames)
    assert again.frames_read == 2 and np.array_equal(again.tensors, first.tensors)


def test_agreement_counts_same_class_matches_once():
    ref = Detections([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], [0.9, 0.8, 0.7], [0, 0, 1], ["a"] * 3)
    pred = Detections([[0, 0, 10, 11], [0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]],
                      [0.95, 0.6, 0.9, 0.5], [0, 0, 0, 0], ["a"] * 4)
    a = agreement([pred], [ref], 0.5)
    # Box 1 takes ref 0 (IoU 10/11); box 2 finds ref 0 used; box 3 has the wrong class; box 4 matches ref 1.
    assert (a.matched, a.predicted, a.reference) == (2, 4, 3)
    assert a.f1 == pytest.approx(2 * 2 / 7) and a.precision == 0.5 and a.recall == pytest.approx(2 / 3)
    assert agreement([pred[:0]], [ref[:0]]).f1 == 1.0
    with pytest.raises(ValueError):
        agreement([pred], [])


@pytest.mark.slow
def test_quantized_sample_model_runs_with_the_same_config_and_agrees_with_fp32(short_clip, tmp_path, monkeypatch):
    cfg_dict = make_config(short_clip, tmp_path, postprocess={"score_threshold": 0.35})
    cfg = load_config(cfg_dict)
    out = tmp_path / "nanodet.int8.onnx"
    result = quantize_model(cfg, str(short_clip), out, frames=12, cache_dir=tmp_path / "calib",
                            read_frames=read_calibration_frames)
    assert result.calibration.frames_read == 12
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert ops["QuantizeLinear"] > 50 and ops["DequantizeLinear"] > 50
    assert ops["Conv"] > 0 and not _bad_scale_tensors(out)  # every scale finite and positive
    # NanoDet-m's max-pool pads with -inf: that range cannot be quantized and stays in float.
    assert any("kept in float" in r and "MaxPool" in r for r in result.reasons)

    # A second run reuses the calibration frames: nothing is decoded.
    again = quantize_model(cfg, str(short_clip), tmp_path / "again.onnx", frames=12, cache_dir=tmp_path / "calib",
                           read_frames=_no_decoding)
    assert again.calibration.reused and again.calibration.frames_read == 0

    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(cfg_dict))
    records = {}
    for name, model in (("fp32", MODEL), ("int8", out)):
        jsonl = tmp_path / f"{name}.jsonl"
        proc = streamtrt("run", config, "--set", f"model.path={model}", "--sink", f"jsonl:{jsonl}")
        assert proc.returncode == 0, proc.stderr
        records[name] = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records["int8"]) == len(records["fp32"]) == 12

    def dets(rs):
        return [Detections([d["bbox"] for d in r["detections"]], [d["score"] for d in r["detections"]],
                           [d["class_id"] for d in r["detections"]], [d["class_name"] for d in r["detections"]])
                for r in rs]

    a = agreement(dets(records["int8"]), dets(records["fp32"]), 0.5)
    assert a.reference > 50  # pedestrians in every frame
    # Measured on these 12 frames (2-core AVX2, reduce_range): F1 0.92 (precision 0.86, recall 1.0).
    assert a.f1 >= 0.85, a.as_dict()


def test_quantize_cli_errors(tmp_path, short_clip):
    assert_one_line_error(streamtrt("quantize", tmp_path / "none.onnx", "--calib", short_clip), "model not found")
    proc = streamtrt("quantize", MODEL, "--calib", tmp_path / "none.mp4", "-o", tmp_path / "x.onnx",
                     "--cache-dir", tmp_path)
    assert_one_line_error(proc, "none.mp4")
    assert proc.returncode == 3
    proc = streamtrt("quantize", MODEL, "--calib", short_clip, "-o", MODEL, "--cache-dir", tmp_path)
    assert_one_line_error(proc, "would overwrite the model")


def test_quantize_rejects_unknown_method(short_clip, tmp_path):
    cfg = load_config(make_config(short_clip, tmp_path))
    with pytest.raises(ConfigError, match="calibration method"):
        quantize_model(cfg, str(short_clip), tmp_path / "x.onnx", method="kl")
