"""The interpreter ``sluice run`` starts an application's workers with.

An application with ``python/requirements.txt`` runs on its own environment
(:mod:`sluice.environments`), built here the first time with a status line; one without runs on
Sluice's interpreter. ``SLUICE_PYTHON_ENVS_DIR`` moves the environments out of the user cache.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from rich.console import Console

from sluice.application import Application
from sluice.environments import ensure_environment, plan_environment

ENVS_DIR_ENV = "SLUICE_PYTHON_ENVS_DIR"


def worker_python(app: Application, app_dir: Path, console: Console | None = None) -> str:
    """The application's environment's interpreter (built first if needed), or Sluice's.

    Raises :class:`sluice.environments.EnvironmentBuildFailed` when the environment cannot be
    built.
    """
    console = console or Console(stderr=True)
    root = os.environ.get(ENVS_DIR_ENV)
    environment = plan_environment(app_dir, Path(root) if root else None)
    if environment is None:
        return sys.executable
    if environment.complete:
        ensure_environment(environment)
        what = "(cached)"
    else:
        started = time.monotonic()
        with console.status(f"building the Python environment for {app.name} (first time only)"):
            ensure_environment(environment)
        what = f"(built in {time.monotonic() - started:.0f}s)"
    console.print(
        f"[green]✔[/green] Python environment from python/requirements.txt: "
        f"{environment.path} {what}",
        highlight=False,
        soft_wrap=True,
    )
    return str(environment.python)
