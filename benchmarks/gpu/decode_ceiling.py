"""The GPU's decode ceiling for a clip: decode alone (NVDEC through DALI, the file path's decoder)
of N copies over W processes (Ray tasks placed like cluster workers), for each W given, with NVML's
NVDEC/SM busy %, video clock and power averaged over the span every process was counting in.

  timeout 400 python3 benchmarks/gpu/decode_ceiling.py configs/multi-stream.yaml /tmp/vtest-1080p.mp4 \
      --streams 128 --workers 2,3,4,6 --set runtime.stream_batch=4 --json $OUT/decode-ceiling.json
Prints one Markdown table last.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cluster_streams import Utilisation, bench_job, decode_alone  # noqa: E402

from streamtrt.cluster.driver import connect  # noqa: E402
from streamtrt.config import load_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("clip")
    ap.add_argument("--streams", type=int, default=128)
    ap.add_argument("--workers", default="2,3,4,6")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    base = load_config(args.config, args.overrides)
    ray = connect(None, "streamtrt-bench", start=True)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    rows = []
    for w in [int(x) for x in args.workers.split(",")]:
        raw = dict(bench_job(base, w, gpus), source=args.clip, sources=[])
        cluster = load_config(raw).cluster
        with Utilisation() as util:
            fps, window = decode_alone(raw, args.clip, args.streams, w, args.seconds, ray, cluster)
        row = {"workers": w, "streams": args.streams, "decode_fps": round(fps, 1), "nvml": util.means(window),
               "window_s": round(window[1] - window[0], 1)}
        rows.append(row)
        print(f"[{time.strftime('%H:%M:%S')}] {json.dumps(row)}", file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"clip": args.clip, "overrides": args.overrides, "rows": rows}, indent=1))
    print("\n| processes | streams | decode alone fps (total) | per stream | NVDEC % | SM % | video MHz | power W |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        n = r["nvml"]
        print(f"| {r['workers']} | {r['streams']} | {r['decode_fps']} | {r['decode_fps'] / r['streams']:.1f} | "
              f"{n['nvdec_pct']} | {n['sm_pct']} | {n['video_mhz']} | {n['power_w']} |")


if __name__ == "__main__":
    main()
