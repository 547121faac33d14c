"""INT8 (Q/DQ, ONNX Runtime) against FP32 on the same clip: detections' agreement and speed.

    PYTHONPATH=. python benchmarks/int8_cpu.py [--config configs/sample.yaml] [--frames 300] [--rounds 3]

Quantizes the config's model with `streamtrt quantize` (calibration on the clip's first
--calib-frames frames, cached), then runs the whole pipeline (decode, preprocess, inference,
postprocess; no sinks) with the FP32 and the INT8 model in alternating rounds, and reports
F1 of INT8 detections against FP32 (IoU 0.5, same class) and frames per second (best round,
and each round, since a shared machine is noisy). Writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamtrt.config import load_config  # noqa: E402
from streamtrt.calibration_data import read_calibration_frames  # noqa: E402
from streamtrt.engine.quantize import quantize_model  # noqa: E402
from streamtrt.postprocess.compare import agreement  # noqa: E402
from streamtrt.runtime import Pipeline  # noqa: E402


def run_once(config: str, overrides: list[str]) -> tuple[float, list, float]:
    pipe = Pipeline.from_config(config, overrides + ["sinks=[]"])
    dets = []
    cpu0, t0 = time.process_time(), time.perf_counter()
    with pipe:
        for r in pipe:
            dets.append(r.detections)
    wall = time.perf_counter() - t0
    return len(dets) / wall, dets, (time.process_time() - cpu0) / max(1, len(dets))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "sample.yaml"))
    ap.add_argument("--source", default=None)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--calib-frames", type=int, default=128)
    ap.add_argument("--method", default="minmax")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runner", default="onnxruntime-cpu", help="e.g. onnxruntime-cuda on a GPU machine")
    ap.add_argument("--decoder", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "int8-cpu.json"))
    args = ap.parse_args()

    cfg = load_config(args.config)
    source = args.source or cfg.streams()[0].uri
    int8 = Path("/tmp") / f"{Path(cfg.model.path).stem}.int8.{args.method}.onnx"
    t0 = time.perf_counter()
    q = quantize_model(cfg, source, int8, args.calib_frames, args.method, report=lambda m: print(m, file=sys.stderr),
                       read_frames=read_calibration_frames)
    quant_s = time.perf_counter() - t0
    base = [f"runtime.max_frames={args.frames}", f"runtime.decoder={args.decoder}", f"runtime.runner={args.runner}"]
    if args.source:
        base += [f"source={json.dumps(args.source)}"]
    runs = {"fp32": [], "int8": []}
    dets = {}
    cpu = {"fp32": [], "int8": []}
    for _ in range(args.rounds):
        for name, model in (("fp32", cfg.model.path), ("int8", int8)):
            fps, d, cpu_per_frame = run_once(args.config, base + [f"model.path={json.dumps(str(model))}"])
            runs[name].append(round(fps, 2))
            cpu[name].append(round(cpu_per_frame * 1e3, 1))
            dets[name] = d
    agree = {str(iou): agreement(dets["int8"], dets["fp32"], iou).as_dict() for iou in (0.5, 0.75)}
    import onnxruntime

    report = {
        "model": str(cfg.model.path), "source": source, "frames": len(dets["fp32"]),
        "calibration": {"frames": len(q.calibration.tensors), "method": args.method,
                        "per_channel": q.per_channel, "reduce_range": q.reduce_range, "seconds": round(quant_s, 1),
                        "reused": q.calibration.reused, "notes": q.reasons},
        "qdq_nodes": {k: q.op_counts.get(k, 0) for k in ("QuantizeLinear", "DequantizeLinear")},
        "fps": runs, "cpu_ms_per_frame": cpu,
        "int8_vs_fp32": agree,
        "runner": args.runner, "decoder": args.decoder,
        "machine": {"cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                    "loadavg_end": os.getloadavg(), "onnxruntime": onnxruntime.__version__},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    a = agree["0.5"]
    print(f"| model | fps (best; rounds) | CPU ms/frame | detections | F1 vs FP32 @IoU0.5 |")
    print(f"|---|---|---|---|---|")
    print(f"| FP32 | {max(runs['fp32']):.1f} ({' / '.join(map(str, runs['fp32']))}) | {min(cpu['fp32'])} "
          f"| {a['reference']} | - |")
    print(f"| INT8 Q/DQ | {max(runs['int8']):.1f} ({' / '.join(map(str, runs['int8']))}) | {min(cpu['int8'])} "
          f"| {a['predicted']} | {a['f1']:.3f} (P {a['precision']:.3f}, R {a['recall']:.3f}) |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; JSON: {args.out}")


if __name__ == "__main__":
    main()
