"""``streamtrt service``: systemd units for 24/7 runs."""

from __future__ import annotations

from typing import Optional

import click

from .app import _guard, _verbose_option, main


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

    from ..config import load_config
    from ..service import render_unit, unit_name

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
        from ..errors import StreamTRTError

        raise StreamTRTError(f"cannot write {target}: {exc.strerror or exc} (run as root, or pass --unit-dir)") from None
    click.echo(f"wrote {target}\nnext: sudo systemctl daemon-reload && sudo systemctl enable --now {unit}\n"
               f"logs: journalctl -u {unit} -f")


if __name__ == "__main__":
    main()
