"""The ``streamtrt`` command line. It uses the same Python API as everyone else.

One module per group of commands; each registers its commands on :data:`~streamtrt.cli.app.main`
when imported, so a new command is one new module and one line below.
"""

from . import models, run, service, tools  # noqa: F401  (each registers its commands)
from ..cluster import cli as _cluster  # noqa: F401,E402  (`streamtrt cluster`: registers on import)
from .app import main
from .models import build_overrides
from .progress import Progress

__all__ = ["main", "Progress", "build_overrides"]
