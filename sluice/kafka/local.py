"""A Kafka broker on this machine, for ``sluice run``, ``sluice kafka`` and the tests.

The broker is the real Apache Kafka (KRaft, one node that is both broker and controller) run as a
JVM child process. Its jars are resolved once per Kafka version with Maven, from the ``pom.xml``
shipped next to this module, into a cache directory; later starts only read that cache.

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
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType

import platformdirs

from sluice.errors import LocalKafkaError

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

KAFKA_VERSION = "4.1.1"
MIN_JAVA = 17
LOG_TAIL_LINES = 30
_JAVA_HINT = f"Java {MIN_JAVA}+ is required, install a JDK or set JAVA_HOME"
_MARKER = "jars.json"
_PID_FILE = "kafka.pid"
_PORT_FILE = "kafka.port"
_LOG_FILE = "kafka.log"
_HOST = "127.0.0.1"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LocalKafkaSettings:
    """How to run the local broker. The CLI fills it from flags and environment variables."""

    #: Client port on 127.0.0.1; 0 picks a free one. CLI: ``--port`` / ``SLUICE_KAFKA_PORT``.
    port: int = 9092
    #: KRaft controller port on 127.0.0.1; 0 picks a free one.
    controller_port: int = 0
    #: Topic data, configuration and logs. ``None``: ``<user data dir>/sluice/kafka``.
    #: CLI: ``--data-dir`` / ``SLUICE_KAFKA_DATA_DIR``.
    data_dir: Path | None = None
    #: Where the jars are kept. ``None``: ``<user cache dir>/sluice/kafka-<kafka_version>``.
    cache_dir: Path | None = None
    #: The ``java`` executable (a name looked up on PATH, or a path).
    java: str = "java"
    #: A JDK home; when set and ``java`` is the default, ``<java_home>/bin/java`` is used.
    #: CLI: ``JAVA_HOME``.
    java_home: Path | None = None
    #: The ``mvn`` executable; only needed while the jar cache is empty.
    maven: str = "mvn"
    kafka_version: str = KAFKA_VERSION
    #: Options for the broker's JVM; small, a local broker holds little data.
    jvm_options: tuple[str, ...] = ("-Xms64m", "-Xmx512m", "-Djava.awt.headless=true")
    #: Off by default: Sluice creates every topic an application needs up front, so a producer
    #: writing to a topic nobody created is a bug that should fail here as it does in production.
    auto_create_topics: bool = False
    #: Seconds to wait for the broker to answer a metadata request.
    start_timeout: float = 90
    #: Seconds between SIGTERM and SIGKILL when stopping.
    stop_grace: float = 15
    #: Seconds Maven may take to download the jars (first start only).
    download_timeout: float = 600

    def resolved_data_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir.expanduser().absolute()
        return platformdirs.user_data_path("sluice") / "kafka"

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir.expanduser().absolute()
        return platformdirs.user_cache_path("sluice") / f"kafka-{self.kafka_version}"


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
        return None if self.port is None else f"{_HOST}:{self.port}"

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
        return f"{_HOST}:{self._port}"

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
        port = _free_port() if settings.port == 0 else _check_port(settings.port)
        controller_port = (
            _free_port(avoid=port)
            if settings.controller_port == 0
            else _check_port(settings.controller_port)
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = _write_config(self.data_dir, settings, port, controller_port)
        jvm = [java, *settings.jvm_options, f"-Dlog4j2.configurationFile={config.log4j}"]
        jvm += ["-cp", os.pathsep.join(str(jar) for jar in classpath)]
        if not (self.data_dir / "logs" / "meta.properties").exists():
            self._progress("formatting the broker's storage")
            await _format_storage(jvm, config.server, within=settings.start_timeout)
        self._progress(f"starting Kafka {settings.kafka_version} on {_HOST}:{port}")
        pid = _spawn([*jvm, "kafka.Kafka", str(config.server)], self.log_file)
        self._pid, self._port = pid, port
        try:
            (self.data_dir / _PID_FILE).write_text(f"{pid}\n")
            (self.data_dir / _PORT_FILE).write_text(f"{port}\n")
            await self._wait_ready()
        except BaseException:
            await _terminate(pid, settings.stop_grace)
            self._forget()
            raise
        self._detached = detach

    async def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``stop_grace``). Idempotent.

        Does nothing for a broker started with ``detach=True``.
        """
        if self._pid is None or self._detached:
            return
        await _terminate(self._pid, self.settings.stop_grace)
        self._forget()

    async def wait(self) -> None:
        """Return when the broker process exits (for a foreground ``sluice kafka start``)."""
        if self._pid is not None:
            await _exited(self._pid, within=math.inf)

    async def _wait_ready(self) -> None:
        assert self._pid is not None and self._port is not None
        deadline = time.monotonic() + self.settings.start_timeout
        self._progress("waiting for the broker to answer")
        while True:
            if not _alive(self._pid):
                raise LocalKafkaError(
                    f"the Kafka broker exited while starting; last lines of {self.log_file}:\n"
                    + _tail(self.log_file)
                )
            if await _answers_metadata(self.bootstrap_servers):
                return
            if time.monotonic() > deadline:
                raise LocalKafkaError(
                    f"the Kafka broker did not answer within {self.settings.start_timeout:g} s; "
                    f"last lines of {self.log_file}:\n" + _tail(self.log_file)
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
    if pid <= 0 or not _alive(pid):
        _remove_run_files(data_dir)
        return BrokerStatus(data_dir)
    return BrokerStatus(data_dir, pid, port)


async def stop_broker(data_dir: Path, *, grace: float = 15) -> BrokerStatus:
    """Stop the broker running from ``data_dir``, if any; return what was running."""
    status = broker_status(data_dir)
    if status.pid is not None:
        await _terminate(status.pid, grace)
        _remove_run_files(data_dir)
    return status


async def check_java(settings: LocalKafkaSettings) -> str:
    """The path of a ``java`` that is at least version 17, or a :class:`LocalKafkaError`."""
    if settings.java_home is not None and settings.java == "java":
        candidate: str | None = str(settings.java_home / "bin" / "java")
        where = f"JAVA_HOME={settings.java_home}"
    else:
        candidate = shutil.which(settings.java)
        where = f"{settings.java!r}"
    if candidate is None or not os.access(candidate, os.X_OK):
        raise LocalKafkaError(f"Java was not found ({where}); {_JAVA_HINT}")
    code, output = await _run([candidate, "-version"], within=60)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if code != 0 or match is None:
        raise LocalKafkaError(
            f"could not tell the version of {candidate}; {_JAVA_HINT}\n" + _last_lines(output)
        )
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_402" is Java 8
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise LocalKafkaError(f"found Java {major} at {candidate}; {_JAVA_HINT}")
    return candidate


async def ensure_jars(settings: LocalKafkaSettings, progress: Progress | None = None) -> list[Path]:
    """The broker's classpath, downloading it with Maven into the cache if not there yet."""
    cache = settings.resolved_cache_dir()
    pom = (resources.files("sluice.kafka") / "pom.xml").read_bytes()
    digest = hashlib.sha256(pom).hexdigest()
    jars = _cached_jars(cache, settings.kafka_version, digest)
    if jars is not None:
        return jars
    maven = shutil.which(settings.maven)
    if maven is None:
        raise LocalKafkaError(
            f"Maven ({settings.maven!r}) was not found; it is needed once, to download the "
            f"Kafka {settings.kafka_version} jars into {cache}. Install Maven and try again."
        )
    if progress is not None:
        progress(f"downloading the Kafka {settings.kafka_version} jars with Maven (first run only)")
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        (staging / "pom.xml").write_bytes(pom)
        code, output = await _run(
            [
                maven,
                "-q",
                "-B",
                "-Dstyle.color=never",
                "-f",
                str(staging / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging / 'lib'}",
                f"-Dkafka.version={settings.kafka_version}",
            ],
            within=settings.download_timeout,
            cwd=staging,
        )
        names = sorted(p.name for p in (staging / "lib").glob("*.jar"))
        if code != 0 or not names:
            raise LocalKafkaError(
                f"Maven could not download the Kafka {settings.kafka_version} jars "
                f"(exit code {code}):\n" + _last_lines(output)
            )
        marker = {"kafka_version": settings.kafka_version, "pom_sha256": digest, "jars": names}
        (staging / _MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        (staging / "pom.xml").unlink()
        _publish(staging, cache, settings.kafka_version, digest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    jars = _cached_jars(cache, settings.kafka_version, digest)
    if jars is None:
        raise LocalKafkaError(f"the Kafka jar cache {cache} is incomplete after downloading")
    return jars


def _cached_jars(cache: Path, version: str, digest: str) -> list[Path] | None:
    try:
        marker = json.loads((cache / _MARKER).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if marker.get("kafka_version") != version or marker.get("pom_sha256") != digest:
        return None
    jars = [cache / "lib" / name for name in marker.get("jars", [])]
    return jars if jars and all(jar.is_file() for jar in jars) else None


def _publish(staging: Path, cache: Path, version: str, digest: str) -> None:
    """Move a complete download into place; a concurrent start may have won the race."""
    for _ in range(2):
        try:
            os.replace(staging, cache)
            return
        except OSError:
            if _cached_jars(cache, version, digest) is not None:
                return  # another process published the same jars meanwhile
            shutil.rmtree(cache, ignore_errors=True)  # an older or incomplete cache
    raise LocalKafkaError(f"could not move the downloaded Kafka jars into {cache}")


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
        "controller.quorum.voters": f"1@{_HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{_HOST}:{port},CONTROLLER://{_HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{_HOST}:{port}",
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
    }
    server = data_dir / "server.properties"
    lines = ["# Written by sluice on every start; edits are overwritten."]
    lines += [f"{key}={_escape(value)}" for key, value in properties.items()]
    server.write_text("\n".join(lines) + "\n")
    log4j = data_dir / "log4j2.yaml"
    log4j.write_bytes((resources.files("sluice.kafka") / "log4j2.yaml").read_bytes())
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
    code, output = await _run(command, within=within)
    if code != 0:
        raise LocalKafkaError(
            f"formatting the Kafka storage failed (exit code {code}):\n" + _last_lines(output)
        )


def _spawn(argv: list[str], log_file: Path) -> int:
    """Start ``argv`` in its own session with stdout and stderr appended to a fresh log file."""
    if log_file.exists():
        os.replace(log_file, log_file.with_name(log_file.name + ".1"))
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return os.posix_spawn(
            argv[0],
            argv,
            os.environ,  # the broker inherits this process's environment, as any child does
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            # Its own session: Ctrl-C in the terminal reaches only sluice, which then stops the
            # broker cleanly, and a detached broker survives the terminal closing.
            setsid=True,
            setsigdef=(signal.SIGINT, signal.SIGTERM),
        )
    except OSError as exc:
        raise LocalKafkaError(f"could not start {argv[0]}: {exc}") from exc
    finally:
        os.close(log_fd)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running Kafka broker; reaps it if it is our exited child."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done != pid  # our own child: the kernel's answer is the whole answer
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or a new process of another user
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    try:  # a recycled pid is not our broker; a zombie has an empty command line
        return b"kafka.Kafka" in (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


async def _terminate(pid: int, grace: float) -> None:
    if grace > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if await _exited(pid, within=grace):
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not await _exited(pid, within=10):
        raise LocalKafkaError(f"the Kafka broker (pid {pid}) did not exit after SIGKILL")


async def _exited(pid: int, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


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


def _check_port(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the JVM does: a port with connections in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_HOST, port))
        except OSError as exc:
            raise LocalKafkaError(
                f"port {port} is already in use ({exc.strerror}); stop what listens on it "
                "or choose another port"
            ) from exc
    return port


def _free_port(avoid: int | None = None) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((_HOST, 0))
            port: int = sock.getsockname()[1]
        if port != avoid:
            return port


async def _run(argv: list[str], *, within: float, cwd: Path | None = None) -> tuple[int, str]:
    """Run a short command; its exit code and its stdout and stderr together."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
        )
    except OSError as exc:
        raise LocalKafkaError(f"could not run {argv[0]}: {exc}") from exc
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise LocalKafkaError(f"{Path(argv[0]).name} did not finish within {within:g} s") from None
    assert process.returncode is not None
    return process.returncode, stdout.decode(errors="replace")


def _remove_run_files(data_dir: Path) -> None:
    for name in (_PID_FILE, _PORT_FILE):
        (data_dir / name).unlink(missing_ok=True)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return _last_lines(path.read_text(errors="replace"), lines)
    except FileNotFoundError:
        return "  (no log written)"


def _last_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # Maven's colours
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"  {line}" for line in kept) or "  (no output)"
