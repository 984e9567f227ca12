"""A real HTTP server on loopback, in a thread of the test process: what every fake of an
internet service stands on (OpenAI, the other AI providers, the HTTP vector databases, a small
website), so each fake only writes its routes."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

__all__ = ["Served"]


class Served:
    """Start, stop, ``with`` and :attr:`url` for a fake serving :meth:`handler` on ``host``.

    A subclass gives its request handler class (usually bound to the fake instance) and, when
    a test may choose the port, :meth:`listen_port`.
    """

    host: str = "127.0.0.1"
    served_name: str = "fake"
    """How an error names the server."""
    _http: ThreadingHTTPServer | None = None
    _serving: threading.Thread | None = None
    _port: int | None = None
    """The port it listens on, or listened on last (a test may read URLs after the block)."""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def listen_port(self) -> int:
        """The port to listen on; 0, a free one."""
        return 0

    @property
    def bound_port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"the {self.served_name} server was never started")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (no path)."""
        return f"http://{self.host}:{self.bound_port}"

    def start(self) -> Self:
        self._http = ThreadingHTTPServer((self.host, self.listen_port()), self.handler())
        self._http.daemon_threads = True
        self._port = int(self._http.server_address[1])
        self._serving = threading.Thread(
            target=self._http.serve_forever, name=self.served_name, daemon=True
        )
        self._serving.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._serving is not None:
            self._serving.join(timeout=5)
        self._http = self._serving = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
