"""``streamtrt service install CONFIG``: a systemd unit that runs a job 24/7.

Restart on failure, logs to the journal, and a graceful stop: systemd sends SIGTERM (its default,
named in the unit), which makes streamtrt stop reading, drain what is in flight and flush its sinks
(and outboxes) before exiting with 143 (which the unit counts as a clean stop); SIGKILL only after
TimeoutStopSec. Relative sink paths resolve against WorkingDirectory: the folder ``install`` ran in
(or ``--workdir``), as they would for ``streamtrt run`` there. Credentials go in an optional
environment file, never in the unit.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional

from .errors import ConfigError


def unit_name(config: Path, name: Optional[str] = None) -> str:
    base = name or f"streamtrt-{config.stem}"
    if not re.fullmatch(r"[A-Za-z0-9:_.@-]+", base):
        raise ConfigError(f"service name {base!r}: use letters, digits and :_.@- only")
    return base if base.endswith(".service") else f"{base}.service"


def render_unit(config: Path, name: str, user: Optional[str] = None, python: str = sys.executable,
                env_file: Optional[Path] = None, workdir: Optional[Path] = None) -> str:
    """The unit's text. ``workdir``: where relative sink paths land (default: the current directory)."""
    config = config.resolve()
    workdir = (workdir or Path.cwd()).resolve()
    env_file = env_file or Path("/etc/streamtrt") / f"{name.removesuffix('.service')}.env"
    lines = [
        "[Unit]",
        f"Description=streamtrt: {config.name}",
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={python} -m streamtrt run {config} --no-progress",
        f"WorkingDirectory={workdir}",
        "Environment=PYTHONUNBUFFERED=1",
        f"EnvironmentFile=-{env_file}",
        # Fewer glibc malloc arenas: with ~20 threads, per-thread arenas fragment and resident memory
        # creeps on 24/7 runs (README, "Soak"); an EnvironmentFile setting still overrides it.
        "Environment=MALLOC_ARENA_MAX=2",
        "Restart=on-failure",
        "RestartSec=5",
        "KillSignal=SIGTERM",
        "SuccessExitStatus=143",
        "TimeoutStopSec=60",
        "StandardOutput=journal",
        "StandardError=journal",
    ]
    if user:
        lines.append(f"User={user}")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)
