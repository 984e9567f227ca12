"""What the fake AI provider servers share: a real HTTP server on loopback that records each
request and may answer with a fault instead (an error status with ``Retry-After``, a body of
another shape, a delay). Each provider's fake (``ollama_server``, ``huggingface_server``...)
subclasses :class:`FakeProvider` with the routes of its protocol."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import Served
from tests.fakes.openai_server import Fault, fake_embedding

__all__ = ["FakeProvider", "Fault", "Handler", "Recorded", "fake_embedding"]


@dataclass(frozen=True)
class Recorded:
    """One request: method, path (with its query), headers, and the body: JSON (None if none),
    or the text of a body of another type (a form)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def no_fault(request: Recorded) -> Fault | None:
    return None


@dataclass
class FakeProvider(Served):
    """The server on ``host:port`` (0: a free port) while the ``with`` block runs.

    ``fault(request)`` may return a :class:`Fault` for a request; every request is in
    :attr:`requests`. Subclasses answer in :meth:`answer`."""

    host: str = "127.0.0.1"
    port: int = 0
    fault: Callable[[Recorded], Fault | None] = no_fault
    requests: list[Recorded] = field(default_factory=list)

    def answer(self, handler: Handler, request: Recorded) -> None:
        """Answer ``request`` (a subclass's routes); 404 here."""
        handler.send_json(404, {"error": f"no route {request.method} {request.path}"})

    def listen_port(self) -> int:
        return self.port

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Bound(Handler):
            provider = fake

        return Bound


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    provider: FakeProvider
    raw_body: bytes = b""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the recorded requests instead."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.raw_body = raw
        body: Any = raw.decode("utf-8", "replace")  # a form, as token endpoints take
        if "json" in self.headers.get("Content-Type", "json"):
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self.send_json(400, {"error": "the body is not JSON"})
                return
        request = Recorded(self.command, self.path, dict(self.headers.items()), body)
        self.provider.requests.append(request)
        fault = self.provider.fault(request)
        if fault is None:
            self.provider.answer(self, request)
            return
        if fault.delay:
            time.sleep(fault.delay)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if fault.body is not None:
                self.send_raw(fault.status, fault.body)
            else:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self.send_json(fault.status, {"error": f"fault {fault.status}"}, headers)

    def send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.send_raw(status, json.dumps(body).encode(), headers)

    def send_lines(self, lines: Iterable[Any], content_type: str = "application/x-ndjson") -> None:
        """Stream one JSON line per item, chunked, as they are made."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for item in lines:
                data = (json.dumps(item) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
