"""A fake of Astra's DevOps API and of a database's metadata service, in front of the tests' real
Cassandra node: what an ``astra`` datasource naming ``database`` / ``database-id`` and ``token``
reaches, down to a CQL session through the driver's cloud (SNI) path.

- :class:`BundleCertificates`: a certificate authority made per run (``cryptography``), the
  node's certificate (the native port's TLS, and the metadata service's) and a client
  certificate, all PEM; :meth:`BundleCertificates.native_tls` is the launcher's TLS option.
- :class:`FakeAstraDevops` (a loopback HTTP server, :class:`~tests.fakes.loopback.Served`): the
  calls Sluice makes, as Astra answers them (``/v2/databases`` listed and read, ``POST
  .../secureBundleURL`` giving a ``downloadURL``, keyspaces created and deleted, which it does
  with CQL on the node), each checking ``Authorization: Bearer <token>`` (401 otherwise), and
  the bundle itself at that URL without the token. The bundle is a zip of ``config.json``
  (the metadata service's host and port, ``localDC``), ``ca.crt``, ``cert`` and ``key``, as the
  Python driver reads it. Starting it makes the login role ``token`` with the token as password,
  as Astra accepts ``token`` / ``AstraCS:...``.
- The metadata service (HTTPS requiring the bundle's client certificate) answers
  ``GET /metadata`` with ``contact_info``: ``sni_proxy_address`` the node's native port (which
  accepts TLS beside plain CQL), ``contact_points`` the node's ``host_id``, ``local_dc``.

:attr:`FakeAstraDevops.requests` records (method, path, whether the token was right).
"""

from __future__ import annotations

import datetime
import io
import json
import secrets
import shutil
import ssl
import tempfile
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sluice.cassandra import LocalCassandra, NativeTls
from tests.fakes.loopback import Served

__all__ = ["BundleCertificates", "FakeAstraDevops"]

_SYSTEM_KEYSPACES = {
    "system",
    "system_auth",
    "system_distributed",
    "system_schema",
    "system_traces",
    "system_views",
    "system_virtual_schema",
}


_TOKEN_ROLES: dict[tuple[str, int], str] = {}
"""The token each node's ``token`` role has (the fakes of a session share one token)."""


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,  # Cassandra's PEM reader takes PKCS#8 only
        serialization.NoEncryption(),
    ).decode()


def _pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class BundleCertificates:
    """A CA, the node's certificate (loopback) and a client certificate, PEM."""

    ca: str
    server_cert: str
    server_key: str = field(repr=False)
    client_cert: str = ""
    client_key: str = field(default="", repr=False)

    @classmethod
    def make(cls) -> BundleCertificates:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = _key()
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sluice test astra CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )

        def issued(name: str, key: rsa.RSAPrivateKey, server: bool) -> x509.Certificate:
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2))
            )
            if server:
                builder = builder.add_extension(
                    x509.SubjectAlternativeName(
                        [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
                    ),
                    critical=False,
                )
            return builder.sign(ca_key, hashes.SHA256())

        server_key, client_key = _key(), _key()
        return cls(
            ca=_pem_cert(ca),
            server_cert=_pem_cert(issued("127.0.0.1", server_key, True)),
            server_key=_pem_key(server_key),
            client_cert=_pem_cert(issued("sluice test client", client_key, False)),
            client_key=_pem_key(client_key),
        )

    def native_tls(self) -> NativeTls:
        """The node's TLS on its native port, with these certificates."""
        return NativeTls(
            private_key=self.server_key, certificate_chain=self.server_cert, trusted=self.ca
        )


class _Cql:
    """The fake's own superuser session on the node (plain CQL), made on first use."""

    def __init__(self, node: LocalCassandra, login: tuple[str, str]) -> None:
        self._node = node
        self._login = login
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._lock = threading.Lock()

    @property
    def session(self) -> Session:
        with self._lock:
            if self._session is None:
                self._cluster = Cluster(
                    [self._node.host],
                    port=self._node.port,
                    auth_provider=PlainTextAuthProvider(*self._login),
                    connect_timeout=10,
                )
                self._session = self._cluster.connect()
            return self._session

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None


class _MetadataService(Served):
    """The database's metadata service: HTTPS, the bundle's client certificate required."""

    served_name = "astra metadata service"

    def __init__(self, fake: FakeAstraDevops, context: ssl.SSLContext) -> None:
        self.fake = fake
        self.context = context
        self.served: list[str] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                wrapped = service.context.wrap_socket(
                    self.request, server_side=True, do_handshake_on_connect=False
                )
                try:
                    wrapped.do_handshake()  # fails without the client certificate
                except OSError:
                    wrapped.close()
                    raise
                self.request = wrapped
                super().setup()

            def finish(self) -> None:
                super().finish()
                self.request.close()  # the TLS socket (the server closes the plain one)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                service.served.append(self.path)
                if urlsplit(self.path).path != "/metadata":
                    self.send_error(404)
                    return
                local = service.fake.local_node()
                body = json.dumps(
                    {
                        "version": 1,
                        "region": "local",
                        "contact_info": {
                            "type": "sni_proxy",
                            "local_dc": local["data_center"],
                            "contact_points": [str(local["host_id"])],
                            "sni_proxy_address": service.fake.sni_proxy,
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class FakeAstraDevops(Served):
    """The DevOps API for one database (``name``, :attr:`database_id`) on ``node``."""

    served_name = "astra devops api"

    def __init__(
        self,
        node: LocalCassandra | None,
        certificates: BundleCertificates,
        login: tuple[str, str] = ("cassandra", "cassandra"),
        *,
        name: str = "langstream-db",
        token: str = "AstraCS:fake:" + secrets.token_hex(8),
        status: str = "ACTIVE",
    ) -> None:
        self.node = node
        self.certificates = certificates
        self.name = name
        self.database_id = str(uuid.uuid4())
        self.token = token
        self.status = status
        self.bundle_override: bytes | None = None
        """Served instead of the real bundle (a test of a broken download)."""
        self.requests: list[tuple[str, str, bool]] = []
        self._cql = _Cql(node, login) if node is not None else None
        self._keyspaces: set[str] = set()
        """The keyspaces without a node (the API alone, for tests of its errors)."""
        self._download = secrets.token_hex(8)
        self._files = Path(tempfile.mkdtemp(prefix="sluice-fake-astra-"))
        self.metadata = _MetadataService(self, self._server_context())

    @property
    def api_url(self) -> str:
        """The DevOps API's base URL: a datasource's ``environment``."""
        return f"{self.url}/v2"

    def start(self) -> FakeAstraDevops:
        if self._cql is None:
            super().start()
            return self
        self._token_role()
        self.metadata.start()
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        self.metadata.stop()
        if self._cql is not None:
            self._cql.close()
        shutil.rmtree(self._files, ignore_errors=True)

    def _token_role(self) -> None:
        """The login ``token`` / the token, as Astra takes it (Cassandra changes a password at
        most every 5 s: only when another fake set another token)."""
        assert self._cql is not None and self.node is not None
        where = (self.node.host, self.node.port)
        if _TOKEN_ROLES.get(where) == self.token:
            return
        session = self._cql.session
        exists = session.execute("SELECT role FROM system_auth.roles WHERE role = 'token'").one()
        verb = "ALTER ROLE" if exists else "CREATE ROLE"
        session.execute(
            f'{verb} "token" WITH PASSWORD = %s AND LOGIN = true AND SUPERUSER = true',
            [self.token],
        )
        _TOKEN_ROLES[where] = self.token

    @property
    def sni_proxy(self) -> str:
        """Where the driver connects: the node's native port (TLS there too)."""
        assert self.node is not None, "the metadata service needs the node"
        return f"{self.node.host}:{self.node.port}"

    def local_node(self) -> dict[str, Any]:
        assert self._cql is not None, "the metadata service needs the node"
        row = self._cql.session.execute("SELECT host_id, data_center FROM system.local").one()
        return {"host_id": row.host_id, "data_center": row.data_center}

    def keyspaces(self) -> list[str]:
        if self._cql is None:
            return sorted(self._keyspaces)
        rows = self._cql.session.execute("SELECT keyspace_name FROM system_schema.keyspaces")
        return sorted(r.keyspace_name for r in rows if r.keyspace_name not in _SYSTEM_KEYSPACES)

    def bundle(self) -> bytes:
        """The secure connect bundle, as Astra's download URL gives it."""
        if self.bundle_override is not None:
            return self.bundle_override
        assert self.node is not None, "a bundle needs the node"
        config = {
            "host": self.metadata.host,
            "port": self.metadata.bound_port,
            "cql_port": self.node.port,
            "localDC": "datacenter1",
            "caCertLocation": "./ca.crt",
            "keyLocation": "./key",
            "certLocation": "./cert",
        }
        packed = io.BytesIO()
        with zipfile.ZipFile(packed, "w") as archive:
            archive.writestr("config.json", json.dumps(config, indent=2))
            archive.writestr("ca.crt", self.certificates.ca)
            archive.writestr("cert", self.certificates.client_cert)
            archive.writestr("key", self.certificates.client_key)
        return packed.getvalue()

    def described(self) -> dict[str, Any]:
        keyspaces = self.keyspaces()
        return {
            "id": self.database_id,
            "orgId": "fake-org",
            "status": self.status,
            "info": {
                "name": self.name,
                "keyspace": keyspaces[0] if keyspaces else "",
                "keyspaces": keyspaces,
                "cloudProvider": "GCP",
                "region": "local",
                "datacenters": [{"name": "datacenter1", "region": "local"}],
            },
        }

    def answer(self, method: str, path: str, query: dict[str, str]) -> tuple[int, Any]:
        """(status, JSON) of one authorised call of the API."""
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["v2", "databases"]:
            return 404, {"errors": [{"description": f"no route {path}", "ID": 0}]}
        rest = parts[2:]
        if not rest and method == "GET":
            if query.get("include") != "non_terminated":
                return 400, {"errors": [{"description": f"unexpected query {query}", "ID": 0}]}
            return 200, [self.described()]
        if not rest or rest[0] != self.database_id:
            return 404, {"errors": [{"description": "Database not found", "ID": 2000014}]}
        if len(rest) == 1 and method == "GET":
            return 200, self.described()
        if rest[1:] == ["secureBundleURL"] and method == "POST":
            url = f"{self.url}/download/{self._download}/secure-connect.zip"
            return 200, {"downloadURL": url, "internalDownloadURL": url}
        if len(rest) == 3 and rest[1] == "keyspaces":
            name = '"' + rest[2].replace('"', '""') + '"'
            if self._cql is None and method in ("POST", "DELETE"):
                (self._keyspaces.add if method == "POST" else self._keyspaces.discard)(rest[2])
                return (201 if method == "POST" else 202), None
            assert self._cql is not None
            if method == "POST":
                self._cql.session.execute(
                    f"CREATE KEYSPACE IF NOT EXISTS {name} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}"
                )
                return 201, None
            if method == "DELETE":
                self._cql.session.execute(f"DROP KEYSPACE IF EXISTS {name}")
                return 202, None
        return 404, {"errors": [{"description": f"no route {method} {path}", "ID": 0}]}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if split.path == f"/download/{fake._download}/secure-connect.zip":
                    fake.requests.append((self.command, split.path, True))
                    self._send(200, fake.bundle(), "application/zip")
                    return
                allowed = self.headers.get("Authorization") == f"Bearer {fake.token}"
                fake.requests.append((self.command, split.path, allowed))
                if not allowed:
                    error = {"errors": [{"description": "The token is not valid", "ID": 340018}]}
                    self._send(401, json.dumps(error).encode(), "application/json")
                    return
                status, body = fake.answer(self.command, split.path, dict(parse_qsl(split.query)))
                data = b"" if body is None else json.dumps(body).encode()
                self._send(status, data, "application/json")

            do_GET = do_POST = do_DELETE = _handle

            def _send(self, status: int, data: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _server_context(self) -> ssl.SSLContext:
        """The metadata service's TLS: the node's certificate, the client's required."""
        chain, key, ca = self._files / "server.pem", self._files / "server.key", self._files / "ca"
        chain.write_text(self.certificates.server_cert)
        key.write_text(self.certificates.server_key)
        ca.write_text(self.certificates.ca)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key)
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_REQUIRED
        return context
