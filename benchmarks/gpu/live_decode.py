"""Live-source decode throughput, NVDEC (PyNvVideoCodec) against FFmpeg on the CPU: N parallel
``ffmpeg://`` readers of one MPEG-TS clip (each a supervised live source, read as fast as it
decodes), frames per second in total. Usage: live_decode.py CLIP.ts [N ...]"""

from __future__ import annotations

import json
import sys
import threading

from streamtrt.bench_streams import parallel_rate
from streamtrt.config import LiveConfig, SourceConfig
from streamtrt.sources import parse_source_uri
from streamtrt.sources.live import FFmpegLiveSource


def measure(clip: str, n: int, nvdec: bool, seconds: float = 6.0) -> float:
    def read(i: int, count, stop: threading.Event) -> None:
        while not stop.is_set():
            sc = SourceConfig(uri=f"ffmpeg://{clip}", live=False)
            src = FFmpegLiveSource(parse_source_uri(sc.uri), str(i), sc, LiveConfig(), 0 if nvdec else None)
            for _ in src:
                count(1)
                if stop.is_set():
                    break
            src.close()
            if nvdec and src.decoder != "nvdec":
                raise RuntimeError("NVDEC was not used (see the warning above)")

    return parallel_rate(n, read, seconds, settle=1.5)


def main() -> None:
    clip, counts = sys.argv[1], [int(a) for a in sys.argv[2:]] or [1, 8]
    rows = [{"streams": n, "cpu_fps": round(measure(clip, n, False), 1), "nvdec_fps": round(measure(clip, n, True), 1)}
            for n in counts]
    print(json.dumps(rows))
    print("| live streams | FFmpeg CPU decode (fps, total) | NVDEC decode (fps, total) |\n|---:|---:|---:|")
    for r in rows:
        print(f"| {r['streams']} | {r['cpu_fps']:.0f} | {r['nvdec_fps']:.0f} |")


if __name__ == "__main__":
    main()
