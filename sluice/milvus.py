"""Starting and stopping a Milvus Lite server on loopback: a real Milvus gRPC peer for
``milvus`` resources (``sluice run`` and the tests).

Milvus Lite (the ``milvus-lite`` package, with the ``milvus`` extra) serves Milvus's gRPC API
from a data directory, kept from one start to the next. Collections come back released after a
restart (the datasource loads them again when a search says so).

>>> async with LocalMilvus(data_dir=Path("/tmp/m"), port=19530) as server:  # doctest: +SKIP
...     print(server.uri)
http://127.0.0.1:19530
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from types import TracebackType

from sluice.errors import SluiceError
from sluice.net import LOOPBACK, free_port

__all__ = ["LocalMilvus", "LocalMilvusError", "listening"]


class LocalMilvusError(SluiceError, RuntimeError):
    """The Milvus Lite server could not start (the message has the end of its output)."""


class LocalMilvus:
    """A Milvus Lite server child; ``async with`` starts it and stops it."""

    def __init__(self, data_dir: Path, port: int | None = None, timeout: float = 60) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.timeout = timeout
        self.log_file = data_dir.parent / f"{data_dir.name}.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def uri(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def __aenter__(self) -> LocalMilvus:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the server and wait until it accepts connections (nothing when it runs)."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-c", "from milvus_lite.cmdline import main; main()", "server"]
        argv += ["--data-dir", str(self.data_dir), "--host", LOOPBACK, "--port", str(self.port)]
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *argv, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
            )
        deadline = asyncio.get_running_loop().time() + self.timeout
        while asyncio.get_running_loop().time() < deadline:
            if self._process.returncode is not None:
                break
            if await listening(self.port):
                return
            await asyncio.sleep(0.1)
        await self.stop()
        tail = self.log_file.read_text(errors="replace")[-2000:]
        raise LocalMilvusError(
            f"Milvus Lite did not start on {LOOPBACK}:{self.port} within {self.timeout:g} s "
            f"(is the milvus-lite package installed?): {tail}"
        )

    async def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def kill(self) -> None:
        """Stop the server at once (SIGKILL), as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            await process.wait()


async def listening(port: int) -> bool:
    """Whether something accepts connections on ``port`` of loopback."""
    try:
        _, writer = await asyncio.open_connection(LOOPBACK, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
