"""Child processes for ``sluice run``: one worker per executor, output prefixed, restarts.

A worker that exits non-zero (``errors.on-failure: fail``, a crash, a kill) is started again
with backoff, the way Kubernetes restarts a pod, so the failed record is redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("sluice.run")

SUPERVISOR_PID_ENV = "SLUICE_SUPERVISOR_PID"
"""Environment variable naming the supervisor's pid in every child it starts."""

Printer = Callable[[str, str], None]


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    health_port: int | None = None
    service_port: int | None = None


@dataclass
class _Child:
    spec: ChildSpec
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    task: asyncio.Task[None] | None = None


def print_prefixed(name: str, line: str) -> None:
    sys.stdout.write(f"[{name}] {line}\n")
    sys.stdout.flush()


class Supervisor:
    """Starts children, streams their output, restarts the failed ones until :meth:`stop`."""

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        printer: Printer = print_prefixed,
        backoff: tuple[float, float] = (1.0, 30.0),
        grace: float = 25.0,
    ) -> None:
        self._children = {spec.name: _Child(spec) for spec in specs}
        self._printer = printer
        self._backoff = backoff
        self._grace = grace
        self._stopping = asyncio.Event()

    def pid(self, name: str) -> int | None:
        process = self._children[name].process
        return process.pid if process is not None and process.returncode is None else None

    def restarts(self, name: str) -> int:
        return self._children[name].restarts

    async def start(self) -> None:
        for child in self._children.values():
            child.task = asyncio.create_task(self._keep_running(child), name=child.spec.name)

    async def _keep_running(self, child: _Child) -> None:
        delay = self._backoff[0]
        while not self._stopping.is_set():
            started = time.monotonic()
            code = await self._run_once(child)
            if self._stopping.is_set():
                return
            if code == 0:
                self._printer(child.spec.name, "exited")
                return
            if time.monotonic() - started > 60:
                delay = self._backoff[0]  # it ran fine for a while: start over from short waits
            self._printer(child.spec.name, f"exited with code {code}; restarting in {delay:.0f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(self._backoff[1], delay * 2)
            child.restarts += 1

    async def _run_once(self, child: _Child) -> int:
        process = await asyncio.create_subprocess_exec(
            *child.spec.argv,
            # The worker stops by itself when this process is gone (workers.main).
            env={**os.environ, **child.spec.env, SUPERVISOR_PID_ENV: str(os.getpid())},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        child.process = process
        assert process.stdout is not None
        async for raw in process.stdout:
            self._printer(child.spec.name, raw.decode("utf-8", "replace").rstrip("\n"))
        return await process.wait()

    async def stop(self) -> None:
        """SIGTERM every child, SIGKILL what is left after the grace period."""
        self._stopping.set()
        processes = [
            c.process
            for c in self._children.values()
            if c.process is not None and c.process.returncode is None
        ]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        if processes:
            waiting = asyncio.gather(*(p.wait() for p in processes))
            try:
                await asyncio.wait_for(waiting, timeout=self._grace)
            except TimeoutError:
                for process in processes:
                    if process.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            process.kill()
                await asyncio.gather(*(p.wait() for p in processes))
        tasks = [c.task for c in self._children.values() if c.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
