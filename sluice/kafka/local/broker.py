"""A Kafka broker on this machine, for ``sluice run``, ``sluice kafka`` and the tests.

The broker is the real Apache Kafka (KRaft, one node that is both broker and controller) run as a
JVM child process. Its jars are resolved once per Kafka version with Maven, from the ``pom.xml``
shipped in this package, into a cache directory; later starts only read that cache
(:mod:`sluice.kafka.local.jars`). Spawning and stopping the JVM is
:mod:`sluice.kafka.local.processes`.

>>> async with LocalKafka(LocalKafkaSettings(port=0)) as kafka:  # doctest: +SKIP
...     print(kafka.bootstrap_servers)
127.0.0.1:40123

The data directory holds everything a broker writes: ``server.properties``, ``log4j2.yaml``,
the topic data (``logs/``), the broker's output (``kafka.log``) and, while it runs, ``kafka.pid``
and ``kafka.port``, which let another process (``sluice kafka status|stop``) find it. Starting
again with the same data directory keeps the topics.

POSIX only: the broker runs in its own session and is stopped with SIGTERM.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType

from sluice.errors import LocalKafkaError
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
from sluice.kafka.local.settings import KAFKA_VERSION, LocalKafkaSettings
from sluice.net import free_port

__all__ = [
    "KAFKA_VERSION",
    "BrokerStatus",
    "LocalKafka",
    "LocalKafkaSettings",
    "broker_status",
    "check_java",
    "ensure_jars",
    "stop_broker",
]

_PID_FILE = "kafka.pid"
_PORT_FILE = "kafka.port"
_LOG_FILE = "kafka.log"


@dataclass(frozen=True)
class BrokerStatus:
    """What ``kafka.pid`` / ``kafka.port`` in a data directory say, checked against the OS."""

    data_dir: Path
    pid: int | None = None
    port: int | None = None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def bootstrap_servers(self) -> str | None:
        return None if self.port is None else f"{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / _LOG_FILE


class LocalKafka:
    """A Kafka broker child process; ``async with`` starts it and stops it.

    ``progress`` receives short messages ("downloading Kafka jars ...") while starting, for a
    spinner. With ``start(detach=True)`` the broker outlives this object and this process; stop
    it with :func:`stop_broker` (what ``sluice kafka stop`` does).
    """

    def __init__(
        self, settings: LocalKafkaSettings | None = None, *, progress: Progress | None = None
    ) -> None:
        self.settings = settings or LocalKafkaSettings()
        self.data_dir = self.settings.resolved_data_dir()
        self.log_file = self.data_dir / _LOG_FILE
        self._progress = progress or (lambda message: None)
        self._pid: int | None = None
        self._port: int | None = None
        self._detached = False

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def bootstrap_servers(self) -> str:
        if self._port is None:
            raise LocalKafkaError("the local Kafka broker is not started")
        return f"{HOST}:{self._port}"

    async def __aenter__(self) -> LocalKafka:
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
        """Provision and start the broker; return once it answers a metadata request."""
        if self._pid is not None:
            raise LocalKafkaError(f"this broker is already started (pid {self._pid})")
        settings = self.settings
        running = broker_status(self.data_dir)
        if running.running:
            raise LocalKafkaError(
                f"a Kafka broker is already running from {self.data_dir} "
                f"(pid {running.pid}, {running.bootstrap_servers}); stop it first"
            )
        self._progress("checking Java")
        java = await check_java(settings)
        classpath = await ensure_jars(settings, self._progress)
        port = free_port() if settings.port == 0 else check_port(settings.port)
        controller_port = (
            free_port(avoid=port)
            if settings.controller_port == 0
            else check_port(settings.controller_port)
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = _write_config(self.data_dir, settings, port, controller_port)
        jvm = [java, *settings.jvm_options, f"-Dlog4j2.configurationFile={config.log4j}"]
        jvm += ["-cp", os.pathsep.join(str(jar) for jar in classpath)]
        if not (self.data_dir / "logs" / "meta.properties").exists():
            self._progress("formatting the broker's storage")
            await _format_storage(jvm, config.server, within=settings.start_timeout)
        self._progress(f"starting Kafka {settings.kafka_version} on {HOST}:{port}")
        pid = spawn([*jvm, "kafka.Kafka", str(config.server)], self.log_file)
        self._pid, self._port = pid, port
        try:
            (self.data_dir / _PID_FILE).write_text(f"{pid}\n")
            (self.data_dir / _PORT_FILE).write_text(f"{port}\n")
            await self._wait_ready()
        except BaseException:
            await terminate(pid, settings.stop_grace)
            self._forget()
            raise
        self._detached = detach

    async def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``stop_grace``). Idempotent.

        Does nothing for a broker started with ``detach=True``.
        """
        if self._pid is None or self._detached:
            return
        await terminate(self._pid, self.settings.stop_grace)
        self._forget()

    async def wait(self) -> None:
        """Return when the broker process exits (for a foreground ``sluice kafka start``)."""
        if self._pid is not None:
            await exited(self._pid, within=math.inf)

    async def _wait_ready(self) -> None:
        assert self._pid is not None and self._port is not None
        deadline = time.monotonic() + self.settings.start_timeout
        self._progress("waiting for the broker to answer")
        while True:
            if not alive(self._pid):
                raise LocalKafkaError(
                    f"the Kafka broker exited while starting; last lines of {self.log_file}:\n"
                    + tail(self.log_file)
                )
            if await _answers_metadata(self.bootstrap_servers):
                return
            if time.monotonic() > deadline:
                raise LocalKafkaError(
                    f"the Kafka broker did not answer within {self.settings.start_timeout:g} s; "
                    f"last lines of {self.log_file}:\n" + tail(self.log_file)
                )
            await asyncio.sleep(0.25)

    def _forget(self) -> None:
        _remove_run_files(self.data_dir)
        self._pid = self._port = None


def broker_status(data_dir: Path) -> BrokerStatus:
    """Whether a broker runs from ``data_dir``; removes the run files of a dead one."""
    try:
        pid = int((data_dir / _PID_FILE).read_text())
        port = int((data_dir / _PORT_FILE).read_text())
    except (FileNotFoundError, ValueError):
        pid = 0
    if pid <= 0 or not alive(pid):
        _remove_run_files(data_dir)
        return BrokerStatus(data_dir)
    return BrokerStatus(data_dir, pid, port)


async def stop_broker(data_dir: Path, *, grace: float = 15) -> BrokerStatus:
    """Stop the broker running from ``data_dir``, if any; return what was running."""
    status = broker_status(data_dir)
    if status.pid is not None:
        await terminate(status.pid, grace)
        _remove_run_files(data_dir)
    return status


@dataclass(frozen=True)
class _Config:
    server: Path
    log4j: Path


def _write_config(
    data_dir: Path, settings: LocalKafkaSettings, port: int, controller_port: int
) -> _Config:
    # Static voters (not a --standalone dynamic quorum) so the controller port may change
    # between starts: with a dynamic quorum the first port is recorded in the metadata log.
    properties = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "auto.create.topics.enable": str(settings.auto_create_topics).lower(),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # A development broker: clients may ask for short sessions, so a killed worker's
        # partitions move to its replacement in a second or two instead of ten.
        "group.min.session.timeout.ms": "1000",
    }
    server = data_dir / "server.properties"
    lines = ["# Written by sluice on every start; edits are overwritten."]
    lines += [f"{key}={_escape(value)}" for key, value in properties.items()]
    server.write_text("\n".join(lines) + "\n")
    log4j = data_dir / "log4j2.yaml"
    log4j.write_bytes((resources.files("sluice.kafka.local") / "log4j2.yaml").read_bytes())
    return _Config(server, log4j)


def _escape(value: str) -> str:
    # Java properties treat backslashes as escapes (Windows-style paths, odd home directories).
    return value.replace("\\", "\\\\")


def _cluster_id() -> str:
    # What Kafka's Uuid.randomUuid() prints: 22 base64url characters, never starting with "-".
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


async def _format_storage(jvm: list[str], server: Path, *, within: float) -> None:
    command = [*jvm, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(server)]
    code, output = await run(command, within=within)
    if code != 0:
        raise LocalKafkaError(
            f"formatting the Kafka storage failed (exit code {code}):\n" + last_lines(output)
        )


async def _answers_metadata(bootstrap_servers: str) -> bool:
    host, _, port = bootstrap_servers.rpartition(":")
    try:  # a cheap probe first, so aiokafka does not log connection errors while the JVM boots
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()

    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="sluice-local-kafka", request_timeout_ms=5000
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()
    return bool(cluster.get("brokers"))


def _remove_run_files(data_dir: Path) -> None:
    for name in (_PID_FILE, _PORT_FILE):
        (data_dir / name).unlink(missing_ok=True)
