"""On the GPU machine: each case file in tests/data/cases through the CPU path (FFmpeg decode,
ONNX Runtime CPU) and the GPU path (NVDEC/DALI decode, ONNX Runtime CUDA), side by side, with the
annotated video of the GPU run measured by PyAV. Needs no ffmpeg/ffprobe tools (the device has none).

    PYTHONPATH=/tmp/site:. python3 benchmarks/gpu/compare_paths.py [--frames N] [--out DIR]

Prints one table: frames, displayed size, persons, whether every timestamp agrees (1 ms), and the
annotated video's frame count and duration.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from streamtrt.config import load_config  # noqa: E402
from streamtrt.runtime import Pipeline  # noqa: E402

CASES = ["phone_portrait_rotate90.mp4", "vfr_10fps_then_2fps.mkv", "ts_concat_pts_reset.ts",
         "mkv_audio_longer_than_video.mkv", "raw_h264_10fps.h264"]


def run(path: Path, gpu: bool, out: Path, frames: int) -> dict:
    runtime = {"decoder": "dali-gpu", "runner": "onnxruntime-cuda"} if gpu else \
        {"decoder": "cpu", "runner": "onnxruntime-cpu", "preprocessor": "opencv"}
    runtime["max_frames"] = frames
    video = out / f"{path.stem}-{'gpu' if gpu else 'cpu'}.mp4"
    cfg = load_config(ROOT / "configs" / "sample.yaml",
                      [f"source={json.dumps(str(path))}", f"runtime={json.dumps(runtime)}",
                       f"sinks={json.dumps(['video:' + str(video)])}"])
    records, error = [], None
    try:
        with Pipeline(cfg) as pipe:
            plan = pipe.plan.decoder
            for r in pipe:
                records.append((r.timestamp, r.width, r.height,
                                sum(1 for n in r.detections.class_name if n == "person")))
    except Exception as exc:  # report, do not stop the table
        plan, error = "?", f"{type(exc).__name__}: {exc}"
    vid = {}
    if video.exists():
        with av.open(str(video)) as c:
            s = c.streams.video[0]
            n = sum(1 for _ in c.decode(s))
            vid = {"frames": n, "duration_s": round(float(c.duration or 0) / 1e6, 3),
                   "size": f"{s.codec_context.width}x{s.codec_context.height}"}
    return {"decoder": plan, "records": records, "error": error, "video": vid}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    rows, report = [], {}
    for name in CASES:
        path = ROOT / "tests" / "data" / "cases" / name
        if not path.exists():
            continue
        cpu, gpu = run(path, False, out, args.frames), run(path, True, out, args.frames)
        report[name] = {"cpu": cpu, "gpu": gpu}
        same_t = len(cpu["records"]) == len(gpu["records"]) and all(
            a[0] is not None and b[0] is not None and abs(a[0] - b[0]) < 1e-3
            for a, b in zip(cpu["records"], gpu["records"]))
        size = lambda rs: f"{rs[0][1]}x{rs[0][2]}" if rs else "-"  # noqa: E731
        persons = lambda rs: sum(r[3] for r in rs)  # noqa: E731
        rows.append(f"| {name} | {gpu['decoder']} | {len(cpu['records'])} / {len(gpu['records'])} | "
                    f"{size(cpu['records'])} / {size(gpu['records'])} | {persons(cpu['records'])} / "
                    f"{persons(gpu['records'])} | {'yes' if same_t else 'NO'} | "
                    f"{gpu['video'].get('frames', '-')} frames, {gpu['video'].get('duration_s', '-')} s, "
                    f"{gpu['video'].get('size', '-')} | {gpu['error'] or cpu['error'] or ''} |")
    (out / "compare_paths.json").write_text(json.dumps(report, indent=1, default=str))
    print("| case | GPU decoder | frames CPU / GPU | size CPU / GPU | persons CPU / GPU | timestamps equal | "
          "GPU annotated video | error |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
