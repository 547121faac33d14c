"""Make a benchmark input from the sample clip: scaled, re-encoded H.264 (PyAV's bundled FFmpeg).

    python benchmarks/make_clip.py samples/vtest.mp4 out/vtest-1080p.mp4 --width 1920 --height 1080
"""

from __future__ import annotations

import argparse
from fractions import Fraction

import av


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--fps", type=int, default=None, help="output rate (default: the input's)")
    ap.add_argument("--codec", default="libx264")
    ap.add_argument("--loops", type=int, default=1, help="repeat the input this many times")
    args = ap.parse_args()
    with av.open(args.src) as src:
        rate = args.fps or int(round(float(src.streams.video[0].average_rate)))
        frames = [f.reformat(width=args.width, height=args.height, format="yuv420p") for f in src.decode(video=0)]
    with av.open(args.dst, "w") as out:
        stream = out.add_stream(args.codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = args.width, args.height, "yuv420p"
        stream.options = {"preset": "veryfast"} if args.codec in ("libx264", "libx265") else {}
        n = 0
        for _ in range(args.loops):
            for f in frames:
                f.pts, f.time_base = n, Fraction(1, rate)
                for packet in stream.encode(f):
                    out.mux(packet)
                n += 1
        for packet in stream.encode():
            out.mux(packet)
    print(f"wrote {args.dst}: {n} frames {args.width}x{args.height} {args.codec} at {rate} fps")


if __name__ == "__main__":
    main()
