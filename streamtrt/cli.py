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
        except KeyboardInterrupt as exc:
            click.echo("streamtrt: interrupted", err=True)
            sys.exit(getattr(exc, "exit_code", _INTERRUPTED))
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("STREAMTRT_DEBUG") == "1":
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (set STREAMTRT_DEBUG=1 for the traceback)", 70)

    return wrapper


class Progress:
    """Frames, fps and ETA for files; a live frame counter and per-stream states for streams.
    Drawn on stderr by a ticker thread, so a stream that delivers nothing still shows its state:
    redrawn in place on a terminal, else one plain ``streamtrt: progress ...`` line per interval.

    ``estimated``: ``total`` is an estimate (shown as ``~795``). The ETA shows once a rate is known."""

    def __init__(self, total: Optional[int], enabled: bool, tty: bool, extra=None,
                 interval: Optional[float] = None, estimated: bool = False, detail=None):
        self.total = total
        self.estimated = estimated
        self.extra = extra  # () -> str appended to the line, e.g. the sinks' backlog
        self.detail = detail  # () -> str logged on its own line each interval (-v: stage timings)
        self.enabled = enabled
        self.tty = tty
        self.interval = interval or (0.25 if tty else 10.0)
        self.start = time.perf_counter()
        self.last = 0.0
        self.frames = 0
        self._done = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        if enabled or detail is not None:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    def update(self, _result=None) -> None:
        self.frames += 1

    def _tick(self) -> None:
        detail_every = max(self.interval, 5.0)
        next_detail = time.perf_counter() + detail_every
        while not self._done.wait(self.interval):
            self.last = time.perf_counter()
            try:
                if self.enabled:
                    self._draw(self.last)
                if self.detail is not None and self.last >= next_detail:
                    next_detail = self.last + detail_every
                    line = self.detail()
                    if line:
                        click.echo(("\r\x1b[K" if self.tty and self.enabled else "") + f"streamtrt: {line}", err=True)
            except Exception:  # a status line must never take the run down
                pass

    def text(self, now: float) -> str:
        """The status line at ``now`` (a ``time.perf_counter()`` value)."""
        elapsed = max(now - self.start, 1e-9)
        fps = self.frames / elapsed
        if self.total and not (self.estimated and self.frames >= self.total):  # an estimate passed: no total
            pct = min(100.0, 100.0 * self.frames / self.total)
            total = f"~{self.total}" if self.estimated else str(self.total)
            text = f"frames {self.frames}/{total} ({pct:5.1f}%)  {fps:6.1f} fps"
            if self.frames > 0:  # a rate is known
                text += f"  ETA {'~' if self.estimated else ''}{_hms(max(0, self.total - self.frames) / fps)}"
        else:
            text = f"frames {self.frames}  {fps:6.1f} fps  elapsed {_hms(elapsed)}"
        if self.extra is not None:
            more = self.extra()
            text += f"  {more}" if more else ""
        return text

    def _draw(self, now: float) -> None:
        text = self.text(now)
        click.echo(("\r" + text + "  ") if self.tty else f"streamtrt: progress {text}", err=True, nl=not self.tty)

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


def _describe_run(pipeline) -> None:
    """-v: what was chosen and why, the inputs, the model input and the outputs."""
    import logging

    log = logging.getLogger("streamtrt")
    log.info("plan:\n%s", pipeline.plan.format(indent="  "))
    for st in pipeline.stream_status(latency=False):
        info = pipeline.streams[st["id"]].info
        log.info("stream %s: %s, %sx%s, %s fps, %s, %s frames, decoder %s", st["id"], st["uri"], info.width,
                 info.height, f"{info.fps:g}" if info.fps else "?", info.codec or "?",
                 pipeline.streams[st["id"]].expected_frames or "live/unknown", pipeline.streams[st["id"]].decoder)
    spec = pipeline.spec
    log.info("model: %s, input %dx%d %s, batch %d, slots %d", pipeline.config.model.path, spec.width, spec.height,
             spec.dtype, pipeline.config.runtime.batch_size, pipeline.config.runtime.slots)
    log.info("sinks: %s", ", ".join(f"{type(s).__name__} {getattr(s, 'display', None) or getattr(s, 'path', '')}"
                                    for s in pipeline.sinks) or "none")


def _stage_timings(pipeline) -> str:
    """-v, every status interval: per-stage milliseconds per frame so far and the queue depths."""
    parts = [f"{t.name} {t.stats().ms_per_frame:.1f}" for t in pipeline.timers() if t.stats().count]
    depths = " ".join(f"{k} {v}" for k, v in pipeline.queue_depths().items())
    return f"stages (ms/frame): {', '.join(parts) or 'none yet'}; queues: {depths}"


def _hms(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _set_verbose(ctx: click.Context, _param, value: bool) -> None:
    if value:
        import logging

        logging.getLogger().setLevel(logging.INFO)
        ctx.meta["streamtrt.verbose"] = True


def _verbose_option(fn):
    """``-v/--verbose``, accepted before the command and after it alike."""
    return click.option("-v", "--verbose", is_flag=True, expose_value=False, callback=_set_verbose,
                        help="Log more: the plan and why, sources and model input, stage timings every "
                             "status interval, TensorRT builder warnings.")(fn)


def _verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get("streamtrt.verbose"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamtrt")
@click.option("-v", "--verbose", is_flag=True, help="Log more (also accepted after the command).")
def main(verbose: bool) -> None:
    """streamtrt: detectors on video files and camera streams, on NVIDIA GPUs or the CPU."""
    import logging

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="streamtrt: %(message)s")
    if verbose:
        click.get_current_context().meta["streamtrt.verbose"] = True


def _notice(message: str) -> None:
    click.echo(f"streamtrt: {message}", err=True)


def _signal_notice(message: str) -> None:
    """A line on stderr from a signal handler: straight to the descriptor, since the handler may
    have interrupted a write of the buffered stream."""
    try:
        os.write(sys.stderr.fileno(), f"streamtrt: {message}\n".encode())
    except (OSError, ValueError):
        pass


DEFAULT_MODEL_SINKS = ["jsonl:-"]
"""Sinks of a run without a config (``--model``) and without ``--sink``: detections as JSONL on stdout
(the summary goes to stderr), so nothing is written to disk unasked."""


def _model_run_config(config: Optional[str], model: Optional[str], sources: tuple[str, ...],
                      sinks: tuple[str, ...]):
    """The config source and extra overrides for ``run [CONFIG] [--model M]``."""
    from .errors import ConfigError

    if config is None and model is None:
        raise ConfigError("give a CONFIG file, or --model MODEL.onnx with --source")
    if config is not None:
        return config, ([f"model.path={json.dumps(os.path.abspath(model))}"] if model else [])
    if not sources:
        raise ConfigError("--model without a config needs --source (a file, rtsp://..., or a camera index)")
    raw = {"model": {"path": os.path.abspath(model)}, "source": "-"}
    return raw, ([] if sinks else [f"sinks={json.dumps(DEFAULT_MODEL_SINKS)}"])


def _print_model_plan(pipeline, sinks_defaulted: bool) -> None:
    """The model's choices and the runtime plan, each with its reason (stderr)."""
    setup = pipeline.model_setup
    _notice(f"model {setup.info.path.name}: {setup.info.describe_producer()}")
    for line in setup.lines():
        click.echo(f"  {line}", err=True)
    click.echo(f"  value range: {setup.value_range}", err=True)
    for reason in pipeline.plan.reasons:
        click.echo(f"  {reason}", err=True)
    if sinks_defaulted:
        click.echo(f"  sinks: {', '.join(DEFAULT_MODEL_SINKS)} (default without a config; --sink to change)", err=True)
    guessed = [c.key.split(".", 1)[1] for c in setup.choices
               if c.key.startswith("preprocess.") and c.reason.startswith("default")]
    if guessed:
        _notice(f"warning: the model does not say its {', '.join(guessed)}: defaults are used; set "
                f"model.input.* (--set) as the model was trained, or boxes may be plausible but wrong")


@main.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--model", "model", metavar="MODEL.onnx", type=click.Path(dir_okay=False),
              help="Run this ONNX model; without CONFIG, preprocessing, format and class names come from the "
                   "model where it says them (see `streamtrt inspect`), the rest from --set.")
@click.option("--source", "sources", metavar="URI", multiple=True,
              help="Replace the config's source(s) (repeatable: several streams).")
@click.option("--sink", "sinks", metavar="URI", multiple=True,
              help="Replace the config's sinks (repeatable): jsonl:PATH (jsonl:- is stdout), csv:PATH, "
                   "video:PATH (.mp4 .mov .avi .mkv), summary:PATH, mqtt://HOST[:PORT]/TOPIC (mqtts:// with TLS), "
                   "http(s)://URL (a webhook), or a bare path whose suffix picks the kind. Filters in the query: "
                   "?classes=person,car&min_score=0.5&streams=cam1; network sinks also ?outbox=PATH "
                   "(webhooks &timeout=SECONDS).")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True,
              help="Override a config value, e.g. --set runtime.batch_size=4 (repeatable).")
@click.option("--progress/--no-progress", default=None,
              help="Progress on stderr (default on: redrawn on a terminal, otherwise a plain line every "
                   "--status-interval; -q turns the plain lines off).")
@click.option("--status-interval", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Seconds between progress lines (default 0.25 on a terminal, 10 otherwise).")
@click.option("-q", "--quiet", is_flag=True,
              help="Print no summary, and no progress lines when stderr is not a terminal (unless --progress).")
@_verbose_option
@_guard
def run(config: Optional[str], model: Optional[str], sources: tuple[str, ...], sinks: tuple[str, ...],
        overrides: tuple[str, ...], progress: Optional[bool], status_interval: Optional[float], quiet: bool) -> None:
    """Run the job described by CONFIG (a YAML file), or run --model on --source with no config.

    Without a config and without --sink, detections go to stdout as JSONL.
    SIGTERM, SIGINT (Ctrl-C) and SIGHUP stop gracefully: reading stops, frames in flight finish and
    every output is finalised; a second signal aborts. Exit status 128 + the signal (143, 130, 129).
    """
    from .signals import StopSignals

    base, extra = _model_run_config(config, model, sources, sinks)
    # --source paths are relative to the working directory, like any command-line path; --set comes
    # after them, so `--set sources.0.format=lavfi` reaches the first --source.
    if sources:
        extra += ["source=null", f"sources={json.dumps([{'uri': u} for u in sources])}"]
    if sinks:
        extra.append(f"sinks={json.dumps(list(sinks))}")
    extra += list(overrides)
    with StopSignals() as signals:  # SIGTERM, SIGINT, SIGHUP: stop gracefully; a second one aborts
        _run(base, extra, signals, progress, status_interval, quiet,
             model_plan=None if config is not None else (not sinks))


def _run(config, overrides: list[str], signals, progress: Optional[bool], status_interval: Optional[float],
         quiet: bool, model_plan: Optional[bool] = None) -> None:
    """``model_plan``: None for a run with a config (its model plan shows with -v), else whether the
    sinks were defaulted (a config-less --model run always prints the model's choices)."""
    from .config import load_config
    from .runtime import Pipeline
    from .signals import exit_code

    cfg = load_config(config, overrides)
    pipeline = Pipeline(cfg, report=_notice)
    if not quiet and (model_plan is not None or _verbose()):
        _print_model_plan(pipeline, bool(model_plan))

    # A handler can run inside another one: the stop reason is always the first signal's name.
    def on_stop(name: str) -> None:
        pipeline.stop(signals.signame or name)
        _signal_notice(f"{name}: stopping (finishing the frames in flight, flushing the outputs; "
                       "a second signal aborts)")

    def on_abort(name: str) -> None:
        pipeline.abort(signals.signame or name)
        _signal_notice(f"second signal ({name}): aborting; closing the outputs")

    signals.attach(on_stop, on_abort)
    tty = sys.stderr.isatty()
    network = any(hasattr(s, "pending") for s in pipeline.sinks)

    def extra() -> str:
        parts = [_stream_states(pipeline)]
        if network:
            parts.append(f"outbox {pipeline.pending_records()} pending")
        return "  ".join(p for p in parts if p)

    verbose = _verbose()
    if verbose:
        _describe_run(pipeline)
    # On a terminal the line is redrawn in place; redirected, one plain line every interval (10 s),
    # so a log shows the run advancing; -q (without --progress) and --no-progress turn it off.
    show = progress if progress is not None else (tty or not quiet)
    bar = Progress(pipeline.expected_frames, enabled=show, tty=tty, extra=extra, interval=status_interval,
                   estimated=pipeline.expected_frames_estimated,
                   detail=(lambda: _stage_timings(pipeline)) if verbose else None)
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
    if summary.interrupted and signals.signame:
        how = "aborted" if signals.count > 1 else "stopped"
        done = "outputs closed" if signals.count > 1 else "outputs flushed"
        click.echo(f"streamtrt: {how} by {signals.signame} after {summary.frames} frames; {done}", err=True)
        sys.exit(exit_code(signals.signame))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_verbose_option
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
@_verbose_option
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
        from .config import load_config
        from .errors import ConfigError

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
@click.option("--dla-core", "dla_core", type=click.IntRange(min=0), metavar="N",
              help="Shorthand for --set tensorrt.dla_core=N: build for this DLA core (Jetson; trtexec --useDLACore).")
@click.option("--allow-gpu-fallback/--no-gpu-fallback", "gpu_fallback", default=None,
              help="Shorthand for --set tensorrt.gpu_fallback=true|false: layers DLA cannot run go to the GPU "
                   "(default) or fail the build (trtexec --allowGPUFallback).")
@click.option("--calib", "calib", type=click.Path(exists=True), metavar="PATH",
              help="Shorthand for --set tensorrt.calibration.source=PATH (a video or image folder/glob, relative "
                   "to the working directory): INT8 calibration data; implies --precision int8 (trtexec --calib).")
@click.option("--force", is_flag=True, help="Rebuild even if a valid engine is cached.")
@_verbose_option
@_guard
def build(targets: tuple[str, ...], overrides: tuple[str, ...], precision: Optional[str], batch: Optional[int],
          dla_core: Optional[int], gpu_fallback: Optional[bool], calib: Optional[str], force: bool) -> None:
    """Build (or find cached) TensorRT engines for CONFIG files or ONNX models.

    Several targets pre-build engines for a fleet. An ONNX model is built with default settings
    plus the overrides, e.g. `streamtrt build model.onnx --precision fp16 --set tensorrt.profile.max_batch=8`.
    """
    from .config import load_config
    from .engine.tensorrt import load_tensorrt, prepare_engine

    import logging

    extra = list(overrides) + build_overrides(precision, batch, dla_core, gpu_fallback, calib)
    configs = []  # every target's config first: a config error (exit 2) before a missing TensorRT (exit 5)
    for target in targets:
        if target.lower().endswith(".onnx"):
            cfg = load_config({"source": "unused", "model": {"path": os.path.abspath(target)}}, extra)
        else:
            cfg = load_config(target, extra)
        t = cfg.tensorrt
        logging.getLogger("streamtrt").info(
            "%s: precision %s, batch %d, dla_core %s, gpu_fallback %s, calibration %s", target, t.precision,
            cfg.runtime.batch_size, t.dla_core, t.gpu_fallback, t.calibration.source)
        configs.append((target, cfg))
    trt = load_tensorrt()
    for target, cfg in configs:
        seen = set()
        for engine_cfg in cfg.engine_configs():  # one per DLA core of a tensorrt.dla_core list
            if engine_cfg.tensorrt.dla_core in seen:
                continue
            seen.add(engine_cfg.tensorrt.dla_core)
            prepared = prepare_engine(engine_cfg, report=lambda m: click.echo(m, err=True), trt=trt, force=force)
            state = "built" if prepared.built else "cached"
            click.echo(f"{target}: {state} {prepared.path} (key {prepared.key.digest}, {prepared.key.precision}, "
                       f"{prepared.key.tensorrt}, {prepared.key.device})")


def build_overrides(precision: Optional[str], batch: Optional[int], dla_core: Optional[int],
                    gpu_fallback: Optional[bool], calib: Optional[str]) -> list[str]:
    """``build``'s shorthands as ``--set`` overrides (the config keys they stand for)."""
    from .errors import ConfigError

    extra = []
    if calib:
        if precision not in (None, "int8"):
            raise ConfigError(f"--calib is INT8 calibration data; it does not apply to --precision {precision}")
        precision = "int8"
        extra.append(f"tensorrt.calibration.source={json.dumps(os.path.abspath(calib))}")
    if precision:
        extra.append(f"tensorrt.precision={precision}")
    if batch:
        extra.append(f"runtime.batch_size={batch}")
    if dla_core is not None:
        extra.append(f"tensorrt.dla_core={dla_core}")
    if gpu_fallback is not None:
        extra.append(f"tensorrt.gpu_fallback={'true' if gpu_fallback else 'false'}")
    return extra


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--calib", "calib", required=True, metavar="SOURCE",
              help="Calibration frames: a video file or image folder, ideally from the cameras the model will watch.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output model (default: MODEL.int8.onnx).")
@click.option("--frames", type=click.IntRange(min=1), default=128, show_default=True,
              help="Calibration frames, from the start of the source.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="A job config: its model.input preprocessing is used (the model path is MODEL).")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True, help="Override a config value (repeatable).")
@click.option("--method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax", show_default=True,
              help="Calibration method (ONNX Runtime's calibrators).")
@click.option("--for", "target", type=click.Choice(["cpu", "tensorrt"]), default="cpu", show_default=True,
              help="cpu: uint8 activations for ONNX Runtime's CPU EP; tensorrt: symmetric int8 (explicit quantization).")
@click.option("--per-tensor", is_flag=True, help="Per-tensor weight scales (default: per-channel).")
@click.option("--reduce-range/--no-reduce-range", default=None,
              help="7-bit weights (default: on for the CPU target on x86 without VNNI).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Calibration-set cache (default ~/.cache/streamtrt/calibration).")
@_guard
def quantize(model: str, calib: str, output: Optional[str], frames: int, config_path: Optional[str],
             overrides: tuple[str, ...], method: str, target: str, per_tensor: bool, reduce_range: Optional[bool],
             cache_dir: Optional[str]) -> None:
    """Write a static INT8 (Q/DQ) copy of MODEL, calibrated on frames of --calib through the
    pipeline's own decode and preprocessing. Run it with the same config: --set model.path=OUT."""
    from pathlib import Path as _Path

    from .config import load_config
    from .engine.quantize import quantize_model

    extra = list(overrides) + [f"model.path={json.dumps(os.path.abspath(model))}"]
    cfg = load_config(config_path, extra) if config_path else load_config(
        {"source": calib, "model": {"path": os.path.abspath(model)}}, list(overrides))
    result = quantize_model(cfg, calib, _Path(output) if output else None, frames, method, target,
                            per_channel=not per_tensor, reduce_range=reduce_range,
                            cache_dir=_Path(cache_dir) if cache_dir else None, report=_notice)
    for reason in result.reasons:
        _notice(reason)
    if not config_path:
        _notice("preprocessing was the config defaults: give --config JOB.yaml to calibrate with the job's own")
    click.echo(str(result.output))


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="For a model: also show the engine key and cache state this config gives.")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True, help="Override a config value (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_verbose_option
@_guard
def inspect(path: str, config_path: Optional[str], overrides: tuple[str, ...], as_json: bool) -> None:
    """Show an engine's key, I/O tensors, precision, profiles and size, or an ONNX model's
    hash, I/O and the engine key it would get."""
    from pathlib import Path as _Path

    from .config import load_config
    from .engine.tensorrt.inspect import format_inspection, inspect_engine, inspect_model

    p = _Path(path)
    if p.suffix.lower() == ".onnx":
        extra = [f"model.path={json.dumps(str(p.resolve()))}"] + list(overrides)
        cfg = load_config(config_path, extra) if config_path else load_config(
            {"source": "unused", "model": {"path": str(p.resolve())}}, list(overrides))
        info = inspect_model(p, cfg)
    else:
        info = inspect_engine(p)
    click.echo(json.dumps(info, indent=2) if as_json else format_inspection(info))


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", "source", metavar="URI", help="The job's input (default: a placeholder to edit).")
@click.option("--set", "overrides", metavar="KEY=VALUE", multiple=True,
              help="Settle a value the model does not say, e.g. --set model.input.size=[480,640] (repeatable).")
@_guard
def init(model: str, source: Optional[str], overrides: tuple[str, ...]) -> None:
    """Print a job YAML for MODEL with what was detected in it, each value commented with its source.

    `streamtrt init model.onnx > job.yaml`, edit, then `streamtrt run job.yaml`."""
    from .config import load_config
    from .jobfile import render_job

    src = os.path.abspath(source) if source and os.path.exists(source) else source
    raw = {"model": {"path": os.path.abspath(model)}, "source": src or "video.mp4"}
    cfg = load_config(raw, list(overrides))
    click.echo(render_job(cfg, source_given=source is not None), nl=False)


@main.group()
def service() -> None:
    """Run a job as a systemd service."""


@service.command("install")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--name", help="Unit name (default: streamtrt-<config name>).")
@click.option("--user", help="Run as this user.")
@click.option("--unit-dir", type=click.Path(file_okay=False), default="/etc/systemd/system", show_default=True)
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="The service's working directory, where relative sink paths land (default: the current one).")
@click.option("--print", "print_only", is_flag=True, help="Print the unit instead of writing it.")
@_verbose_option
@_guard
def service_install(config: str, name: Optional[str], user: Optional[str], unit_dir: str, workdir: Optional[str],
                    print_only: bool) -> None:
    """Write a systemd unit for CONFIG: restart on failure, journal logs, graceful stop (SIGTERM).

    The service runs in the current directory (or --workdir), so outputs land where
    `streamtrt run CONFIG` run here would put them."""
    from pathlib import Path as _Path

    from .config import load_config
    from .service import render_unit, unit_name

    path = _Path(config)
    load_config(path)  # refuse to install a config that would not run
    unit = unit_name(path, name)
    text = render_unit(path, unit, user=user, workdir=_Path(workdir) if workdir else None)
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
