"""The interpreter ``sluice run`` starts an application's workers with.

An application with ``python/requirements.txt`` runs on its own environment
(:mod:`sluice.environments`), built here the first time (a long step, told as one); one without
runs on Sluice's interpreter.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sluice.application import Application
from sluice.environments import ensure_environment, plan_environment
from sluice.local.events import RunEvents

__all__ = ["worker_python"]


def worker_python(
    app: Application, app_dir: Path, events: RunEvents, envs_dir: Path | None = None
) -> str:
    """The application's environment's interpreter (built first if needed), or Sluice's.
    ``envs_dir``: where environments are kept (None: the user cache).

    Raises :class:`sluice.environments.EnvironmentBuildFailed` when the environment cannot be
    built.
    """
    environment = plan_environment(app_dir, envs_dir)
    if environment is None:
        return sys.executable
    if environment.complete:
        ensure_environment(environment)
        what = "(cached)"
    else:
        started = time.monotonic()
        events.working(f"building the Python environment for {app.name} (first time only)")
        try:
            ensure_environment(environment)
        finally:
            events.working(None)
        what = f"(built in {time.monotonic() - started:.0f}s)"
    events.done(f"Python environment from python/requirements.txt: {environment.path} {what}")
    return str(environment.python)
