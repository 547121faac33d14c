"""The ``streamtrt`` command group, its options, and how errors become one line and an exit code."""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from ..errors import StreamTRTError


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
