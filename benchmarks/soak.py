"""Soak benchmark: ``python benchmarks/soak.py CONFIG --minutes 30 [--json out.json]``.

The same measurement as ``streamtrt bench CONFIG --soak MINUTES`` (streamtrt/soak.py), with the
knobs a leak hunt needs: ``--fast`` replays the loop unpaced (faster than real time, many frames
and tracks per minute) and ``--tracemalloc N`` lists the N allocation sites that grew most
between the end of the warm-up and the end of the run.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamtrt.soak import format_soak, run_soak  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--source", help="a live URI instead of the config's video looped")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--fast", action="store_true", help="replay the loop unpaced (faster than real time)")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="N", help="report the N sites that grew most")
    ap.add_argument("--json", help="write the report (with every sample) as JSON")
    args = ap.parse_args()
    report = run_soak(args.config, args.overrides, args.minutes, args.source, sample_s=args.sample_s,
                      realtime=not args.fast, trace=args.tracemalloc, log=lambda m: print(m, file=sys.stderr))
    print(format_soak(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
