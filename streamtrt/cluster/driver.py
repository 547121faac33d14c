"""Connecting to Ray, and the actors' Ray options (resources, names, restarts).

Security: with no address, a local Ray is started bound to 127.0.0.1 (its GCS, raylet and object
store), without the dashboard; the metrics endpoint binds 127.0.0.1 too. Actor and task names carry
stream ids and redacted file names only, never a URI's credentials.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Optional

from ..errors import BackendUnavailableError
from ..config import ClusterConfig

__all__ = ["require_ray", "connect", "probe_address", "controller_actor", "LOOPBACK"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
RAY_HINT = "Ray is not installed: pip install 'streamtrt[cluster]'"


def require_ray():
    """The ``ray`` module, or :class:`BackendUnavailableError` with the install hint."""
    try:
        import ray
    except ImportError:
        raise BackendUnavailableError(RAY_HINT) from None
    return ray


def _loopback(address: Optional[str]) -> bool:
    if address in (None, "auto", "local"):
        return True
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in LOOPBACK


PROBE_TIMEOUT_S = 3.0
"""Seconds a TCP connect to ``--address`` may take before the cluster counts as unreachable."""


def probe_address(address: Optional[str], timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """For ``HOST:PORT`` and ``ray://HOST:PORT``: a TCP connect to it, so that a wrong address fails in
    seconds (``ray.init`` retries it for minutes, printing warnings). :class:`BackendUnavailableError`
    when nothing answers; other addresses (``auto``, None) are left to Ray."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        why = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or type(exc).__name__)
        raise BackendUnavailableError(f"cannot reach Ray at {address} ({why}; start one with `ray start --head`, "
                                      "or check --address)") from None


def connect(address: Optional[str], namespace: str, start: bool = False):
    """Connect this process to Ray: ``address`` ``auto`` (the cluster started on this machine by
    ``ray start``), ``HOST:PORT`` or ``ray://HOST:PORT``; None with ``start``: start a local Ray on
    127.0.0.1 (GCS, raylet, object store) with the dashboard off. Returns the ``ray`` module."""
    if _loopback(address):
        # Ray turns 127.0.0.1 into the machine's address before connecting; a Ray that listens on
        # loopback only is then unreachable. This (Ray's own) switch keeps loopback as the node IP.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = require_ray()
    if ray.is_initialized():
        return ray
    probe_address(address)
    kwargs: dict[str, Any] = {"namespace": namespace, "log_to_driver": False, "configure_logging": False}
    try:
        if address is None and start:
            # "local": a new Ray even where one runs already (None would join the last one started here)
            ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, **kwargs)
        else:
            ray.init(address=address or "auto", **kwargs)
    except ConnectionError as exc:
        raise BackendUnavailableError(f"cannot reach a Ray cluster at {address or 'auto'}: {str(exc).splitlines()[0]} "
                             "(start one with `ray start --head`, or pass --address)") from None
    return ray


def controller_actor(cluster: ClusterConfig, ray, node_id: Optional[str] = None):
    """The :class:`Controller` actor class: named, restartable (``max_restarts=-1``: a new process
    re-reads its state from the workers), preferably on ``node_id`` (the driver's node)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from .controller import Controller, controller_name

    opts: dict[str, Any] = {"name": controller_name(cluster), "max_restarts": -1, "max_task_retries": -1,
                            "max_concurrency": 16, "num_cpus": 0}
    if node_id:
        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=True)
    return ray.remote(Controller).options(**opts)
