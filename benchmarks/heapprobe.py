"""Where a soak's resident memory goes: ``python benchmarks/heapprobe.py CONFIG --minutes M --json OUT``.

Runs the soak (``streamtrt.soak.run_soak``: the config's video looped live, paced unless
``--fast``) and, every ``--every`` seconds from a thread of its own, records:

- the resident size by kind of mapping from ``/proc/self/smaps``: the main heap (``[heap]``,
  glibc's main arena), glibc's per-thread arenas (anonymous mappings inside a 64 MiB-aligned
  reservation, ``HEAP_MAX_SIZE`` on 64-bit), other anonymous mappings (large ``mmap`` chunks,
  pymalloc arenas, library pools, thread stacks) and file-backed mappings (code, data);
- glibc's ``mallinfo2()`` (glibc >= 2.33): bytes in use in the arenas (``uordblks``), free in them
  (``fordblks``), in ``mmap`` chunks (``hblkhd``), and the number of arenas' free chunks;
- Python's allocated blocks (``sys.getallocatedblocks``), the classes DALI's ``Pipeline`` made and
  that still wait for a collection (``api_checker``), ``gc.get_count()`` and, with ``--objects``,
  the number of live objects per type (``gc.get_objects``; slow on big heaps);
- with ``--garbage``, at the last probe, the cyclic garbage by type (``gc.DEBUG_SAVEALL``; it is
  then freed) and how long the full collection took;
- with ``--trace N``, tracemalloc's traced size, and at the end the N tracebacks that grew most
  between the first probe at or after ``--from-s`` and the end.

The report lists, per category, the growth between the probe at ``--from-s`` and the last.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamtrt.soak import mallinfo2  # noqa: E402

ARENA_ALIGN = 64 * 2**20  # glibc HEAP_MAX_SIZE on 64-bit: non-main arenas live in 64 MiB-aligned reservations


def mallinfo() -> dict:
    m = mallinfo2()
    if m is None:
        return {}
    return {"arena_mb": m.arena / 2**20, "in_use_mb": m.uordblks / 2**20, "free_mb": m.fordblks / 2**20,
            "mmap_mb": m.hblkhd / 2**20, "mmap_chunks": m.hblks, "free_chunks": m.ordblks,
            "top_free_mb": m.keepcost / 2**20}


def smaps() -> tuple[dict, dict]:
    """(resident MB per category, resident KB per mapping start)."""
    cats: Counter = Counter()
    per: dict = {}
    with open("/proc/self/smaps") as f:
        region = -1
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                start, end = (int(x, 16) for x in parts[0].split("-"))
                name = parts[5] if len(parts) > 5 else ""
                if name == "[heap]":
                    kind = "main_heap"
                elif name.startswith("["):
                    kind = name.strip("[]")
                elif name:
                    kind = "file"
                elif start % ARENA_ALIGN == 0 or start // ARENA_ALIGN == region:
                    kind, region = "thread_arena", start // ARENA_ALIGN
                else:
                    kind = "anon"
                cur = (start, end, kind, name)
            elif parts[0] == "Rss:":
                kb = int(parts[1])
                cats[cur[2]] += kb
                per[f"{cur[0]:x}"] = (kb, (cur[1] - cur[0]) // 1024, cur[2], cur[3])
    return {k: v / 1024 for k, v in cats.items()}, per


def garbage_census() -> dict:
    """What the cyclic collector would free now, by type (the garbage is then freed), and how
    long the full collection took."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    t = time.perf_counter()
    gc.collect()
    took = time.perf_counter() - t
    gc.set_debug(0)
    counts = Counter(f"class {o.__qualname__}" if isinstance(o, type) else type(o).__name__ for o in gc.garbage)
    n = len(gc.garbage)
    gc.garbage.clear()
    gc.collect()
    return {"objects": n, "collect_s": round(took, 4), "top": dict(counts.most_common(15))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--every", type=float, default=30.0)
    ap.add_argument("--from-s", type=float, default=120.0, help="growth is measured from the first probe after this")
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--objects", action="store_true")
    ap.add_argument("--trace", type=int, default=0)
    ap.add_argument("--garbage", action="store_true", help="at the last probe, list the cyclic garbage by type")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--json")
    args = ap.parse_args()
    from streamtrt.soak import run_soak

    rows, maps, snaps, objs = [], {}, {}, {}
    done = threading.Event()
    t0 = time.monotonic()

    def probe() -> None:
        while not done.is_set():
            t = time.monotonic() - t0
            if t > 60 * args.minutes - 3:  # the last probe is taken while the pipeline still runs
                return
            cats, per = smaps()
            row = {"t_s": round(t, 1), "rss_mb": sum(cats.values()), **{f"smaps_{k}": round(v, 3) for k, v in cats.items()},
                   **{k: round(v, 4) if isinstance(v, float) else v for k, v in mallinfo().items()},
                   "py_blocks": sys.getallocatedblocks()}
            # Classes DALI's Pipeline makes per call (``_check_api_type_scope``): alive until a collection.
            row["dali_api_checkers"] = sum(1 for c in object.__subclasses__() if c.__name__ == "api_checker")
            row["gc_counts"] = gc.get_count()
            if args.garbage and t > 60 * args.minutes - 3 - args.every:
                row["garbage"] = garbage_census()
            if args.trace:
                row["traced_mb"] = tracemalloc.get_traced_memory()[0] / 2**20
            if args.objects:
                counts = Counter(f"class {o.__module__}.{o.__qualname__}" if isinstance(o, type) else type(o).__name__
                                 for o in gc.get_objects())
                row["gc_objects"] = sum(counts.values())
                objs.setdefault("from" if t >= args.from_s else "before", counts)
                objs["last"] = counts
            # Only two censuses are kept (the probe must not grow the process it measures).
            maps.setdefault("from" if t >= args.from_s else "before", per)
            maps["last"] = per
            del per, cats
            if args.trace and t >= args.from_s and "from" not in snaps:
                snaps["from"] = tracemalloc.take_snapshot()
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            done.wait(args.every)

    if args.trace:
        tracemalloc.start(10)
    th = threading.Thread(target=probe, daemon=True)
    th.start()
    report = run_soak(args.config, args.overrides, args.minutes, realtime=not args.fast,
                      log=lambda m: print(m, file=sys.stderr, flush=True))
    done.set()
    th.join(30)
    first = next(r for r in rows if r["t_s"] >= args.from_s)
    last = rows[-1]
    out = {"soak_growth": report["growth"], "frames": report["frames"], "fps": report["fps"],
           "from": first, "last": last,
           "diff": {k: round(last[k] - first[k], 3) for k in last if isinstance(last.get(k), (int, float))
                    and isinstance(first.get(k), (int, float))}}
    mf, ml = maps["from"], maps["last"]
    grew = []
    for start in set(mf) | set(ml):
        a, b = mf.get(start, (0, 0, "", "")), ml.get(start, (0, 0, "", ""))
        if a[0] != b[0]:
            info = b if b[1] else a
            grew.append({"start": start, "rss_kb": [a[0], b[0]], "size_kb": [a[1], b[1]], "kind": info[2],
                         "name": info[3]})
    out["mappings_changed"] = sorted(grew, key=lambda g: -abs(g["rss_kb"][1] - g["rss_kb"][0]))[:40]
    if args.objects:
        of, ol = objs["from"], objs["last"]
        out["objects_changed"] = dict(sorted(((k, ol[k] - of[k]) for k in set(of) | set(ol) if ol[k] != of[k]),
                                             key=lambda kv: -abs(kv[1]))[:40])
    if args.trace and "from" in snaps:
        end = tracemalloc.take_snapshot()
        # The probe's own allocations (its rows, tracemalloc's snapshot) are left out.
        mine = [tracemalloc.Filter(False, __file__, all_frames=True), tracemalloc.Filter(False, tracemalloc.__file__)]
        end, start = end.filter_traces(mine), snaps["from"].filter_traces(mine)
        out["traced_top"] = [{"kb": round(s.size_diff / 1024, 1), "count": s.count_diff,
                              "where": [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}"
                                        for f in s.traceback][-6:]}
                             for s in end.compare_to(start, "traceback")[:args.trace]]
        out["traced_by_file"] = [{"kb": round(s.size_diff / 1024, 1), "count": s.count_diff,
                                  "file": s.traceback[0].filename.split("site-packages/")[-1]}
                                 for s in end.compare_to(start, "filename")[:args.trace]]
    out["rows"] = rows
    text = json.dumps(out, indent=1)
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=1))
    if args.json:
        Path(args.json).write_text(text)
    os._exit(0)


if __name__ == "__main__":
    main()
