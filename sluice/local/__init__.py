"""``sluice run`` as a library: run an application on this machine (:func:`run_application`),
with what it tells while it runs (:class:`RunEvents`)."""

from __future__ import annotations

from sluice.local.events import RunEvents, Running, Worker
from sluice.local.runner import RunSettings, run_application
from sluice.local.watch import Status

__all__ = ["RunEvents", "RunSettings", "Running", "Status", "Worker", "run_application"]
