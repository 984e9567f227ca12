"""Hosts of the internet, faked on loopback, reached by their real ``https://`` URLs.

An application that calls ``https://hooks.slack.com/...`` must run unchanged in a test, without
the internet. :class:`LocalInternet` serves the host names it is given from one local HTTPS
server, whose certificate (for all those names) comes from a throw-away certificate authority
(``trustme``), and runs an HTTP proxy that tunnels ``CONNECT host:443`` for those names to that
server and refuses every other destination. A process started with :attr:`LocalInternet.env`
(``HTTPS_PROXY``, ``SSL_CERT_FILE`` naming the authority, ``NO_PROXY`` for loopback) reaches the
fakes exactly as it would reach the real hosts through a corporate proxy: the code under test
and its configuration stay as they are.

In a test::

    def geocoding(request: Exchange) -> Answer:
        return 200, {"Content-Type": "application/json"}, b'{"results": []}'

    with LocalInternet({"geocoding-api.open-meteo.com": geocoding}, tmp_path) as internet:
        run_the_app(environ=internet.env)
        assert internet.requests[0].query["name"] == ["Rome"]
"""

from __future__ import annotations

import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import trustme


@dataclass(frozen=True)
class Exchange:
    """One request a fake host received."""

    host: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Answer = tuple[int, dict[str, str], bytes]
"""Status, headers and body of a fake host's response."""

Handler = Callable[[Exchange], Answer]


@dataclass
class LocalInternet:
    """Fake hosts (name -> handler) behind a local HTTPS server and a CONNECT proxy."""

    hosts: dict[str, Handler]
    directory: Path
    """Where the authority's certificate file is written."""
    requests: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._authority = trustme.CA()
        self._servers: list[socketserver.BaseServer] = []
        self._lock = threading.Lock()
        self.ca_file = ""
        self.proxy_url = ""
        self._https_port = 0

    @property
    def env(self) -> dict[str, str]:
        """The environment that sends a process's HTTPS calls to the fakes."""
        return {
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "SSL_CERT_FILE": self.ca_file,
            "NO_PROXY": "localhost,127.0.0.1,::1",
            "no_proxy": "localhost,127.0.0.1,::1",
        }

    def __enter__(self) -> LocalInternet:
        ca_path = self.directory / "local-internet-ca.pem"
        self._authority.cert_pem.write_to_path(str(ca_path))
        self.ca_file = str(ca_path)
        https = self._https_server()
        proxy = self._proxy_server()
        self._https_port = https.server_address[1]
        self.proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
        for server in (https, proxy):
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # -- the HTTPS server every fake host shares -------------------------------------------------

    def _https_server(self) -> ThreadingHTTPServer:
        internet = self

        class Host(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                name = (self.headers.get("Host") or "").partition(":")[0]
                exchange = Exchange(
                    host=name,
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with internet._lock:
                    internet.requests.append(exchange)
                handler = internet.hosts.get(name)
                status, headers, body = (
                    (404, {}, b"no such host") if handler is None else handler(exchange)
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Host)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._authority.issue_cert(*self.hosts).configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        return server

    # -- the proxy ---------------------------------------------------------------------------------

    def _proxy_server(self) -> socketserver.ThreadingTCPServer:
        internet = self

        class Tunnel(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = self.rfile.readline(65536).decode("latin-1").split()
                while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass
                if len(request) < 2 or request[0] != "CONNECT":
                    self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                    return
                host, _, port = request[1].rpartition(":")
                if host not in internet.hosts or port != "443":
                    self.wfile.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                    return
                upstream = socket.create_connection(("127.0.0.1", internet._https_port))
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                _pipe(self.connection, upstream)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tunnel)
        server.daemon_threads = True
        return server


def _pipe(left: socket.socket, right: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with right:
        sockets = [left, right]
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (right if source is left else left).sendall(data)
