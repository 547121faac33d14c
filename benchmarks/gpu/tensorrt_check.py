"""On the GPU machine: streamtrt's TensorRT builder and engine cache, end to end.

Builds the sample model (made batch-dynamic by tools/make_dynamic_batch.py) through
``prepare_engine`` in FP32 and FP16 with a dynamic-batch profile, shows that a second run loads
from the cache and that a changed precision or model rebuilds, runs ``streamtrt inspect``, and
tries to execute the engine (TensorRT-RTX refuses to on compute capability 9.0).

    python benchmarks/gpu/tensorrt_check.py OUT_DIR
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from streamtrt.config import load_config  # noqa: E402
from streamtrt.engine import EngineSettings  # noqa: E402
from streamtrt.engine.tensorrt import load_tensorrt, module_label, prepare_engine  # noqa: E402
from streamtrt.errors import StreamTRTError  # noqa: E402


def main(out: Path) -> None:
    logging.basicConfig(level=logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    work = Path("/tmp/streamtrt-trt")
    work.mkdir(exist_ok=True)
    model = work / "nanodet-m-416-dynamic.onnx"
    subprocess.run([sys.executable, str(ROOT / "tools/make_dynamic_batch.py"), str(ROOT / "samples/nanodet-m-416.onnx"),
                    str(model)], check=True)
    trt = load_tensorrt()
    rows, log_lines = [], []

    def step(label, precision, model_path, expect_built):
        cfg = load_config({"source": "unused", "model": {"path": str(model_path)}},
                          [f"tensorrt.precision={precision}", f"tensorrt.cache_dir={work / 'engines'}",
                           "tensorrt.profile.min_batch=1", "tensorrt.profile.opt_batch=4",
                           "tensorrt.profile.max_batch=8", "runtime.batch_size=4"])
        t0 = time.perf_counter()
        prepared = prepare_engine(EngineSettings.from_config(cfg), report=lambda m: log_lines.append(f"[{label}] {m}"), trt=trt)
        seconds = time.perf_counter() - t0
        ok = prepared.built == expect_built
        rows.append({"step": label, "precision": precision, "built": prepared.built, "reason": prepared.reason,
                     "seconds": round(seconds, 2), "digest": prepared.key.digest, "engine": str(prepared.path),
                     "size_mb": round(len(prepared.plan) / 1e6, 2), "as_expected": ok})
        return prepared

    fp32 = step("fp32 first build", "fp32", model, True)
    step("fp32 again", "fp32", model, False)
    fp16 = step("fp16 (precision changed)", "fp16", model, True)
    step("fp16 again", "fp16", model, False)
    changed = work / "nanodet-m-416-dynamic-changed.onnx"
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(model))
    w = m.graph.initializer[0]
    arr = numpy_helper.to_array(w).copy()
    arr.flat[0] += 1e-3
    w.CopyFrom(numpy_helper.from_array(arr, w.name))
    onnx.save(m, str(changed))
    changed_model = changed.with_name("nanodet-m-416-dynamic.onnx")  # same name, other bytes: the key's model hash differs
    changed_dir = work / "changed"
    changed_dir.mkdir(exist_ok=True)
    target = changed_dir / changed_model.name
    target.write_bytes(changed.read_bytes())
    step("fp32, model changed", "fp32", target, True)

    inspect = subprocess.run([sys.executable, "-m", "streamtrt", "inspect", str(fp16.path)], cwd=ROOT,
                             capture_output=True, text=True)
    (out / "inspect-fp16.txt").write_text(inspect.stdout + inspect.stderr)
    inspect_model = subprocess.run([sys.executable, "-m", "streamtrt", "inspect", str(model), "--set",
                                    f"tensorrt.cache_dir={work / 'engines'}", "--set", "tensorrt.precision=fp32",
                                    "--set", "tensorrt.profile.opt_batch=4", "--set", "tensorrt.profile.max_batch=8",
                                    "--set", "runtime.batch_size=4"], cwd=ROOT, capture_output=True, text=True)
    (out / "inspect-model.txt").write_text(inspect_model.stdout + inspect_model.stderr)

    execution = "not attempted"
    try:
        from streamtrt.engine.tensorrt.runner import TensorRTRunner

        runner = TensorRTRunner(trt, fp32.plan, 0, 2)
        runner.activate()
        x = np.zeros((4, 3, 416, 416), np.float32)
        outs = runner.infer({runner.inputs[0].name: x})
        execution = "ran: " + ", ".join(f"{k} {list(v.shape)}" for k, v in outs.items())
        runner.deactivate()
    except StreamTRTError as exc:
        execution = f"refused: {exc}"
    report = {"tensorrt": module_label(trt), "steps": rows, "execution": execution, "log": log_lines}
    (out / "tensorrt-check.json").write_text(json.dumps(report, indent=2))
    print(f"{module_label(trt)}; dynamic batch profile 1/4/8")
    print("| step | built | reason | s | MB | as expected |")
    print("|---|---|---|---:|---:|---|")
    for r in rows:
        print(f"| {r['step']} | {r['built']} | {r['reason']} | {r['seconds']} | {r['size_mb']} | {r['as_expected']} |")
    print(f"execution: {execution}")
    print(inspect.stdout[:1500])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/gpu"))
