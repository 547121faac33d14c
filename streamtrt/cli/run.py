"""``streamtrt run``: a job from a config, or a model and a source."""

from __future__ import annotations

import json
import os
import sys
from typing import Optional

import click

from ..errors import StreamTRTError
from ..sinks import sink_usage
from .app import _INTERRUPTED, _guard, _notice, _signal_notice, _verbose, _verbose_option, main
from .progress import Progress, _describe_run, _stage_timings, _stream_states


DEFAULT_MODEL_SINKS = ["jsonl:-"]
"""Sinks of a run without a config (``--model``) and without ``--sink``: detections as JSONL on stdout
(the summary goes to stderr), so nothing is written to disk unasked."""


def _model_run_config(config: Optional[str], model: Optional[str], sources: tuple[str, ...],
                      sinks: tuple[str, ...]):
    """The config source and extra overrides for ``run [CONFIG] [--model M]``."""
    from ..errors import ConfigError

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
              help="Replace the config's sinks (repeatable): " + sink_usage() + ", "
                   "or a bare path whose suffix picks the kind. Filters in the query: "
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
    from ..signals import StopSignals

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
    from ..config import load_config
    from ..runtime import Pipeline, serve
    from ..signals import exit_code

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

    def extra() -> str:
        stats = pipeline.stats()
        parts = [_stream_states(stats)]
        if stats.sinks:  # sinks that deliver through an outbox
            parts.append(f"outbox {stats.pending_records} pending")
        return "  ".join(p for p in parts if p)

    verbose = _verbose()
    if verbose:
        _describe_run(pipeline)
    # On a terminal the line is redrawn in place; redirected, one plain line every interval (10 s),
    # so a log shows the run advancing; -q (without --progress) and --no-progress turn it off.
    show = progress if progress is not None else (tty or not quiet)
    bar = Progress(pipeline.stats, enabled=show, tty=tty, extra=extra, interval=status_interval,
                   detail=(lambda: _stage_timings(pipeline.stats())) if verbose else None)
    try:
        with pipeline, serve(pipeline, pipeline.config):  # the endpoints the config enables, during the run
            summary = pipeline.run()
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
