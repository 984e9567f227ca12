"""A WebSocket client on a raw socket, for tests that send what a real client library refuses
to send: invalid UTF-8, unmasked frames, reserved opcodes or bits, odd handshake headers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["RawWebSocket", "ServerFrame", "frame", "upgrade_request"]

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0
) -> bytes:
    """One frame as a client sends it (masked unless ``masked`` is False)."""
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)])
    mask_bit = 0x80 if masked else 0
    size = len(payload)
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def upgrade_request(path: str, host: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    key = base64.b64encode(os.urandom(16))
    lines = [
        f"GET {path} HTTP/1.1".encode(),
        f"Host: {host}".encode(),
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + key,
        b"Sec-WebSocket-Version: 13",
        *(name + b": " + value for name, value in headers),
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@dataclass(frozen=True)
class ServerFrame:
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        if self.opcode != CLOSE or len(self.payload) < 2:
            return None
        code: int = struct.unpack("!H", self.payload[:2])[0]
        return code


class RawWebSocket:
    """``async with RawWebSocket(host, port, path) as ws``: the handshake's status line, head
    and body are ``status``, ``head`` and ``body``; frames are written raw with :meth:`send`."""

    def __init__(
        self, host: str, port: int, path: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self._address = (host, port)
        self._request = upgrade_request(path, f"{host}:{port}", headers or [])
        self.status = 0
        self.head = b""
        self.body = b""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawWebSocket:
        self._reader, self._writer = await asyncio.open_connection(*self._address)
        self._writer.write(self._request)
        await self._writer.drain()
        async with asyncio.timeout(10):
            self.head = await self._reader.readuntil(b"\r\n\r\n")
            self.status = int(self.head.split(b" ", 2)[1])
            if self.status != 101:
                length = 0
                for line in self.head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                self.body = await self._reader.readexactly(length)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    async def send(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()

    async def receive(self, timeout: float = 10) -> ServerFrame | None:  # noqa: ASYNC109
        """The next frame from the server; None when it closed the connection without one."""
        assert self._reader is not None
        try:
            async with asyncio.timeout(timeout):
                first, second = await self._reader.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    (size,) = struct.unpack("!H", await self._reader.readexactly(2))
                elif size == 127:
                    (size,) = struct.unpack("!Q", await self._reader.readexactly(8))
                payload = await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        return ServerFrame(first & 0xF, payload)

    async def close_code(self, timeout: float = 10) -> int | None:  # noqa: ASYNC109
        """The code of the server's close frame (frames before it skipped); None without one."""
        while True:
            received = await self.receive(timeout)
            if received is None:
                return None
            if received.opcode == CLOSE:
                return received.close_code
