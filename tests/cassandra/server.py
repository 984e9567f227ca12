"""A real Apache Cassandra 5 server (vector type, SAI ANN search) for the tests that use the
``cassandra_server`` fixture.

The server's jars come from Maven Central (``pom.xml`` next to this module), resolved once into
the user cache (``<cache>/sluice/cassandra-<version>``, :func:`sluice.jvm.maven_classpath`) right
after collection when a selected test needs them (:data:`CASSANDRA_JARS`, called from
``tests/conftest.py``), so a cold download never runs inside a test. The server itself runs once per session: a single node
on loopback with free ports, a small heap (CI has 2 cores and little memory to spare) and
``PasswordAuthenticator``. The fixture adds a login role with a random password
(:data:`PASSWORD`), which tests check never shows in a message.

Two settings matter on small machines: ``concurrent_writes: 2`` (with more writer threads than
cores + 1, jvector's pool refuses vector inserts), and the gossip and superuser delays set to
zero so the node answers within seconds.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import platformdirs
import pytest

from sluice.errors import SluiceError
from sluice.jvm import find_java, maven_classpath
from sluice.net import LOOPBACK, free_port
from tests.built_assets import BuiltAssets, Report

__all__ = [
    "CASSANDRA_JARS",
    "PASSWORD",
    "USER",
    "VERSION",
    "LocalCassandra",
    "cassandra_jars",
    "cassandra_jars_dir",
    "cassandra_resource",
    "cassandra_server",
    "keyspace_name",
    "running_cassandra",
]

VERSION = "5.0.9"
USER = "sluice"
PASSWORD = "cass-" + secrets.token_hex(8)
"""The login role's password: tests check it never shows in a message or a log."""

_HEAP = "512M"
_CACHE = platformdirs.user_cache_path("sluice") / f"cassandra-{VERSION}"
_START_WITHIN = 120.0

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
cluster_name: sluice-test
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

_LOGBACK = """\
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{log}</file>
    <encoder><pattern>%d %-5level [%thread] %logger{{20}} %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
"""


async def cassandra_jars() -> list[Path]:
    """The server's classpath, downloaded with Maven into the user cache the first time (100
    jars, 67 MB, seconds)."""
    return await maven_classpath(
        (resources.files("tests.cassandra") / "pom.xml").read_bytes(),
        _CACHE,
        what=f"the Cassandra {VERSION} jars",
        tags={"cassandra_version": VERSION},
    )


def _download(report: Report) -> Path | str:
    report(f"Cassandra {VERSION} jars: {_CACHE} (downloaded with Maven the first time)")
    try:
        asyncio.run(cassandra_jars())
    except SluiceError as error:
        return str(error)
    return _CACHE


CASSANDRA_JARS = BuiltAssets("cassandra_jars_dir", _download, "no Cassandra jars for the tests")
"""The server's jars, downloaded right after collection (not inside a test's timeout), only when
a selected test uses the server."""


@pytest.fixture(scope="session")
def cassandra_jars_dir(pytestconfig: pytest.Config) -> Path:
    """The user-cache directory of the server's jars."""
    return CASSANDRA_JARS.directory(pytestconfig)


@dataclass
class LocalCassandra:
    """A running single-node Cassandra: where it listens and how to stop and start it again."""

    directory: Path
    classpath: list[Path]
    java: str
    host: str = LOOPBACK
    port: int = 0
    storage_port: int = 0
    process: asyncio.subprocess.Process | None = None

    @property
    def log(self) -> Path:
        return self.directory / "system.log"

    async def start(self) -> None:
        """Start the node (again, on the same ports and data) and wait until CQL answers."""
        if not self.port:
            self.port, self.storage_port = free_port(), free_port()
        data = self.directory / "node"
        (self.directory / "cassandra.yaml").write_text(
            _CONFIG.format(host=self.host, storage=self.storage_port, native=self.port, data=data)
        )
        (self.directory / "logback.xml").write_text(_LOGBACK.format(log=self.log))
        argv = [
            self.java,
            "-Xms" + _HEAP,
            "-Xmx" + _HEAP,
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
            ":".join(map(str, self.classpath)),
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        self.process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        await self._wait_ready()

    async def stop(self, *, kill: bool = False) -> None:
        """Stop the node: SIGTERM (it flushes its commit log), then SIGKILL after 30 s; or
        SIGKILL at once with ``kill`` (the data is thrown away)."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_WITHIN
        while time.monotonic() < deadline:
            if self.process is None or self.process.returncode is not None:
                break
            if await asyncio.to_thread(self._answers):
                return
            await asyncio.sleep(0.5)
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        raise SluiceError(f"Cassandra did not start within {_START_WITHIN:g} s:\n{tail}")

    def _answers(self) -> bool:
        """Whether the default superuser can log in (the node is up and its roles are set)."""
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import Cluster

        cluster = Cluster(
            [self.host],
            port=self.port,
            auth_provider=PlainTextAuthProvider("cassandra", "cassandra"),
            connect_timeout=2,
        )
        try:
            session = cluster.connect()
            session.execute(
                f"CREATE ROLE IF NOT EXISTS {USER} WITH PASSWORD = %s AND LOGIN = true "
                "AND SUPERUSER = true",
                [PASSWORD],
            )
            return True
        except Exception:  # not up yet, whatever the reason
            return False
        finally:
            cluster.shutdown()


async def running_cassandra() -> AsyncIterator[LocalCassandra]:
    """A started node in a fresh directory, killed and removed afterwards (its data goes)."""
    classpath = await cassandra_jars()
    java = await find_java()
    directory = Path(tempfile.mkdtemp(prefix="sluice-test-cassandra-"))
    node = LocalCassandra(directory=directory, classpath=classpath, java=java)
    try:
        await node.start()
        yield node
    finally:
        await node.stop(kill=True)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
async def cassandra_server(cassandra_jars_dir: Path) -> AsyncIterator[LocalCassandra]:
    """One Cassandra node for the session (login :data:`USER` / :data:`PASSWORD`)."""
    async for node in running_cassandra():
        yield node


def keyspace_name(prefix: str = "ks") -> str:
    """A keyspace name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def cassandra_resource(node: LocalCassandra, **extra: object) -> dict[str, object]:
    """A LangStream ``cassandra`` datasource resource's configuration for ``node``."""
    return {
        "service": "cassandra",
        "contact-points": node.host,
        "port": node.port,
        "loadBalancing-localDc": "datacenter1",
        "username": USER,
        "password": PASSWORD,
        **extra,
    }
