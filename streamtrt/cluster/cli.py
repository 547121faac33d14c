"""``streamtrt cluster run|status|add|remove|drain|stop``: one job on a Ray cluster.

Without Ray installed every command says so in one line and exits 5."""

from __future__ import annotations

import json
import sys
import threading
from typing import Optional

import click

from ..cli.app import _guard, main
from ..errors import ConfigError

_ADDRESS = "Ray cluster: auto (the one `ray start` started on this machine), HOST:PORT or ray://HOST:PORT"
ADDRESS_HELP = _ADDRESS + ". Without it: a new local Ray on 127.0.0.1 only, for this job."
JOB_ADDRESS_HELP = _ADDRESS + " of the running job; default auto."


def _notice(message: str) -> None:
    click.echo(f"streamtrt: {message}", err=True)


def _load(config: str, overrides: tuple[str, ...]):
    from ..config import load_config

    return load_config(config, list(overrides))


def _connect(address: Optional[str], namespace: str):
    from .driver import connect

    return connect(address or "auto", namespace)


@main.group()
def cluster() -> None:
    """Run one job on a Ray cluster: streams spread over workers with failover, or a batch of files.
    Needs `pip install 'streamtrt[cluster]'`."""


@cluster.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--address", default=None, help=ADDRESS_HELP)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key.")
@click.option("--status-interval", type=float, default=10.0, show_default=True, help="Seconds between progress lines.")
@_guard
def run(config: str, address: Optional[str], overrides: tuple[str, ...], status_interval: float) -> None:
    """Run CONFIG on the cluster until its streams end (or Ctrl-C/SIGTERM: every worker drains and
    finalises its sinks). With cluster.batch set: every input file once, with a manifest."""
    from ..signals import StopSignals
    from .driver import connect

    cfg = _load(config, overrides)
    if cfg.cluster.batch is None:  # the job's own checks before Ray (which takes seconds to start)
        from .job import check_stream_job

        check_stream_job(cfg)
    # Ray first: ray.init installs its own SIGTERM handler (a crash report and abort), which the
    # stop handlers below then replace
    connect(address, cfg.cluster.namespace, start=address is None)
    stop, abort = threading.Event(), threading.Event()

    def on_stop(name: str) -> None:
        stop.set()
        _notice(f"{name}: stopping (draining every worker; a second signal kills them)")

    def on_abort(name: str) -> None:
        abort.set()
        stop.set()

    with StopSignals() as signals:
        signals.attach(on_stop, on_abort)
        if cfg.cluster.batch is not None:
            from .batch import run_batch

            res = run_batch(cfg, address, _notice, stop, status_interval)
            _notice(f"batch: {res['done']} done, {res['skipped']} skipped (complete), {len(res['failed'])} failed, "
                    f"{res['frames']} frames in {res['wall_s']:.1f} s")
            if res["failed"]:
                sys.exit(8)
        else:
            from .job import run_streams

            final = run_streams(cfg, address, _notice, stop, abort, status_interval,
                                stop_reason=lambda: signals.signame)
            from .status import progress_line

            _notice("final: " + progress_line(final))
            failed = [s for s in final["streams"] if s["state"] == "failed"]
            for s in failed:
                _notice(f"stream {s['id']} failed: {s['error']}")
            if failed:
                sys.exit(8)
        if signals.signame:
            from ..signals import exit_code

            sys.exit(exit_code(signals.signame))


def _controller(address: Optional[str], config: Optional[str], name: str, namespace: str):
    from ..config import ClusterConfig
    from .job import controller_handle

    c = _load(config, ()).cluster if config else ClusterConfig(name=name, namespace=namespace)
    ray = _connect(address, c.namespace)
    return ray, controller_handle(ray, c)


def _job_options(fn):
    fn = click.option("--namespace", default="streamtrt", show_default=True, help="cluster.namespace of the job.")(fn)
    fn = click.option("--name", default="streamtrt", show_default=True, help="cluster.name of the job.")(fn)
    fn = click.option("--config", "config", default=None, type=click.Path(dir_okay=False),
                      help="Read the job's name and namespace from this config.")(fn)
    return click.option("--address", default=None, help=JOB_ADDRESS_HELP)(fn)


@cluster.command()
@_job_options
@click.option("--json", "as_json", is_flag=True, help="The status as one JSON document.")
@_guard
def status(address, config, name, namespace, as_json: bool) -> None:
    """Each stream's worker, node, GPU, state, fps and p99; each worker's load."""
    from .status import format_table

    ray, ctl = _controller(address, config, name, namespace)
    st = ray.get(ctl.status.remote(), timeout=30)
    if as_json:
        for w in st["workers"]:
            w.pop("stats", None)
        click.echo(json.dumps(st, indent=1))
    else:
        click.echo(format_table(st))


def _answer(res: dict, done: str) -> None:
    if not res["ok"]:
        raise ConfigError(res["error"])
    click.echo(done)


@cluster.command()
@_job_options
@click.argument("uri")
@click.option("--id", "stream_id", required=True, help="Stream id (unique in the job).")
@click.option("--source-set", "fields", multiple=True, metavar="KEY=VALUE",
              help="Another key of the source (live=true, pace=true, transport=udp...).")
@_guard
def add(address, config, name, namespace, uri: str, stream_id: str, fields: tuple[str, ...]) -> None:
    """Add a stream URI to the running job (placed on the least-loaded worker)."""
    from ..config import parse_override
    from .state import check_local_file, validate_source

    source = {"uri": uri, "id": stream_id}
    for item in fields:
        path, value = parse_override(item)
        source[".".join(path)] = value
    # checked here, before Ray: the same messages and exit codes as `streamtrt run`
    source = check_local_file(validate_source(source))
    ray, ctl = _controller(address, config, name, namespace)
    _answer(ray.get(ctl.add.remote(source), timeout=30), f"added {stream_id}")


@cluster.command()
@_job_options
@click.argument("stream_id")
@_guard
def remove(address, config, name, namespace, stream_id: str) -> None:
    """Stop a stream (its frames in flight still reach the sinks)."""
    ray, ctl = _controller(address, config, name, namespace)
    _answer(ray.get(ctl.remove.remote(stream_id), timeout=30), f"removed {stream_id}")


@cluster.command()
@_job_options
@click.argument("target")
@_guard
def drain(address, config, name, namespace, target: str) -> None:
    """Move the streams of a worker (its name) or of a node (its IP or Ray node id) to the other
    workers, then stop it (its sinks finalised)."""
    ray, ctl = _controller(address, config, name, namespace)
    res = ray.get(ctl.drain.remote(target), timeout=30)
    _answer(res, f"draining {', '.join(res.get('workers', []))}")
