"""The Camel JVM of a camel-source agent: started, watched, restarted, stopped.

The JVM is a child of the worker in a session of its own (a Ctrl-C meant for ``sluice run``
reaches the worker, which stops the JVM after answering its open exchanges), and on Linux it
gets SIGTERM when the worker dies, even by SIGKILL, so no orphan keeps consuming. Its output
goes to the worker's log, line by line; the last lines are kept for error messages.

:meth:`CamelJvm.start` returns once the route's Camel context has started (the bridge's
``started`` event), or raises :class:`~workers.errors.CamelSourceError` with the JVM's last
lines if it exits first (a bad endpoint option, a missing class...). A JVM that dies later is
started again after a backoff that doubles up to a bound, with an error log saying how it
ended; the backoff goes back to the first wait once a JVM has run ``stable_after`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from workers.camel.settings import CamelSettings
from workers.errors import CamelSourceError

__all__ = ["CamelJvm"]

log = logging.getLogger("sluice.camel")

_TAIL = 40
_STACK_FRAME = ("\tat ", "\t... ")


class CamelJvm:
    """One supervised JVM running ``argv``; ``started`` is set by the route when it runs."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        agent_id: str,
        started: asyncio.Event,
        settings: CamelSettings,
        cwd: Path,
    ) -> None:
        self._argv = list(argv)
        self._agent_id = agent_id
        self._started = started
        self._settings = settings
        self._cwd = cwd
        self._tail: deque[str] = deque(maxlen=_TAIL)
        self._process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._since = 0.0
        self._stopping = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        """Start the JVM and wait until its route runs (CamelSourceError if it cannot)."""
        await self._spawn()
        await self._until_started()
        self._watch = asyncio.create_task(self._supervise(), name=f"camel-{self._agent_id}")

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; no restart after this."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), self._settings.stop_grace)
            except TimeoutError:
                log.warning("[%s] the Camel JVM did not stop in time: killing it", self._agent_id)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._pump is not None:
            await self._pump

    async def _spawn(self) -> None:
        self._started.clear()
        self._tail.clear()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self._cwd,
                start_new_session=True,
                preexec_fn=_terminate_with_parent(),
            )
        except OSError as error:
            raise CamelSourceError(f"could not start {self._argv[0]}: {error}") from error
        self._process = process
        self._since = time.monotonic()
        self._pump = asyncio.create_task(self._read_output(process))
        log.info("[%s] Camel JVM started (pid %d)", self._agent_id, process.pid)

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line.strip():
                continue
            if line.startswith(_STACK_FRAME):
                log.debug("[%s] %s", self._agent_id, line)
                continue
            self._tail.append(line)
            log.info("[%s] %s", self._agent_id, line)

    async def _until_started(self) -> None:
        process = self._process
        assert process is not None
        started = asyncio.ensure_future(self._started.wait())
        exited = asyncio.ensure_future(process.wait())
        try:
            await asyncio.wait(
                {started, exited},
                timeout=self._settings.start_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            started.cancel()
            exited.cancel()
        if self._started.is_set() and process.returncode is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            what = f"did not start its route within {self._settings.start_timeout:g} s"
        else:
            what = f"exited with code {process.returncode} while starting"
        if self._pump is not None:
            await self._pump
        raise CamelSourceError(f"the Camel JVM {what}; its last lines:\n{self.last_lines()}")

    async def _supervise(self) -> None:
        first, longest = self._settings.restart_backoff
        delay = first
        while True:
            process = self._process
            assert process is not None
            code = await process.wait()
            if self._pump is not None:
                await self._pump
            if self._stopping:
                return
            ran = time.monotonic() - self._since
            if ran >= self._settings.stable_after:
                delay = first
            log.error(
                "[%s] the Camel JVM (pid %d) exited with code %d after %.0f s; starting it "
                "again in %g s. Its last lines:\n%s",
                self._agent_id,
                process.pid,
                code,
                ran,
                delay,
                self.last_lines(),
            )
            await asyncio.sleep(delay)
            delay = min(longest, delay * 2)
            self.restarts += 1
            try:
                await self._spawn()
                await self._until_started()
            except CamelSourceError as error:
                log.error("[%s] %s", self._agent_id, error)
                continue
            log.info("[%s] the Camel JVM runs again (restart %d)", self._agent_id, self.restarts)

    def last_lines(self, lines: int = 20) -> str:
        kept = list(self._tail)[-lines:]
        return "\n".join(f"  {line}" for line in kept) or "  (no output)"


def _terminate_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when this process dies."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def arrange() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange
