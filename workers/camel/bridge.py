"""The worker side of the bridge: an HTTP server on loopback that takes the route's exchanges.

Each ``POST /exchange`` becomes a record (:mod:`workers.camel.exchange`) in a buffer of
``max-buffered-records``; the request is answered only when the record's fate is known:
200 once Kafka acknowledged it (:meth:`Bridge.ack`), 500 when it failed for good
(:meth:`Bridge.fail`), 503 when the worker stops first. A full buffer is back-pressure: the
request waits for room without an answer, so the Camel consumer thread waits too, instead of
the exchange failing. A request whose connection closes before its record was read (the JVM
died) is dropped from the buffer; its exchange failed on the Camel side and comes again.

``POST /started`` is the route's signal that the Camel context has started (:attr:`started`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from sluice.record import Record
from sluice.serving import BackgroundServer
from workers.camel.exchange import InvalidExchange, to_record
from workers.camel.route import EXCHANGE_PATH, STARTED_PATH

__all__ = ["Bridge"]

log = logging.getLogger("sluice.camel")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
Answer = tuple[int, str]

#: Idle bridge connections stay open this long (s): Camel's HTTP client reuses them, and a
#: connection the server closed just as the client reuses it would fail an exchange.
_KEEP_ALIVE = 3600.0


@dataclass(eq=False)
class _Pending:
    record: Record
    answer: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    dropped: bool = False

    def settle(self, status: int, text: str) -> None:
        if not self.answer.done():
            self.answer.set_result((status, text))


class Bridge:
    """Receives the exchanges of one camel-source agent; use it as ``async with``."""

    def __init__(self, *, key_header: str, origin: str, max_buffered: int) -> None:
        self._key_header = key_header
        self._origin = origin
        self._buffer: asyncio.Queue[_Pending] = asyncio.Queue(max_buffered)
        self._open: set[_Pending] = set()
        self._taken: dict[int, _Pending] = {}
        self._closed: str | None = None
        self._server = BackgroundServer(
            self._app, name="camel-bridge", logger=log, keep_alive_timeout=_KEEP_ALIVE
        )
        #: Set by the route once its Camel context started; cleared before each JVM start.
        self.started = asyncio.Event()

    @property
    def port(self) -> int:
        """The bridge's port on 127.0.0.1 (once started)."""
        return self._server.port

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        self.close("the worker is stopping")
        await self._server.stop()

    async def __aenter__(self) -> Bridge:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def take(self, limit: int, wait: float) -> list[Record]:
        """Up to ``limit`` buffered records, waiting up to ``wait`` s for the first one."""
        taken: list[Record] = []
        with contextlib.suppress(TimeoutError):
            first = await asyncio.wait_for(self._buffer.get(), wait)
            self._hand_out(first, taken)
            while len(taken) < limit and not self._buffer.empty():
                self._hand_out(self._buffer.get_nowait(), taken)
        return taken

    def _hand_out(self, pending: _Pending, taken: list[Record]) -> None:
        if pending.dropped or pending.answer.done():
            return
        self._taken[id(pending.record)] = pending
        taken.append(pending.record)

    def ack(self, records: list[Record]) -> None:
        """These records are safe in Kafka: their exchanges complete."""
        for record in records:
            pending = self._taken.pop(id(record), None)
            if pending is not None:
                pending.settle(200, "ok")

    def fail(self, record: Record, reason: str) -> None:
        """This record failed for good: its exchange fails with ``reason``."""
        pending = self._taken.pop(id(record), None)
        if pending is not None:
            pending.settle(500, reason)

    def close(self, reason: str) -> None:
        """Answer every open exchange with 503, and new ones from now on."""
        self._closed = reason
        for pending in list(self._open):
            pending.settle(503, reason)
        self._taken.clear()

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if scope["path"] == STARTED_PATH:
            self.started.set()
            status, text = 200, "ok"
        elif scope["path"] == EXCHANGE_PATH and scope["method"] == "POST":
            status, text = await self._exchange(bytes(body), receive)
        else:
            status, text = 404, "not found"
        payload = text.encode("utf-8")
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _exchange(self, body: bytes, receive: Receive) -> Answer:
        if self._closed is not None:
            return 503, self._closed
        try:
            record = to_record(body, key_header=self._key_header, origin=self._origin)
        except InvalidExchange as error:
            log.warning("camel-source: an exchange could not be read: %s", error)
            return 400, f"invalid exchange: {error}"
        pending = _Pending(record)
        self._open.add(pending)
        queued = asyncio.ensure_future(self._buffer.put(pending))
        gone = asyncio.ensure_future(receive())  # completes when the client disconnects
        try:
            await asyncio.wait({pending.answer, gone}, return_when=asyncio.FIRST_COMPLETED)
            if pending.answer.done():
                return pending.answer.result()
            pending.dropped = True
            return 499, "the client went away"
        finally:
            self._open.discard(pending)
            queued.cancel()
            gone.cancel()
