"""A lean HTTP/1.1 client for the open-loop latency runs.

The open loop must issue requests at their scheduled times however slow the server is; a Python
client shares a core with the broker here, so its own cost per request shows up as latency
(at ~1,000 req/s aiohttp's ~200 us per request was most of that core). This one writes a
prepared request on a pooled keep-alive connection and reads the status line, the headers it
needs and the body: tens of microseconds per request.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

__all__ = ["HttpClient"]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer


class HttpClient:
    """Keep-alive connections to one server, at most ``limit`` at once (more requests wait)."""

    def __init__(self, base_url: str, *, limit: int = 1000) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"not an http URL: {base_url}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._authority = f"{self._host}:{self._port}"
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._all: set[_Connection] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for connection in self._all:
            connection.writer.close()
        self._all.clear()
        self._idle.clear()

    def prepare(self, method: str, target: str, body: bytes, content_type: str) -> bytes:
        """The bytes of a request; ``target`` is the path and query."""
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self._authority}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("latin-1") + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send a prepared request; its status and body. OSError when the connection fails."""
        async with self._slots:
            while True:
                reused = bool(self._idle)
                connection = self._idle.pop() if reused else await self._connect()
                try:
                    connection.writer.write(request)
                    status, body, keep = await _response(connection.reader)
                except _Closed:
                    self._drop(connection)
                    if reused:
                        # The server closed this idle connection (keep-alive timeout) before
                        # reading the request: send it again on another one.
                        continue
                    raise
                except BaseException:
                    self._drop(connection)
                    raise
                if keep:
                    self._idle.append(connection)
                else:
                    self._drop(connection)
                return status, body

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        connection = _Connection(reader, writer)
        self._all.add(connection)
        return connection

    def _drop(self, connection: _Connection) -> None:
        self._all.discard(connection)
        connection.writer.close()


class _Closed(ConnectionResetError):
    """The server closed the connection before answering anything."""


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            raise _Closed("the server closed the connection") from error
        raise ConnectionResetError("the server closed the connection mid-answer") from error
    except ConnectionResetError as error:
        raise _Closed("the server reset the connection") from error
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    chunked = False
    keep = True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return status, b"".join(parts), keep
    if length is None:
        return status, await reader.read(), False
    return status, await reader.readexactly(length), keep
