"""Starting and stopping a single Apache Cassandra 5 node (vector type, SAI ANN search) on
loopback, from Maven jars.

The server's jars come from Maven Central (``pom.xml`` in this package), resolved once into the
user cache (``<cache>/sluice/cassandra-<version>``, :func:`sluice.jvm.maven_classpath`); later
starts only read that cache. A node lives in a directory holding ``cassandra.yaml`` and
``logback.xml`` (written at each start), ``system.log`` (the node's log), ``node/`` (its data,
kept from one start to the next) and ``node.json`` (its storage port, so a node started again
finds itself). It listens on ``host`` (loopback) with ``PasswordAuthenticator``.

Settings chosen for small machines: a small heap (512 MB), ``concurrent_writes: 2`` (with more
writer threads than cores + 1, jvector's pool refuses vector inserts), and the gossip and
superuser delays set to zero so the node answers within seconds.

Once CQL answers, the login role of :attr:`LocalCassandraSettings.user` is made (a superuser,
with its password), logging in as that role or, when that fails (a new node, or a role whose
password was another), as the node's default superuser ``cassandra``/``cassandra``, which gives
an existing role the password again.

With :class:`NativeTls`, the native port also accepts TLS (``client_encryption_options`` with
``optional: true`` and Cassandra's ``PEMBasedSslContextFactory``): plain clients keep working,
and a client speaking TLS, such as the driver connecting through an Astra secure connect bundle,
gets the given certificate.

>>> settings = LocalCassandraSettings(user="me", password="pw")
>>> async with LocalCassandra(settings) as node:  # doctest: +SKIP
...     print(node.port)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs

from sluice.cassandra.errors import LocalCassandraError
from sluice.jvm import Progress, find_java, maven_classpath
from sluice.net import LOOPBACK, free_port

__all__ = [
    "VERSION",
    "LocalCassandra",
    "LocalCassandraSettings",
    "NativeTls",
    "cassandra_jars",
    "jars_cache",
]

VERSION = "5.0.9"
_DEFAULT_LOGIN = ("cassandra", "cassandra")
"""The superuser a new node makes."""

# Cassandra's own JVM options for Java 17 (its jvm17-server.options): the internals it reaches.
_JAVA17 = [
    "-Djava.security.manager=allow",
    *(
        f"--add-exports={module}=ALL-UNNAMED"
        for module in (
            "java.base/jdk.internal.misc",
            "java.base/jdk.internal.ref",
            "java.base/sun.nio.ch",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
        )
    ),
    *(
        f"--add-opens={module}=ALL-UNNAMED"
        for module in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.nio",
            "java.base/java.util.concurrent",
            "java.base/java.util",
            "java.base/java.util.concurrent.atomic",
            "java.base/java.lang",
            "java.base/java.math",
            "java.base/java.lang.reflect",
            "java.base/java.net",
        )
    ),
]

_CONFIG = """\
cluster_name: sluice
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{host}:{storage}"
listen_address: {host}
rpc_address: {host}
storage_port: {storage}
native_transport_port: {native}
start_native_transport: true
authenticator: PasswordAuthenticator
authorizer: AllowAllAuthorizer
commitlog_sync: periodic
commitlog_sync_period: 10000ms
concurrent_reads: 2
concurrent_writes: 2
concurrent_counter_writes: 2
concurrent_materialized_view_writes: 2
data_file_directories: [{data}/data]
commitlog_directory: {data}/commitlog
saved_caches_directory: {data}/saved_caches
hints_directory: {data}/hints
cdc_raw_directory: {data}/cdc_raw
"""

_TLS_CONFIG = """\
client_encryption_options:
  enabled: true
  optional: true
  require_client_auth: false
  keystore: {keystore}
  truststore: {truststore}
  ssl_context_factory:
    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory
"""

_LOGBACK = """\
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{log}</file>
    <encoder><pattern>%d %-5level [%thread] %logger{{20}} %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
"""


def jars_cache() -> Path:
    """Where the server's jars are kept: ``<user cache>/sluice/cassandra-<version>``."""
    return platformdirs.user_cache_path("sluice") / f"cassandra-{VERSION}"


async def cassandra_jars(progress: Progress | None = None) -> list[Path]:
    """The server's classpath, downloaded with Maven into :func:`jars_cache` the first time (100
    jars, 67 MB, seconds)."""
    return await maven_classpath(
        (resources.files("sluice.cassandra") / "pom.xml").read_bytes(),
        jars_cache(),
        what=f"the Cassandra {VERSION} jars",
        tags={"cassandra_version": VERSION},
        progress=progress,
        error=LocalCassandraError,
    )


@dataclass(frozen=True)
class NativeTls:
    """TLS on the native port, beside plain connections: PEM texts."""

    private_key: str = field(repr=False)
    """The node's private key, PKCS#8 (``BEGIN PRIVATE KEY``)."""
    certificate_chain: str
    """Its certificate, then the certificates that signed it."""
    trusted: str
    """The certificates it trusts (the CA)."""


@dataclass(frozen=True)
class LocalCassandraSettings:
    """How to run the node. The caller (``sluice run``, a test fixture) fills it."""

    directory: Path | None = None
    """Where its files and data go. None: ``<user data dir>/sluice/cassandra``."""
    port: int = 0
    """The native (CQL) port; 0 picks a free one."""
    host: str = LOOPBACK
    user: str | None = None
    """A login role made once the node answers (a superuser); None: only ``cassandra``."""
    password: str | None = field(default=None, repr=False)
    heap: str = "512M"
    tls: NativeTls | None = None
    java_home: Path | None = None
    """The Java it runs on; None: ``java`` on ``PATH``."""
    start_within: float = 120.0
    """Seconds the node has to answer CQL."""

    def resolved_directory(self) -> Path:
        if self.directory is not None:
            return self.directory.expanduser().absolute()
        return platformdirs.user_data_path("sluice") / "cassandra"


class LocalCassandra:
    """A Cassandra node child; ``async with`` starts it and stops it.

    :meth:`start` again after :meth:`stop` runs the node on the same ports and data.
    """

    def __init__(
        self,
        settings: LocalCassandraSettings | None = None,
        *,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings or LocalCassandraSettings()
        self.directory = self.settings.resolved_directory()
        self.host = self.settings.host
        self.port = self.settings.port
        self.storage_port = 0
        self.process: asyncio.subprocess.Process | None = None
        self._progress = progress

    @property
    def log(self) -> Path:
        return self.directory / "system.log"

    async def __aenter__(self) -> LocalCassandra:
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
        """Start the node and wait until CQL answers and the login role is there."""
        settings = self.settings
        classpath = await cassandra_jars(self._progress)
        java = await find_java(java_home=settings.java_home, error=LocalCassandraError)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        data = self.directory / "node"
        config = _CONFIG.format(
            host=self.host, storage=self.storage_port, native=self.port, data=data
        )
        if settings.tls is not None:
            config += self._tls_config(settings.tls)
        (self.directory / "cassandra.yaml").write_text(config)
        (self.directory / "logback.xml").write_text(_LOGBACK.format(log=self.log))
        argv = [
            java,
            "-Xms" + settings.heap,
            "-Xmx" + settings.heap,
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            *_JAVA17,
            f"-Dcassandra.config=file://{self.directory / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile={self.directory / 'logback.xml'}",
            f"-Dcassandra.storagedir={data}",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-Dcassandra.ring_delay_ms=0",
            "-Dcassandra.jmx.local.port=" + str(free_port()),
            "-Dcassandra-foreground=yes",
            "-cp",
            ":".join(map(str, classpath)),
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        self.process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # the terminal's Ctrl-C is for the parent, which stops it
        )
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop(kill=True)
            raise

    async def stop(self, *, kill: bool = False) -> None:
        """Stop the node: SIGTERM (it flushes its commit log), then SIGKILL after 30 s; or
        SIGKILL at once with ``kill`` (what was not flushed is lost)."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()

    def _choose_ports(self) -> None:
        """The native port (settings, or free), and the storage port the node had before."""
        if not self.port:
            self.port = free_port()
        if self.storage_port:
            return
        recorded = self.directory / "node.json"
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            self.storage_port = int(json.loads(recorded.read_text())["storage_port"])
        if not self.storage_port or not _free(self.host, self.storage_port):
            self.storage_port = free_port()
        recorded.write_text(json.dumps({"storage_port": self.storage_port}) + "\n")

    def _tls_config(self, tls: NativeTls) -> str:
        folder = self.directory / "native-tls"
        folder.mkdir(mode=0o700, exist_ok=True)
        keystore, truststore = folder / "keystore.pem", folder / "truststore.pem"
        for path, text in (
            (keystore, tls.private_key.strip() + "\n" + tls.certificate_chain.strip() + "\n"),
            (truststore, tls.trusted.strip() + "\n"),
        ):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(text)
        return _TLS_CONFIG.format(keystore=keystore, truststore=truststore)

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.settings.start_within
        while time.monotonic() < deadline:
            if self.process is None or self.process.returncode is not None:
                break
            if await asyncio.to_thread(self._prepared):
                return
            await asyncio.sleep(0.5)
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        state = (
            f"exited with code {self.process.returncode}"
            if self.process is not None and self.process.returncode is not None
            else f"did not answer CQL within {self.settings.start_within:g} s"
        )
        raise LocalCassandraError(
            f"Cassandra on {self.host}:{self.port} {state}; the end of {self.log}:\n{tail}"
        )

    def _prepared(self) -> bool:
        """Whether a superuser can log in; makes the login role then."""
        user, password = self.settings.user, self.settings.password
        logins = [(user, password)] if user and password is not None else []
        logins.append(_DEFAULT_LOGIN)
        for login in logins:
            done = _with_session(self.host, self.port, login, self._make_role)
            if done:
                return True
        return False

    def _make_role(self, session: Any, login: tuple[str, str]) -> None:
        user, password = self.settings.user, self.settings.password
        if not user or password is None or login == (user, password):
            return
        role = '"' + user.replace('"', '""') + '"'
        exists = session.execute("SELECT role FROM system_auth.roles WHERE role = %s", [user]).one()
        # One statement: Cassandra changes a role's password at most every 5 s.
        verb = "ALTER ROLE" if exists else "CREATE ROLE"
        session.execute(
            f"{verb} {role} WITH PASSWORD = %s AND LOGIN = true AND SUPERUSER = true",
            [password],
        )


def _with_session(
    host: str, port: int, login: tuple[str, str], then: Callable[[Any, tuple[str, str]], None]
) -> bool:
    """Log in to the node as ``login`` and run ``then``; False when either fails."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    cluster = Cluster(
        [host], port=port, auth_provider=PlainTextAuthProvider(*login), connect_timeout=2
    )
    try:
        then(cluster.connect(), login)
        return True
    except Exception:  # not up yet, or not this login: whatever the reason, try again
        return False
    finally:
        cluster.shutdown()


def _free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
