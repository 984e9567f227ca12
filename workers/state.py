"""Persistent state directories of agents, and the lock that keeps one process per directory.

Locally an agent with ``resources.disk`` keeps its files in
``<state-root>/<tenant>/<application>/<agent-id>``, which survives restarts and redeploys. Two
workers must never write the same directory at once (a rollout starting the new worker before the
old one stopped, or two ``sluice run`` of the same application), so the worker holds an exclusive
``flock`` on a lock file while it runs.

The lock file is a sibling of the directory,
``<state-root>/<tenant>/<application>/.<agent-id>.lock``, not a file inside it: the agent's
directory holds only the agent's own files, and an agent that empties its directory cannot delete
the lock from under itself (on Knative, where each directory is a volume of its own, the lock file
is ``.sluice.lock`` inside it: see :func:`volume_state_directory`). The file holds the pid of the
process holding the lock, for the error message of the next one. It is never deleted: unlinking a
lock file while another process waits on it would let two processes each hold "the" lock.

``flock`` locks belong to the open file, so the kernel releases them when the holder exits, even
on SIGKILL: a crashed worker never leaves a stale lock behind. On Knative the directory is a
ReadWriteOnce volume of a service with exactly one replica, so no lock is taken there.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

import platformdirs

from workers.errors import StateDirectoryBusy

_POLL = 0.1


def default_state_root() -> Path:
    """Where state lives when neither ``--state-dir`` nor ``SLUICE_STATE_DIR`` says otherwise."""
    return platformdirs.user_data_path("sluice") / "state"


def state_directory(root: Path, tenant: str, application: str, agent_id: str) -> Path:
    """``<root>/<tenant>/<application>/<agent-id>``; each part must be one safe path segment."""
    for what, part in (("tenant", tenant), ("application", application), ("agent id", agent_id)):
        _check_segment(what, part)
    return root / tenant / application / agent_id


def volume_state_directory(root: Path, agent_id: str) -> Path:
    """``<root>/<agent-id>``: on Knative each agent's directory is a volume mounted there
    (knative/storage.py), shared by the pods of a rollout, so its lock file goes inside it."""
    _check_segment("agent id", agent_id)
    return root / agent_id


VOLUME_LOCK_FILE = ".sluice.lock"
"""The lock file inside a volume state directory; agents must leave it alone."""


def _check_segment(what: str, part: str) -> None:
    if not part:
        problem = "must not be empty"
    elif "/" in part or "\\" in part or "\0" in part:
        problem = "must be a single path segment (no '/', '\\' or NUL)"
    elif part.startswith("."):
        # Covers '.' and '..', and keeps names free for the hidden lock files next to directories.
        problem = "must not start with '.'"
    else:
        return
    raise ValueError(f"{what} {part!r} of a state directory path {problem}")


class StateLock:
    """Exclusive use of a state directory by this process, for as long as the lock is held.

    Creates the directory. ``inside`` puts the lock file in the directory (a volume shared by
    the pods of a rollout) rather than beside it. ``wait`` is how many seconds to keep retrying
    while another process holds the lock (a rollout overlapping the old worker) before raising
    :class:`~workers.errors.StateDirectoryBusy`; 0 fails at once. A lock that is never released
    is held until the process exits. Use it as ``with`` (the wait
    sleeps the thread) or ``async with`` (the wait sleeps the task)::

        async with StateLock(state_directory(root, tenant, app, agent_id), wait=30) as directory:
            ...  # directory is ours until the block ends or the process dies
    """

    def __init__(self, directory: Path, *, wait: float = 0.0, inside: bool = False) -> None:
        self.directory = directory
        self.lock_file = (
            directory / VOLUME_LOCK_FILE if inside else directory.parent / f".{directory.name}.lock"
        )
        self.wait = wait
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> Path:
        """Take the lock, sleeping the thread between attempts while ``wait`` allows."""
        deadline = time.monotonic() + self.wait
        while True:
            holder = self._try_acquire()
            if holder is None:
                return self.directory
            if time.monotonic() >= deadline:
                raise self._busy(holder)
            time.sleep(min(_POLL, max(0.0, deadline - time.monotonic())))

    async def acquire_async(self) -> Path:
        """Take the lock, sleeping the task between attempts while ``wait`` allows."""
        deadline = time.monotonic() + self.wait
        while True:
            holder = self._try_acquire()
            if holder is None:
                return self.directory
            if time.monotonic() >= deadline:
                raise self._busy(holder)
            await asyncio.sleep(min(_POLL, max(0.0, deadline - time.monotonic())))

    def release(self) -> None:
        """Give the lock up (idempotent). The lock file stays; only its pid is cleared."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _try_acquire(self) -> str | None:
        """None when the lock is now ours, else what the lock file says about its holder."""
        if self._fd is not None:
            raise RuntimeError(f"the lock of state directory {self.directory} is already held")
        self.directory.mkdir(parents=True, exist_ok=True)
        # os.open descriptors are not inherited by child processes, so a service or JVM the
        # worker starts can never keep the lock alive after the worker died.
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            os.close(fd)
            return holder
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return None

    def _busy(self, holder: str) -> StateDirectoryBusy:
        who = f"process {holder}" if holder.isdigit() else "another process"
        waited = f" (waited {self.wait:g}s)" if self.wait > 0 else ""
        return StateDirectoryBusy(
            f"state directory {self.directory} is in use by {who}{waited}: another worker of the "
            f"same agent is running (lock file {self.lock_file})"
        )

    def __enter__(self) -> Path:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> Path:
        return await self.acquire_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
