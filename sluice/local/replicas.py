"""The workers of ``sluice run`` as the replicas LangStream's control plane reports.

``langstream apps get`` and ``apps list`` print each executor's replicas (running / all); under
``sluice run`` an executor has one replica, its worker process, whose state the
:class:`~sluice.local.watch.WorkerWatch` knows.
"""

from __future__ import annotations

from typing import Final

from gateway.description import ReplicaState, ReplicaStatus, WorkerStates
from sluice.local.watch import State, WorkerWatch

__all__ = ["replica_states"]

_STATUS: Final[dict[State, ReplicaStatus]] = {
    "starting": "INITIALIZING",
    "ready": "RUNNING",
    "failed": "ERROR",
}


def replica_states(watch: WorkerWatch) -> WorkerStates:
    """Executor id -> its one replica: running when ready, initializing while it starts, in
    error with the reason when it failed."""
    states: dict[str, tuple[ReplicaState, ...]] = {}
    for name in watch.names():
        status = watch.status(name)
        reason = status.reason if status.state != "ready" else None
        states[name] = (ReplicaState(_STATUS[status.state], reason),)
    return states
