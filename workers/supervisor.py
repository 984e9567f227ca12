"""Child processes for ``sluice run``: one worker per executor, output prefixed, restarts.

A worker that exits non-zero (``errors.on-failure: fail``, a crash, a kill) is started again
with backoff, the way Kubernetes restarts a pod, so the failed record is redelivered. The
supervisor remembers the last error line each child printed (a traceback's exception line or an
``ERROR``/``CRITICAL`` log line), so ``sluice run`` can say why a worker is not running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sluice.entrypoint import SUPERVISOR_PID_ENV

log = logging.getLogger("sluice.run")


Printer = Callable[[str, str], None]


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    health_port: int | None = None
    service_port: int | None = None


_LOG_ERROR = re.compile(r"(?:ERROR|CRITICAL) \S+: (.+)")
"""A log line at error level, as the workers format them (``LEVEL logger: message``)."""


class ErrorLines:
    """Follows the output of one process and keeps its last error line: the exception line
    that ends a traceback, or the message of an ``ERROR``/``CRITICAL`` log line.

    >>> lines = ErrorLines()
    >>> for line in ["Traceback (most recent call last):", '  File "m.py", line 1',
    ...              "    import nope", "ModuleNotFoundError: No module named 'nope'", "bye"]:
    ...     lines.feed(line)
    >>> lines.last_error, lines.last_line
    ("ModuleNotFoundError: No module named 'nope'", 'bye')
    """

    def __init__(self) -> None:
        self.last_error: str | None = None
        self.last_line: str | None = None
        self._in_traceback = False

    def feed(self, line: str) -> None:
        if not line.strip():
            return
        self.last_line = line
        if line.startswith("Traceback (most recent call last):"):
            self._in_traceback = True
        elif self._in_traceback and not line[0].isspace():
            # The first line at the margin after the frames: "SomeError: message".
            self._in_traceback = False
            self.last_error = line
        elif not self._in_traceback and (match := _LOG_ERROR.fullmatch(line)):
            self.last_error = match.group(1)


@dataclass
class _Child:
    spec: ChildSpec
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    exits: int = 0
    """Times the process ended with a non-zero code (or a signal)."""
    last_code: int | None = None
    output: ErrorLines = field(default_factory=ErrorLines)
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

    def failures(self, name: str) -> int:
        """How many times the child ended with a non-zero code (it may be running again)."""
        return self._children[name].exits

    def finished(self, name: str) -> bool:
        """Whether the child exited with code 0, which means it is done: not restarted."""
        return self._children[name].last_code == 0

    def why_failed(self, name: str) -> str | None:
        """Why the child is probably not running: its last error line, else its last line of
        output, else its exit code; None if it never printed anything nor failed."""
        child = self._children[name]
        output = child.output
        if output.last_error is not None:
            return output.last_error
        if output.last_line is not None:
            return output.last_line
        return None if child.last_code is None else f"exited with code {child.last_code}"

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
            child.last_code = code
            if code == 0:
                self._printer(child.spec.name, "exited")
                return
            child.exits += 1
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
            line = raw.decode("utf-8", "replace").rstrip("\n")
            child.output.feed(line)
            self._printer(child.spec.name, line)
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
