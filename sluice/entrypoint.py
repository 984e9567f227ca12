"""What the entry points of the gateway and the worker share: the port, the log format and the
supervisor's environment variable.

Both run as containers (Knative sets ``PORT``) and as ``sluice run`` children, whose output
``sluice run`` reads line by line (``LEVEL logger: message`` on stdout).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Mapping

DEFAULT_PORT = 8080

SUPERVISOR_PID_ENV = "SLUICE_SUPERVISOR_PID"
"""Names the supervisor's pid in every child it starts (``sluice run``), so that a worker whose
supervisor is gone stops rather than consume for nobody."""


def port_from(environ: Mapping[str, str]) -> int:
    """The serving port when no ``--port`` was given: ``$PORT`` (Knative's), else 8080.

    >>> port_from({"PORT": "9000"}), port_from({}), port_from({"PORT": "x"})
    (9000, 8080, 8080)
    """
    value = environ.get("PORT", "")
    return int(value) if value.isdigit() else DEFAULT_PORT


def configure_logging() -> None:
    """INFO and above to stdout as ``LEVEL logger: message``; aiokafka's chatter only from
    WARNING (it logs every connection at INFO)."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def ignore_stop_signals(loop: asyncio.AbstractEventLoop) -> None:
    """After a stop that was asked for: SIGTERM and SIGINT are ignored until the process exits.

    Closing the event loop would put Python's defaults back (KeyboardInterrupt for SIGINT, death
    for SIGTERM), so a repeated stop signal (a supervisor's second SIGTERM, a user's second
    Ctrl-C) would kill the process half-way through its exit. The loop's handlers are taken off
    here, before the loop closes.
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
