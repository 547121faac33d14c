"""Batch mode: a glob, folder or list of video files becomes one Ray task per file.

Each task runs one :class:`~streamtrt.runtime.Pipeline` over its file (model loaded per task) and
writes the file's outputs, rendered from ``cluster.batch.outputs`` templates, under temporary names
(``.STEM.part-XXXXXXXX.SUFFIX`` beside the final one); only a finished file's outputs are renamed
into place (``os.replace``, atomic on one filesystem), so an output that exists is complete. A task
whose worker process dies (SIGKILL, OOM, its node leaves) is retried by Ray up to
``cluster.max_retries`` times; an input a pipeline refuses (a broken file) fails once, with its
error. The driver alone appends to the manifest, one JSON line per completed input, so a rerun
skips inputs that are unchanged (size, mtime) and whose outputs exist.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

from ..config import BatchConfig, Config
from ..errors import ConfigError, StreamTRTError
from ..sources.uri import VIDEO_SUFFIXES, redact

__all__ = ["list_inputs", "render_outputs", "read_manifest", "process_file", "run_batch"]

_KIND = re.compile(r"^(jsonl|video|summary):(?!//)(.*)$")


def list_inputs(batch: BatchConfig) -> list[Path]:
    """The inputs, sorted and without repeats. Raises :class:`ConfigError` for an item that names
    nothing (a missing file, a glob that matches no file, a folder without videos)."""
    items = [batch.inputs] if isinstance(batch.inputs, str) else list(batch.inputs)
    found: list[Path] = []
    for i, item in enumerate(items):
        where = "cluster.batch.inputs" + ("" if isinstance(batch.inputs, str) else f".{i}")
        p = Path(os.path.expanduser(item))
        if p.is_file() and p.suffix.lower() == ".txt":
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
            paths = [Path(ln) if Path(ln).is_absolute() else p.parent / ln for ln in lines if ln and not ln.startswith("#")]
            missing = [x for x in paths if not x.is_file()]
            if missing:
                raise ConfigError(f"{where}: {p} lists {len(missing)} missing file(s), e.g. {missing[0]}")
            found += paths
        elif p.is_dir():
            videos = [x for x in sorted(p.rglob("*")) if x.is_file() and x.suffix.lower() in VIDEO_SUFFIXES]
            if not videos:
                raise ConfigError(f"{where}: no video files in {p} (looked for {', '.join(sorted(VIDEO_SUFFIXES))})")
            found += videos
        elif p.is_file():
            found.append(p)
        elif glob.has_magic(item):
            matches = [Path(x) for x in sorted(glob.glob(os.path.expanduser(item), recursive=True)) if Path(x).is_file()]
            if not matches:
                raise ConfigError(f"{where}: {item!r} matches no file")
            found += matches
        else:
            raise ConfigError(f"{where}: {item!r} is not a file, folder, list file (.txt) or glob")
    out, seen = [], set()
    for x in found:
        r = x.resolve()
        if r not in seen:
            seen.add(r)
            out.append(r)
    return sorted(out)


def render_outputs(templates: list[str], path: Path, index: int) -> list[str]:
    """Each template with ``{stem}``, ``{name}``, ``{index}`` filled in for ``path``."""
    return [t.format(stem=path.stem, name=path.name, index=index) for t in templates]


def _split(uri: str) -> tuple[str, Path]:
    m = _KIND.match(uri)
    return (m.group(1) + ":", Path(m.group(2))) if m else ("", Path(uri))


def _temporary(uri: str, tag: str) -> tuple[str, Path, Path]:
    """(sink URI of the temporary file, temporary path, final path)."""
    kind, final = _split(uri)
    tmp = final.with_name(f".{final.stem}.part-{tag}{final.suffix}")
    return kind + str(tmp), tmp, final


def read_manifest(path: Path) -> dict[str, dict]:
    """Input path -> its latest manifest entry (an unreadable last line, cut by a crash, is skipped)."""
    entries: dict[str, dict] = {}
    if not path.is_file():
        return entries
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            entries[entry["input"]] = entry
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def _complete(entry: Optional[dict], path: Path, outputs: list[str]) -> bool:
    if entry is None:
        return False
    st = path.stat()
    return (entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns
            and entry.get("outputs") == outputs and all(_split(o)[1].is_file() for o in outputs))


def process_file(config_json: dict, path: str, index: int, outputs: list[str], run_id: str) -> dict:
    """Run one file to its end (in a Ray task). Returns ``{"ok", "frames", "wall_s"}`` or
    ``{"ok": False, "error", "exit_code"}`` for an input or config error (not retried)."""
    from ..runtime import Pipeline

    tag = uuid.uuid4().hex[:8]
    temps = [_temporary(o, tag) for o in outputs]
    for _, tmp, _ in temps:
        tmp.parent.mkdir(parents=True, exist_ok=True)
    config = Config.model_validate(config_json).model_copy(
        update={"source": path, "sources": [], "sinks": [t[0] for t in temps]})
    t0 = time.perf_counter()
    try:
        pipeline = Pipeline(config)
        # message ids RUN:0:FRAME stay the same when a retry runs the file again
        pipeline.run_id = f"{run_id}-{hashlib.sha1(path.encode()).hexdigest()[:10]}"
        summary = pipeline.run()
    except StreamTRTError as exc:
        for _, tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        return {"ok": False, "error": redact(str(exc)), "exit_code": exc.exit_code}
    for _, tmp, final in temps:
        os.replace(tmp, final)
    return {"ok": True, "frames": summary.frames, "wall_s": round(time.perf_counter() - t0, 3)}


def _clean_parts(outputs: list[str]) -> None:
    """Remove what killed attempts left (``.STEM.part-*``)."""
    for o in outputs:
        _, final = _split(o)
        for leftover in final.parent.glob(f".{glob.escape(final.stem)}.part-*{glob.escape(final.suffix)}"):
            leftover.unlink(missing_ok=True)


def run_batch(config: Config, address: Optional[str], report: Callable[[str], None], stop, interval_s: float = 10.0,
              progress: Optional[Callable[[dict], None]] = None) -> dict:
    """Run every input not completed yet; returns ``{"total", "skipped", "done", "failed": {path: error},
    "frames", "wall_s"}``. ``stop`` (an Event): submit no more; running files finish."""
    from ray.exceptions import RayError

    from .actors import worker_options
    from .driver import connect

    c = config.cluster
    batch = c.batch
    if config.sinks:
        raise ConfigError("sinks: in batch mode the outputs come from cluster.batch.outputs (per input file)")
    inputs = list_inputs(batch)
    manifest_path = Path(batch.manifest)
    manifest = read_manifest(manifest_path)
    todo, skipped = [], 0
    for i, p in enumerate(inputs):
        outs = render_outputs(batch.outputs, p, i)
        if _complete(manifest.get(str(p)), p, outs):
            skipped += 1
        else:
            todo.append((i, p, outs))
    finals = [_split(o)[1] for _, _, outs in todo for o in outs]
    if len(set(finals)) != len(finals):
        raise ConfigError("cluster.batch.outputs: two inputs would write the same output (same stem in two "
                          "folders?): use {index} in the template")
    report(f"batch: {len(inputs)} file(s), {skipped} already complete (manifest {manifest_path}), {len(todo)} to run")
    result = {"total": len(inputs), "skipped": skipped, "done": 0, "failed": {}, "frames": 0, "wall_s": 0.0}
    if not todo:
        return result
    ray = connect(address, c.namespace, start=address is None)
    run_id = f"{c.name}-{uuid.uuid4().hex[:8]}"
    cfg_json = config.model_dump(mode="json")
    task = ray.remote(process_file)
    task_options = {"max_retries": c.max_retries, "retry_exceptions": False, **worker_options(c, ray)}
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    pending: dict = {}
    queue = list(todo)
    window = 1024
    last = 0.0
    with open(manifest_path, "a", encoding="utf-8") as mf:
        while queue or pending:
            while queue and len(pending) < window and not stop.is_set():
                i, p, outs = queue.pop(0)
                ref = task.options(name=redact(f"streamtrt-file-{i}-{p.name}")[:100], **task_options).remote(cfg_json, str(p), i, outs, run_id)
                pending[ref] = (i, p, outs)
            if stop.is_set():
                queue.clear()
            if not pending:
                break
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                i, p, outs = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except RayError as exc:  # retries exhausted (the worker died every time)
                    res = {"ok": False, "error": f"{type(exc).__name__} after {c.max_retries} retries"}
                if res["ok"]:
                    st = p.stat()
                    mf.write(json.dumps({"input": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                         "outputs": outs, "frames": res["frames"], "run_id": run_id,
                                         "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
                    mf.flush()
                    os.fsync(mf.fileno())
                    result["done"] += 1
                    result["frames"] += res["frames"]
                else:
                    result["failed"][str(p)] = res["error"]
                    report(f"batch: {p.name} failed: {res['error']}")
                _clean_parts(outs)
            elapsed = time.monotonic() - t0
            result["wall_s"] = round(elapsed, 3)
            finished = result["done"] + len(result["failed"])
            if progress is not None:
                progress(dict(result, running=len(pending)))
            if time.monotonic() - last >= interval_s or not (queue or pending):
                rate = result["frames"] / elapsed if elapsed > 0 else 0.0
                eta = (elapsed / finished * (len(todo) - finished)) if finished else None
                report(f"batch: {result['done']}/{len(todo)} done, {len(result['failed'])} failed, "
                       f"{len(pending)} running, {rate:.1f} frames/s" + (f", ETA {eta:.0f} s" if eta is not None else ""))
                last = time.monotonic()
    for _, _, outs in todo:
        _clean_parts(outs)
    return result
