"""The agent runtime: a worker process runs one planned executor (docs/agents.md).

The names below are imported from their modules on first use: an application's own Python
environment (push mode) imports ``workers.push_app`` without Quart or click, and ``sluice``
commands import ``workers.supervisor`` without the agent runtime. ``workers.main.main`` is not
here: importing ``workers.main`` sets the package's ``main`` to the module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workers.adapters import adapt
    from workers.agents import LoadedAgent
    from workers.chain import Chain
    from workers.errors import AgentLoadError, ExecutorFailed
    from workers.loading import PYTHON_AGENT_TYPES, instantiate
    from workers.policy import after_failure
    from workers.supervisor import ChildSpec, Supervisor

__all__ = [
    "PYTHON_AGENT_TYPES",
    "AgentLoadError",
    "Chain",
    "ChildSpec",
    "ExecutorFailed",
    "LoadedAgent",
    "Supervisor",
    "adapt",
    "after_failure",
    "instantiate",
]

_HOMES = {
    "adapt": "workers.adapters",
    "LoadedAgent": "workers.agents",
    "Chain": "workers.chain",
    "AgentLoadError": "workers.errors",
    "ExecutorFailed": "workers.errors",
    "PYTHON_AGENT_TYPES": "workers.loading",
    "instantiate": "workers.loading",
    "after_failure": "workers.policy",
    "ChildSpec": "workers.supervisor",
    "Supervisor": "workers.supervisor",
}


def __getattr__(name: str) -> object:
    """Import a re-exported name from its home on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
