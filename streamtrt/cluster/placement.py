"""Which worker takes a stream: the controller's assignment policy, as plain functions.

Policy (documented in the README, "Many machines"):

- **Capacity**: a worker takes at most ``cluster.streams_per_worker`` streams; a stream for which no
  worker has room waits in state ``pending``.
- **Least loaded**: a new (or orphaned) stream goes to the ready worker with the fewest streams;
  ties go to the node with the fewest streams, then to the worker name (deterministic).
- **Sticky**: a running stream never moves, except when its worker dies, its node leaves or it is
  drained. A node that joins takes new and orphaned streams only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

__all__ = ["Slot", "choose_worker", "plan_assignments"]


@dataclass(frozen=True)
class Slot:
    """A ready worker as the policy sees it: its name, node and current stream count."""

    worker: str
    node: str
    streams: int


def choose_worker(slots: Iterable[Slot], capacity: int) -> Optional[str]:
    """The worker that takes the next stream, or None when every worker is full."""
    slots = list(slots)
    per_node: dict[str, int] = {}
    for s in slots:
        per_node[s.node] = per_node.get(s.node, 0) + s.streams
    free = [s for s in slots if s.streams < capacity]
    if not free:
        return None
    return min(free, key=lambda s: (s.streams, per_node[s.node], s.worker)).worker


def plan_assignments(pending: list[str], slots: Iterable[Slot], capacity: int) -> dict[str, str]:
    """Stream id -> worker for the ``pending`` streams, in order, updating loads as it goes.
    Streams left out have no room."""
    loads = {s.worker: s for s in slots}
    out: dict[str, str] = {}
    for sid in pending:
        w = choose_worker(loads.values(), capacity)
        if w is None:
            break
        out[sid] = w
        s = loads[w]
        loads[w] = Slot(s.worker, s.node, s.streams + 1)
    return out
