"""Which TCP ports a process and its descendants listen on.

LangStream gave every service container port 8000, so LangStream services often hard-code it
(``uvicorn.run(app, host="0.0.0.0", port=8000)``) instead of reading ``PORT``. When ``PORT``
refuses connections, the worker looks here for the port its service really serves on, so the
gateway can be routed there. psutil reads the process table of the platform (``/proc`` on
Linux), which is what makes this work on a developer's Mac as well.
"""

from __future__ import annotations

import os

import psutil


def listening_ports(pid: int | None = None) -> set[int]:
    """The TCP ports (IPv4 and IPv6) that ``pid`` (default: this process) or any of its
    descendants listen on. Processes that end or cannot be inspected meanwhile are skipped."""
    try:
        root = psutil.Process(pid if pid is not None else os.getpid())
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return set()
    ports: set[int] = set()
    for process in processes:
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        ports.update(
            c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN and c.laddr
        )
    return ports
