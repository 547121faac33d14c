"""The HTTP endpoints of a run, started by the caller around it (the CLI's ``run``; an embedder
that sets ``metrics.enabled`` or ``control.enabled`` and iterates a :class:`Pipeline` itself)::

    with Pipeline(config) as pipe, serve(pipe, config):
        for result in pipe:
            ...

Both bind ``host`` (127.0.0.1 by default) and log their address; port 0 picks a free port.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional

from ..config import Config
from .control_api import ControlServer
from .metrics import MetricsServer

if TYPE_CHECKING:
    from .pipeline import Pipeline

log = logging.getLogger("streamtrt")


@dataclass
class Servers:
    """The endpoints :func:`serve` started (None where the config leaves them off)."""

    metrics: Optional[MetricsServer] = None
    control: Optional[ControlServer] = None


@contextlib.contextmanager
def serve(pipeline: "Pipeline", config: Config) -> Iterator[Servers]:
    """Serve ``/metrics`` (``metrics.enabled``) over ``pipeline.stats()`` and the control API
    (``control.enabled``) over ``pipeline`` while the block runs; both close when it ends.
    Raises :class:`~streamtrt.errors.StreamTRTError` when an address cannot be bound."""
    servers = Servers()
    try:
        if config.metrics.enabled:
            m = config.metrics
            servers.metrics = MetricsServer(pipeline.stats, m.host, m.port)
            log.warning("metrics at http://%s:%d/metrics", *servers.metrics.address[:2])
        if config.control.enabled:
            c = config.control
            servers.control = ControlServer(pipeline, c.host, c.port)
            log.warning("control at http://%s:%d/streams", *servers.control.address[:2])
        yield servers
    finally:
        if servers.metrics is not None:
            servers.metrics.close()
        if servers.control is not None:
            servers.control.close()
