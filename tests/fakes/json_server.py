"""The common part of the fakes of vector databases reached over HTTP (Pinecone, OpenSearch,
Solr, Astra's Data API): a real ``ThreadingHTTPServer`` on loopback answering JSON.

A fake subclasses :class:`JsonServer` and answers in :meth:`JsonServer.answer`
(method, path, query string, headers, decoded body) -> (status, JSON body). The base records
every request (:attr:`JsonServer.requests`), refuses the credentials :meth:`JsonServer.allowed`
rejects with the status the service gives (401 by default), and plays queued
:class:`Fault` entries before answering: an error status (with ``Retry-After``) or a delay.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.loopback import Served


@dataclass(frozen=True)
class Fault:
    """Instead of the next answer: wait ``delay`` seconds, then answer ``status`` (0: answer
    normally after the delay), with ``Retry-After`` when given."""

    status: int = 503
    delay: float = 0.0
    retry_after: str | None = None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes = b""
    """The body as sent (NDJSON for OpenSearch's ``_bulk``)."""


class JsonServer(Served):
    """A JSON HTTP server on ``host`` (a free port) while the ``with`` block runs."""

    name = "fake"
    refused_status = 401

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.served_name = self.name
        self.requests: list[Request] = []
        self.faults: deque[Fault] = deque()
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return self.bound_port

    def allowed(self, headers: dict[str, str]) -> bool:
        """Whether the request's credentials are right (all are, unless a fake says)."""
        return True

    def answer(self, request: Request) -> tuple[int, Any]:
        raise NotImplementedError

    def refused(self) -> Any:
        return {"error": "unauthorized"}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake: JsonServer = self

        class Handler(_Handler):
            server_fake = fake

        return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: JsonServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        fake = self.server_fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        query = dict(parse_qsl(split.query))
        request = Request(self.command, split.path, query, headers, body, raw)
        with fake.lock:
            fake.requests.append(request)
            fault = fake.faults.popleft() if fake.faults else None
        if fault is not None:
            if fault.delay:
                threading.Event().wait(fault.delay)
            if fault.status:
                extra = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
                self._send(fault.status, {"error": f"fault {fault.status}"}, extra)
                return
        if not fake.allowed(headers):
            self._send(fake.refused_status, fake.refused(), {})
            return
        with fake.lock:
            status, answer = fake.answer(request)
        self._send(status, answer, {})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity (0 when a vector is all zeros)."""
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = (sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5)
    return dot / norm if norm else 0.0
