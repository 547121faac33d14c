"""The ``streamtrt`` command line. It uses the same Python API as everyone else."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Optional

import click

from . import __version__
from .errors import StreamTRTError

_INTERRUPTED = 130


def _fail(message: str, code: int) -> None:
    click.echo(f"streamtrt: error: {message}", err=True)
    sys.exit(code)


def _guard(fn):
    """Turn streamtrt errors into one line and an exit code; other errors into one line too,
    unless STREAMTRT_DEBUG=1 asks for the traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StreamTRTError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            click.echo("streamtrt: interrupted", err=True)
            sys.exit(_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("STREAMTRT_DEBUG") == "1":
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (set STREAMTRT_DEBUG=1 for the traceback)", 70)

    return wrapper


class Progress:
    """Frames, fps and ETA for files; a live frame counter and per-stream states for streams.
    Drawn on stderr by a ticker thread, so a stream that delivers nothing still shows its state."""

    def __init__(self, total: Optional[int], enabled: bool, tty: bool, extra=None,
                 interval: Optional[float] = None):
        self.total = total
        self.extra = extra  # () -> str appended to the line, e.g. the sinks' backlog
        self.enabled = enabled
        self.tty = tty
        self.interval = interval or (0.25 if tty else 10.0)
        self.start = time.perf_counter()
        self.last = 0.0
        self.frames = 0
        self._done = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        if enabled:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    def update(self, _result=None) -> None:
        self.frames += 1

    def _tick(self) -> None:
        while not self._done.wait(self.interval):
            self.last = time.perf_counter()
            try:
                self._draw(self.last)
            except Exception:  # a status line must never take the run down
                pass

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        fps = self.frames / elapsed
        if self.total:
            pct = min(100.0, 100.0 * self.frames / self.total)
            eta = (self.total - self.frames) / fps if fps > 0 else 0
            text = f"frames {self.frames}/{self.total} ({pct:5.1f}%)  {fps:6.1f} fps  ETA {_hms(eta)}"
        else:
            text = f"frames {self.frames}  {fps:6.1f} fps  elapsed {_hms(elapsed)}"
        if self.extra is not None:
            more = self.extra()
            text += f"  {more}" if more else ""
        click.echo(("\r" + text + "  ") if self.tty else text, err=True, nl=not self.tty)

    def finish(self) -> None:
        self._done.set()
        if self._ticker is not None:
            self._ticker.join(2.0)
        if self.enabled and self.tty and self.last:
            click.echo("", err=True)


def _stream_states(pipeline) -> str:
    """``cam1 running 9.9 fps | cam2 reconnecting (attempt 3: Connection refused)``, for live or several streams."""
    streams = pipeline.stream_status(latency=False)
    if len(streams) <= 1 and not any(st["live"] for st in streams):
        return ""
    fps = pipeline.recent_fps()
    parts = []
    for st in streams:
        text = f"{st['id']} {st['state']}"
        if st["state"] == "running":
            text += f" {fps.get(st['id'], 0.0):.1f} fps"
        elif st.get("error") and st["state"] in ("reconnecting", "connecting", "failed"):
            text += f" ({st['error'][:60]})"
        if st["dropped"]:
            text += f" dropped {st['dropped']}"
        if st["reconnects"]:
            text += f" reconnects {st['reconnects']}"
        parts.append(text)
    return " | ".join(parts)


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtrt")
@click.option("-v", "--verbose", is_flag=True, help="Log more (TensorRT builder warnings, plan choices).")
def main(verbose: bool) -> None:
    """streamtrt: detectors on video files and camera streams, on NVIDIA GPUs or the CPU."""
    import logging

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="streamtrt: %(message)s")


def _notice(message: str) -> None:
    click.echo(f"streamtrt: {message}", err=True)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--source", "sources", metavar="URI", multiple=True,
              help="Replace the config's source(s) (repeatable: several streams).")
@click.option("--sink", "sinks", metavar="URI", multiple=True,
              help="Replace the config's sinks (repeatable): jsonl:PATH, jsonl:- (stdout), video:PATH, summary:PATH.")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True,
              help="Override a config value, e.g. --set runtime.batch_size=4 (repeatable).")
@click.option("--progress/--no-progress", default=None, help="Progress line on stderr (default: when stderr is a terminal).")
@click.option("--status-interval", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Seconds between progress lines (default 0.25 on a terminal, 10 otherwise).")
@click.option("-q", "--quiet", is_flag=True, help="Print no summary.")
@_guard
def run(config: str, sources: tuple[str, ...], sinks: tuple[str, ...], overrides: tuple[str, ...],
        progress: Optional[bool], status_interval: Optional[float], quiet: bool) -> None:
    """Run the job described by CONFIG (a YAML file)."""
    from .config import load_config
    from .runtime import Pipeline

    extra = list(overrides)
    if len(sources) == 1:  # relative to the working directory, like any command-line path
        extra += [f"source={json.dumps(sources[0])}", "sources=[]"]
    elif sources:
        extra += ["source=null", f"sources={json.dumps(list(sources))}"]
    if sinks:
        extra.append(f"sinks={json.dumps(list(sinks))}")
    cfg = load_config(config, extra)
    pipeline = Pipeline(cfg, report=_notice)
    tty = sys.stderr.isatty()
    network = any(hasattr(s, "pending") for s in pipeline.sinks)

    def extra() -> str:
        parts = [_stream_states(pipeline)]
        if network:
            parts.append(f"outbox {pipeline.pending_records()} pending")
        return "  ".join(p for p in parts if p)

    bar = Progress(pipeline.expected_frames, enabled=tty if progress is None else progress, tty=tty,
                   extra=extra, interval=status_interval)
    try:
        summary = pipeline.run(on_result=bar.update)
    except KeyboardInterrupt:
        bar.finish()
        if not quiet:
            click.echo(pipeline.summary.format(), err=True)
        click.echo(f"streamtrt: interrupted after {pipeline.summary.frames} frames; outputs flushed", err=True)
        sys.exit(_INTERRUPTED)
    except StreamTRTError:
        bar.finish()  # the error line says it all; summary sinks still hold the details
        raise
    bar.finish()
    if not quiet:
        click.echo(summary.format(), err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_guard
def doctor(as_json: bool) -> None:
    """Report GPU, driver, DALI, TensorRT, ONNX Runtime, NVDEC and DLA, and what streamtrt will pick."""
    from .doctor import collect, format_report

    report = collect()
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--source", "source", metavar="URI", help="Override the config's source.")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True, help="Override a config value (repeatable).")
@click.option("--frames", type=click.IntRange(min=8), default=300, show_default=True,
              help="Frames per measurement (taken from the start of the source).")
@click.option("--naive-decoder", type=click.Choice(["same", "opencv"]), default="same", show_default=True,
              help="Decoder of the naive loop: the pipeline's own, or OpenCV on the CPU.")
@click.option("--repeat", type=click.IntRange(min=1), default=2, show_default=True,
              help="Alternating runs of the naive loop and the pipeline; the best of each is reported.")
@click.option("--streams", metavar="N,M,...",
              help="Multi-stream mode: for each count, decode alone, the pipeline unpaced, and real-time "
                   "replay of the source (--source or the config's first) as N camera streams.")
@click.option("--duration", type=click.FloatRange(min=2), default=12.0, show_default=True,
              help="Multi-stream mode: seconds measured per real-time run.")
@click.option("--latency-ms", type=click.FloatRange(min=1), default=250.0, show_default=True,
              help="Multi-stream mode: p99 latency limit of a real-time stream.")
@click.option("--soak", "soak_min", type=click.FloatRange(min=1), metavar="MINUTES",
              help="Soak mode: run live for MINUTES (the config's video looped at its frame rate, or --source) "
                   "and report memory, fd and thread growth after warm-up, projected to 24 h.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
@_guard
def bench(config: str, source: Optional[str], overrides: tuple[str, ...], frames: int, naive_decoder: str,
          repeat: int, streams: Optional[str], duration: float, latency_ms: float, soak_min: Optional[float],
          json_path: Optional[str]) -> None:
    """Measure each stage alone, a naive sequential loop and the pipeline, side by side
    (or, with --streams, how many real-time streams one process holds; with --soak, resource growth)."""
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if soak_min:
        from .soak import format_soak, run_soak

        report = run_soak(config, list(overrides), soak_min, source, log=log)
        click.echo(format_soak(report))
    elif streams:
        from .bench_streams import format_stream_table, run_stream_bench
        from .config import ConfigError, load_config

        try:
            counts = sorted({int(x) for x in streams.split(",") if x.strip()})
        except ValueError:
            raise ConfigError(f"--streams {streams!r}: expected stream counts like 8,16,32") from None
        if not counts or min(counts) < 1:
            raise ConfigError(f"--streams {streams!r}: expected stream counts like 8,16,32")
        clip = source or load_config(config, list(overrides)).streams()[0].uri
        report = run_stream_bench(config, list(overrides), clip, counts, duration, latency_ms, log=log)
        click.echo(format_stream_table(report))
    else:
        from .bench import format_table, run_bench

        extra = list(overrides) + ([f"source={json.dumps(source)}", "sources=[]"] if source else [])
        report = run_bench(config, extra, frames, naive_decoder, log=log, repeat=repeat)
        click.echo(format_table(report))
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)


@main.command()
@click.argument("targets", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True,
              help="Override a config value for every target (repeatable).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), help="Shorthand for --set tensorrt.precision=...")
@click.option("--batch", "batch", type=click.IntRange(min=1), help="Shorthand for --set runtime.batch_size=...")
@click.option("--force", is_flag=True, help="Rebuild even if a valid engine is cached.")
@_guard
def build(targets: tuple[str, ...], overrides: tuple[str, ...], precision: Optional[str], batch: Optional[int],
          force: bool) -> None:
    """Build (or find cached) TensorRT engines for CONFIG files or ONNX models.

    Several targets pre-build engines for a fleet. An ONNX model is built with default settings
    plus the overrides, e.g. `streamtrt build model.onnx --precision fp16 --set tensorrt.profile.max_batch=8`.
    """
    from .config import load_config
    from .engine.tensorrt import load_tensorrt, prepare_engine

    extra = list(overrides)
    if precision:
        extra.append(f"tensorrt.precision={precision}")
    if batch:
        extra.append(f"runtime.batch_size={batch}")
    trt = load_tensorrt()
    for target in targets:
        if target.lower().endswith(".onnx"):
            cfg = load_config({"source": "unused", "model": {"path": os.path.abspath(target)}}, extra)
        else:
            cfg = load_config(target, extra)
        seen = set()
        for engine_cfg in cfg.engine_configs():  # one per DLA core of a tensorrt.dla_core list
            if engine_cfg.tensorrt.dla_core in seen:
                continue
            seen.add(engine_cfg.tensorrt.dla_core)
            prepared = prepare_engine(engine_cfg, report=lambda m: click.echo(m, err=True), trt=trt, force=force)
            state = "built" if prepared.built else "cached"
            click.echo(f"{target}: {state} {prepared.path} (key {prepared.key.digest}, {prepared.key.precision}, "
                       f"{prepared.key.tensorrt}, {prepared.key.device})")


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="For a model: also show the engine key and cache state this config gives.")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True, help="Override a config value (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guard
def inspect(path: str, config_path: Optional[str], overrides: tuple[str, ...], as_json: bool) -> None:
    """Show an engine's key, I/O tensors, precision, profiles and size, or an ONNX model's
    hash, I/O and the engine key it would get."""
    from pathlib import Path as _Path

    from .config import load_config
    from .engine.tensorrt.inspect import format_inspection, inspect_engine, inspect_model

    p = _Path(path)
    if p.suffix.lower() == ".onnx":
        cfg = load_config(config_path, list(overrides)) if config_path else load_config(
            {"source": "unused", "model": {"path": str(p.resolve())}}, list(overrides))
        info = inspect_model(p, cfg)
    else:
        info = inspect_engine(p)
    click.echo(json.dumps(info, indent=2) if as_json else format_inspection(info))


@main.group()
def service() -> None:
    """Run a job as a systemd service."""


@service.command("install")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--name", help="Unit name (default: streamtrt-<config name>).")
@click.option("--user", help="Run as this user.")
@click.option("--unit-dir", type=click.Path(file_okay=False), default="/etc/systemd/system", show_default=True)
@click.option("--print", "print_only", is_flag=True, help="Print the unit instead of writing it.")
@_guard
def service_install(config: str, name: Optional[str], user: Optional[str], unit_dir: str, print_only: bool) -> None:
    """Write a systemd unit for CONFIG: restart on failure, journal logs, graceful stop (SIGINT)."""
    from pathlib import Path as _Path

    from .config import load_config
    from .service import render_unit, unit_name

    path = _Path(config)
    load_config(path)  # refuse to install a config that would not run
    unit = unit_name(path, name)
    text = render_unit(path, unit, user=user)
    if print_only:
        click.echo(text, nl=False)
        return
    target = _Path(unit_dir) / unit
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError as exc:
        from .errors import StreamTRTError

        raise StreamTRTError(f"cannot write {target}: {exc.strerror or exc} (run as root, or pass --unit-dir)") from None
    click.echo(f"wrote {target}\nnext: sudo systemctl daemon-reload && sudo systemctl enable --now {unit}\n"
               f"logs: journalctl -u {unit} -f")


if __name__ == "__main__":
    main()
