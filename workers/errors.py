"""Errors of the worker runtime."""

from __future__ import annotations

from sluice.errors import SluiceError


class WorkerError(SluiceError):
    """Root of the runtime's errors."""


class AgentLoadError(WorkerError, ImportError):
    """A user agent could not be imported, instantiated or initialised; names agent and class."""

    def __init__(self, agent_id: str, class_name: str | None, reason: str) -> None:
        what = f" (className {class_name})" if class_name else ""
        super().__init__(f"agent {agent_id}{what}: {reason}")
        self.agent_id = agent_id
        self.class_name = class_name
        self.reason = reason


class StateDirectoryBusy(WorkerError, RuntimeError):
    """Another process holds the lock of an agent's persistent state directory."""


class ExecutorFailed(WorkerError, RuntimeError):
    """``errors.on-failure: fail`` (or a FatalError) stopped the executor; exit non-zero."""


class CamelSourceError(WorkerError, RuntimeError):
    """A camel-source agent could not get its jars, Java, or a running Camel route."""
