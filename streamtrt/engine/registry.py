"""The runner kinds: ``RUNNERS`` maps a plan's runner name to a factory.

A factory is ``factory(settings, *, spin, report, workers) -> Runner`` taking
:class:`~streamtrt.engine.settings.EngineSettings`; it returns the runner activated (or raises
the runner's errors). Each runner module registers its own kinds with
``@RUNNERS.register("name")``; ``streamtrt/engine/__init__.py`` imports the module.
"""

from __future__ import annotations

from typing import Callable, Optional

from ..registry import Registry
from .base import Runner
from .settings import EngineSettings

RunnerFactory = Callable[..., Runner]
"""``(settings: EngineSettings, *, spin: bool, report: Callable[[str], None] | None, workers: int) -> Runner``."""

RUNNERS: Registry[RunnerFactory] = Registry("runner")


def create_runner(kind: str, settings: EngineSettings, *, spin: bool = True,
                  report: Optional[Callable[[str], None]] = None, workers: int = 1) -> Runner:
    """Create and activate the runner ``kind`` (a plan's runner name) for ``settings``.

    ``spin=False`` keeps idle CPU-runner threads from busy-waiting, for runs where other stages
    share the cores; ``workers`` > 1 runs that many batches side by side on the CPU runner;
    ``report`` receives progress lines (an engine build takes minutes).

    Raises :class:`~streamtrt.errors.BackendUnavailableError` for an unknown kind or a missing
    backend, :class:`~streamtrt.errors.ModelError` when the model does not load."""
    from ..errors import BackendUnavailableError

    factory = RUNNERS.get(kind)
    if factory is None:
        raise BackendUnavailableError(RUNNERS.unknown_message(kind, "runtime.runner"))
    runner = factory(settings, spin=spin, report=report, workers=workers)
    if not runner.is_active:
        runner.activate()
    return runner
