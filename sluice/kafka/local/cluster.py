"""A replicated Kafka cluster on this machine: several KRaft nodes on loopback, from the same jars
as the single local broker, optionally with TLS and SCRAM, for ``sluice kafka start --brokers 3``
and the tests.

Every node is both broker and controller (three nodes: a controller quorum that survives one
loss). Clients reach the brokers on the ``CLIENT`` listener, which carries the security asked
for (``--tls``: TLS with certificates made for the cluster, :mod:`sluice.kafka.local.certs`;
``--sasl scram``: SCRAM-SHA-256/512 with a user created when the storage is formatted); brokers
replicate over an ``INTERNAL`` listener with the same TLS and SCRAM (as the SCRAM user; plaintext
with OAUTHBEARER) and the controllers talk over a plaintext ``CONTROLLER`` listener, all on
loopback only. New topics default to replication factor 3 (fewer with fewer nodes) and
``min.insync.replicas`` 2, as production clusters run.

The data folder holds ``cluster.json`` (the shape and the ports), ``client.properties`` (what a
client needs: the Java properties ``instance.yaml`` takes, the password included, mode 0600),
``certs/`` and a folder per node laid out as the single broker's (``node-1/kafka.pid``...), so
``sluice kafka status|stop`` find them. A restart with the same folder keeps the topics, the
certificates and the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

from sluice.errors import KafkaError, LocalKafkaError
from sluice.kafka.local.broker import BrokerStatus, broker_status
from sluice.kafka.local.certs import write_certificates
from sluice.kafka.local.jars import Progress, check_java, ensure_jars
from sluice.kafka.local.processes import (
    HOST,
    alive,
    check_port,
    exited,
    last_lines,
    run,
    spawn,
    tail,
    terminate,
)
from sluice.kafka.local.settings import LocalKafkaSettings
from sluice.net import free_port

if TYPE_CHECKING:
    from sluice.kafka.connection import KafkaSettings

__all__ = [
    "CLUSTER_FILE",
    "SCRAM_USER",
    "LocalClusterSettings",
    "LocalKafkaCluster",
    "cluster_status",
    "is_cluster",
    "stop_cluster",
]

CLUSTER_FILE: Final = "cluster.json"
CLIENT_PROPERTIES: Final = "client.properties"
#: The SCRAM user made at format time; its password is generated and kept in the data folder.
SCRAM_USER: Final = "sluice"
_PID_FILE, _PORT_FILE, _LOG_FILE = "kafka.pid", "kafka.port", "kafka.log"
_SCRAM_MECHANISMS: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class LocalClusterSettings:
    """The cluster's shape; Java, Maven, the jar cache and timeouts come from ``base``."""

    brokers: int = 3
    tls: bool = False
    #: ``scram``: a SCRAM user made at format time. ``oauthbearer``: tokens checked against
    #: the JWKS endpoint named in ``extra_properties`` (``sasl.oauthbearer.jwks.endpoint.url``,
    #: and the JVM needs ``-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls``); the client
    #: properties then leave the login to the caller.
    sasl: Literal["scram", "oauthbearer"] | None = None
    #: First client port (the next nodes take the following ones); 0 picks free ports.
    port: int = 0
    data_dir: Path | None = None
    base: LocalKafkaSettings = field(default_factory=LocalKafkaSettings)
    #: More broker properties, for every node.
    extra_properties: Mapping[str, str] = field(default_factory=dict)
    #: Small heaps and a quick JIT: three JVMs share a laptop (or a 2-core CI runner).
    jvm_options: tuple[str, ...] = (
        "-Xms32m",
        "-Xmx320m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
    )

    def __post_init__(self) -> None:
        if not 1 <= self.brokers <= 9:
            raise LocalKafkaError(f"--brokers must be between 1 and 9, not {self.brokers}")

    @property
    def replication_factor(self) -> int:
        return min(3, self.brokers)

    @property
    def min_insync_replicas(self) -> int:
        return min(2, self.brokers)

    @property
    def security_protocol(self) -> str:
        if self.sasl:
            return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
        return "SSL" if self.tls else "PLAINTEXT"

    def resolved_data_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir.expanduser().absolute()
        return self.base.resolved_data_dir().with_name("kafka-cluster")


@dataclass
class _Node:
    id: int
    directory: Path
    port: int
    internal_port: int
    controller_port: int
    pid: int | None = None


class LocalKafkaCluster:
    """Kafka nodes as child processes; ``async with`` starts them all and stops them all.

    :attr:`client_properties` are the Java client properties of ``instance.yaml``'s
    ``streamingCluster.configuration.admin`` (``bootstrap.servers`` included). :meth:`kill` and
    :meth:`restart` act on one node, for failover tests.
    """

    def __init__(
        self, settings: LocalClusterSettings | None = None, *, progress: Progress | None = None
    ) -> None:
        self.settings = settings or LocalClusterSettings()
        self.data_dir = self.settings.resolved_data_dir()
        self._progress = progress or (lambda message: None)
        self._nodes: dict[int, _Node] = {}
        self._jvm: list[str] = []
        self._detached = False
        self.client_properties: dict[str, str] = {}

    @property
    def bootstrap_servers(self) -> str:
        if not self._nodes:
            raise LocalKafkaError("the local Kafka cluster is not started")
        return ",".join(f"{HOST}:{node.port}" for node in self._nodes.values())

    @property
    def pids(self) -> dict[int, int]:
        """Node id -> pid of the nodes running."""
        return {n.id: n.pid for n in self._nodes.values() if n.pid is not None}

    def port(self, node_id: int) -> int:
        return self._nodes[node_id].port

    def log_file(self, node_id: int) -> Path:
        return self._nodes[node_id].directory / _LOG_FILE

    async def __aenter__(self) -> LocalKafkaCluster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self, *, detach: bool = False) -> None:
        """Provision and start every node; return once all are registered brokers."""
        if self._nodes:
            raise LocalKafkaError("this cluster is already started")
        settings = self.settings
        running = cluster_status(self.data_dir)
        if running:
            raise LocalKafkaError(
                f"a Kafka cluster is already running from {self.data_dir} "
                f"(pids {', '.join(str(s.pid) for s in running)}); stop it first"
            )
        self._progress("checking Java")
        java = await check_java(settings.base)
        classpath = await ensure_jars(settings.base, self._progress)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._nodes = self._allocate()
        log4j = self.data_dir / "log4j2.yaml"
        log4j.write_bytes((resources.files("sluice.kafka.local") / "log4j2.yaml").read_bytes())
        self._jvm = [java, *settings.jvm_options, f"-Dlog4j2.configurationFile={log4j}"]
        self._jvm += ["-cp", os.pathsep.join(str(jar) for jar in classpath)]
        shape = _read_shape(self.data_dir)
        if shape and (shape.get("brokers"), shape.get("sasl")) != (settings.brokers, settings.sasl):
            raise LocalKafkaError(
                f"{self.data_dir} holds a cluster of {shape.get('brokers')} brokers "
                f"(SASL {shape.get('sasl') or 'off'}); start it the same way or use another "
                "--data-dir"
            )
        password = self._password(shape)
        self._write_configs(password)
        self.client_properties = self._client_properties(password)
        self._write_run_files(password)
        await self._format(password)
        self._progress(f"starting {settings.brokers} Kafka nodes")
        try:
            for node in self._nodes.values():
                self._spawn(node)
            await self._wait_ready(set(self._nodes))
        except BaseException:
            await self._stop_all()
            raise
        self._detached = detach

    async def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL). Does nothing after ``start(detach=True)``."""
        if not self._nodes or self._detached:
            return
        await self._stop_all()

    async def wait(self) -> None:
        """Return when a node exits (for a foreground ``sluice kafka start``)."""
        waits = [asyncio.ensure_future(exited(pid, within=math.inf)) for pid in self.pids.values()]
        if not waits:
            return
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def kill(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would."""
        node = self._nodes[node_id]
        if node.pid is not None:
            await terminate(node.pid, 0)
            node.pid = None
            _remove_run_files(node.directory)

    async def restart(self, node_id: int) -> None:
        """Start a stopped node again on its ports; return once the cluster counts it again."""
        node = self._nodes[node_id]
        if node.pid is None:
            self._spawn(node)
        await self._wait_ready({node_id})

    # -- provisioning ------------------------------------------------------------------------

    def _allocate(self) -> dict[int, _Node]:
        settings = self.settings
        taken: set[int] = set()

        def pick(wanted: int) -> int:
            port = check_port(wanted) if wanted else free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            return port

        nodes: dict[int, _Node] = {}
        for node_id in range(1, settings.brokers + 1):
            client = pick(settings.port + node_id - 1 if settings.port else 0)
            nodes[node_id] = _Node(
                node_id, self.data_dir / f"node-{node_id}", client, pick(0), pick(0)
            )
        return nodes

    def _password(self, shape: Mapping[str, Any] | None) -> str | None:
        if self.settings.sasl != "scram":
            return None
        properties = _read_properties(self.data_dir / CLIENT_PROPERTIES)
        jaas = properties.get("sasl.jaas.config", "")
        if shape and 'password="' in jaas:
            return jaas.split('password="', 1)[1].split('"', 1)[0]
        return secrets.token_urlsafe(18)

    def _write_configs(self, password: str | None) -> None:
        settings = self.settings
        internal = self._internal_protocol
        certificates = (
            write_certificates(self.data_dir / "certs", list(self._nodes)) if settings.tls else None
        )
        voters = ",".join(f"{n.id}@{HOST}:{n.controller_port}" for n in self._nodes.values())
        replicas, min_isr = str(settings.replication_factor), str(settings.min_insync_replicas)
        for node in self._nodes.values():
            node.directory.mkdir(parents=True, exist_ok=True)
            properties = {
                "process.roles": "broker,controller",
                "node.id": str(node.id),
                "controller.quorum.voters": voters,
                "listeners": f"CLIENT://{HOST}:{node.port},INTERNAL://{HOST}:{node.internal_port},"
                f"CONTROLLER://{HOST}:{node.controller_port}",
                "advertised.listeners": f"CLIENT://{HOST}:{node.port},"
                f"INTERNAL://{HOST}:{node.internal_port}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "INTERNAL",
                "listener.security.protocol.map": f"CLIENT:{settings.security_protocol},"
                f"INTERNAL:{internal},CONTROLLER:PLAINTEXT",
                "log.dirs": str(node.directory / "logs"),
                "num.partitions": "1",
                "auto.create.topics.enable": str(settings.base.auto_create_topics).lower(),
                "default.replication.factor": replicas,
                "min.insync.replicas": min_isr,
                "offsets.topic.replication.factor": replicas,
                "offsets.topic.num.partitions": "1",
                "transaction.state.log.replication.factor": replicas,
                "transaction.state.log.min.isr": min_isr,
                "share.coordinator.state.topic.replication.factor": replicas,
                "share.coordinator.state.topic.min.isr": min_isr,
                "group.initial.rebalance.delay.ms": "0",
                "group.min.session.timeout.ms": "1000",
                # A dead node leaves the in-sync replicas within seconds, not 30: failover
                # tests, and a developer killing a broker, see the cluster react.
                "broker.session.timeout.ms": "3000",
                "broker.heartbeat.interval.ms": "500",
                "replica.lag.time.max.ms": "5000",
                "unclean.leader.election.enable": "false",
            }
            if certificates is not None:
                for listener in ("client", "internal"):
                    properties[f"listener.name.{listener}.ssl.keystore.type"] = "PEM"
                    properties[f"listener.name.{listener}.ssl.keystore.location"] = str(
                        certificates.brokers[node.id]
                    )
                # Brokers replicating over TLS check each other's certificates by the CA.
                properties["listener.name.internal.ssl.truststore.type"] = "PEM"
                properties["listener.name.internal.ssl.truststore.location"] = str(certificates.ca)
            if settings.sasl == "oauthbearer":
                handler = "org.apache.kafka.common.security.oauthbearer."
                properties["sasl.enabled.mechanisms"] = "OAUTHBEARER"
                properties["listener.name.client.oauthbearer.sasl.jaas.config"] = (
                    f"{handler}OAuthBearerLoginModule required;"
                )
                properties[
                    "listener.name.client.oauthbearer.sasl.server.callback.handler.class"
                ] = f"{handler}OAuthBearerValidatorCallbackHandler"
            elif settings.sasl:
                properties["sasl.enabled.mechanisms"] = ",".join(_SCRAM_MECHANISMS)
                for mechanism in _SCRAM_MECHANISMS:
                    properties[f"listener.name.client.{mechanism.lower()}.sasl.jaas.config"] = (
                        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                    )
                # Brokers replicate as the SCRAM user too (its credentials exist from the
                # format on, before any broker runs).
                properties["sasl.mechanism.inter.broker.protocol"] = "SCRAM-SHA-512"
                properties["listener.name.internal.sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
                properties["listener.name.internal.scram-sha-512.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{SCRAM_USER}" password="{password}";'
                )
            properties.update(settings.extra_properties)
            _write_properties(node.directory / "server.properties", properties)

    @property
    def _internal_protocol(self) -> str:
        """Replication between brokers: as secured as the clients' listener, except with
        OAUTHBEARER (brokers would need tokens of their own), where it stays plaintext."""
        if self.settings.sasl == "oauthbearer":
            return "SSL" if self.settings.tls else "PLAINTEXT"
        return self.settings.security_protocol

    def _client_properties(self, password: str | None) -> dict[str, str]:
        settings = self.settings
        properties = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": settings.security_protocol,
        }
        if settings.tls:
            properties["ssl.truststore.type"] = "PEM"
            properties["ssl.truststore.location"] = str(self.data_dir / "certs" / "ca.pem")
        if self.settings.sasl == "oauthbearer":
            properties["sasl.mechanism"] = "OAUTHBEARER"
        if password is not None:
            properties["sasl.mechanism"] = "SCRAM-SHA-512"
            properties["sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{SCRAM_USER}" password="{password}";'
            )
        return properties

    def _write_run_files(self, password: str | None) -> None:
        shape = {
            "brokers": self.settings.brokers,
            "tls": self.settings.tls,
            "sasl": self.settings.sasl,
            "bootstrap.servers": self.bootstrap_servers,
            "nodes": [node.id for node in self._nodes.values()],
        }
        (self.data_dir / CLUSTER_FILE).write_text(json.dumps(shape, indent=2) + "\n")
        path = self.data_dir / CLIENT_PROPERTIES
        lines = ["# Written by sluice: the client properties of this local cluster."]
        lines += [f"{key}={value}" for key, value in self.client_properties.items()]
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write("\n".join(lines) + "\n")

    async def _format(self, password: str | None) -> None:
        unformatted = [
            n
            for n in self._nodes.values()
            if not (n.directory / "logs" / "meta.properties").exists()
        ]
        if not unformatted:
            return
        self._progress("formatting the nodes' storage")
        cluster_id = _cluster_id(self.data_dir)
        scram: list[str] = []
        if password is not None:
            for mechanism in _SCRAM_MECHANISMS:
                scram += ["--add-scram", f"{mechanism}=[name={SCRAM_USER},password={password}]"]

        async def format_node(node: _Node) -> None:
            command = [*self._jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id]
            command += ["-c", str(node.directory / "server.properties"), *scram]
            code, output = await run(command, within=self.settings.base.start_timeout)
            if code != 0:
                raise LocalKafkaError(
                    f"formatting node {node.id}'s storage failed (exit code {code}):\n"
                    + last_lines(output)
                )

        await asyncio.gather(*(format_node(node) for node in unformatted))

    # -- processes ---------------------------------------------------------------------------

    def _spawn(self, node: _Node) -> None:
        server = node.directory / "server.properties"
        node.pid = spawn([*self._jvm, "kafka.Kafka", str(server)], node.directory / _LOG_FILE)
        (node.directory / _PID_FILE).write_text(f"{node.pid}\n")
        (node.directory / _PORT_FILE).write_text(f"{node.port}\n")

    async def _wait_ready(self, node_ids: set[int]) -> None:
        """Until every node in ``node_ids`` is a registered broker the cluster reports."""
        from sluice.kafka.connection import KafkaSettings

        # Asked on the INTERNAL listener, with the client's TLS and SCRAM settings where it has
        # them (an OAUTHBEARER cluster's tokens come from elsewhere: its INTERNAL listener needs
        # none); the CLIENT ports must accept connections too.
        internal = ",".join(f"{HOST}:{n.internal_port}" for n in self._nodes.values())
        options = {k: v for k, v in self.client_properties.items() if k != "bootstrap.servers"}
        options["security.protocol"] = self._internal_protocol
        if self.settings.sasl == "oauthbearer":
            options.pop("sasl.mechanism", None)
        deadline = time.monotonic() + self.settings.base.start_timeout
        self._progress("waiting for the brokers to answer")
        while True:
            for node_id in node_ids:
                node = self._nodes[node_id]
                if node.pid is None or not alive(node.pid):
                    raise LocalKafkaError(
                        f"Kafka node {node_id} exited while starting; last lines of "
                        f"{node.directory / _LOG_FILE}:\n" + tail(node.directory / _LOG_FILE)
                    )
            ports = {self._nodes[i].internal_port for i in node_ids}
            client_ports = {self._nodes[i].port for i in node_ids}
            if await _brokers_answer(KafkaSettings(internal, options), ports, client_ports):
                return
            if time.monotonic() > deadline:
                first = self._nodes[min(node_ids)]
                raise LocalKafkaError(
                    f"the Kafka cluster did not answer within "
                    f"{self.settings.base.start_timeout:g} s; last lines of "
                    f"{first.directory / _LOG_FILE}:\n" + tail(first.directory / _LOG_FILE)
                )
            await asyncio.sleep(0.5)

    async def _stop_all(self) -> None:
        grace = self.settings.base.stop_grace
        running = [n for n in self._nodes.values() if n.pid is not None]
        await asyncio.gather(*(terminate(n.pid, grace) for n in running if n.pid is not None))
        for node in self._nodes.values():
            node.pid = None
            _remove_run_files(node.directory)
        self._nodes = {}


async def _brokers_answer(settings: KafkaSettings, ports: set[int], client_ports: set[int]) -> bool:
    """Whether the cluster's metadata lists a broker on each of ``ports`` and ``client_ports``
    accept connections."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError as AioKafkaError

    for port in (
        ports | client_ports
    ):  # a cheap probe first, so aiokafka does not log refused connections
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 2)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    kwargs = {**settings.client_kwargs("admin"), "client_id": "sluice-local-kafka"}
    kwargs["request_timeout_ms"] = 5000
    admin = AIOKafkaAdminClient(**kwargs)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    except (AioKafkaError, KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()
    return ports <= {broker["port"] for broker in cluster.get("brokers", [])}


def is_cluster(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds a cluster (rather than a single broker)."""
    return (data_dir / CLUSTER_FILE).exists()


def cluster_status(data_dir: Path) -> list[BrokerStatus]:
    """The status of each node running from ``data_dir``."""
    shape = _read_shape(data_dir)
    if not shape:
        return []
    statuses = [broker_status(data_dir / f"node-{node_id}") for node_id in shape.get("nodes", [])]
    return [status for status in statuses if status.running]


async def stop_cluster(data_dir: Path, *, grace: float = 15) -> list[BrokerStatus]:
    """Stop every node running from ``data_dir``; the statuses of those that ran."""
    running = cluster_status(data_dir)
    await asyncio.gather(*(terminate(s.pid, grace) for s in running if s.pid is not None))
    for status in running:
        _remove_run_files(status.data_dir)
    return running


def client_properties(data_dir: Path) -> dict[str, str]:
    """The client properties a cluster started from ``data_dir`` wrote."""
    return _read_properties(data_dir / CLIENT_PROPERTIES)


def _read_shape(data_dir: Path) -> dict[str, Any] | None:
    try:
        shape = json.loads((data_dir / CLUSTER_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return shape if isinstance(shape, dict) else None


def _read_properties(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def _write_properties(path: Path, properties: Mapping[str, str]) -> None:
    lines = ["# Written by sluice on every start; edits are overwritten."]
    # Java properties treat backslashes as escapes.
    lines += [f"{key}={value.replace(chr(92), chr(92) * 2)}" for key, value in properties.items()]
    # Private: with SCRAM it holds the password brokers replicate with.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(lines) + "\n")


def _cluster_id(data_dir: Path) -> str:
    """The cluster's id, made once: nodes formatted later must share it."""
    path = data_dir / "cluster.id"
    if path.exists():
        return path.read_text().strip()
    import base64
    import uuid

    while True:  # what Kafka's Uuid.randomUuid() prints
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            path.write_text(text + "\n")
            return text


def _remove_run_files(directory: Path) -> None:
    for name in (_PID_FILE, _PORT_FILE):
        (directory / name).unlink(missing_ok=True)
