"""The local broker: a real JVM running real Kafka, driven through the Python API and the CLI.

The jar cache is the user cache folder (the default), so only the first run of these tests on a
machine downloads anything; every broker start here uses a fresh data folder and a free port.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sluice.errors import LocalKafkaError
from sluice.kafka.local import (
    LocalKafka,
    LocalKafkaSettings,
    broker_status,
    ensure_jars,
    stop_broker,
)

pytestmark = pytest.mark.kafka

NO_SUCH_BINARY = "/nonexistent/sluice-test/bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def settings(tmp_path: Path) -> LocalKafkaSettings:
    return LocalKafkaSettings(port=0, data_dir=tmp_path / "kafka", start_timeout=60)


@pytest.fixture
async def warm_cache() -> None:
    """The default jar cache, filled (with Maven) if this machine has not run a broker yet."""
    await ensure_jars(LocalKafkaSettings())


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics: list[str] = await admin.list_topics()
        return topics
    finally:
        await admin.close()


async def test_start_produce_consume_stop(settings: LocalKafkaSettings) -> None:
    topic = f"test-{uuid.uuid4().hex[:8]}"
    async with LocalKafka(settings) as kafka:
        bootstrap = kafka.bootstrap_servers
        assert bootstrap.startswith("127.0.0.1:")
        pid = kafka.pid
        status = broker_status(kafka.data_dir)
        assert (status.running, status.pid, status.bootstrap_servers) == (True, pid, bootstrap)

        await create_topic(bootstrap, topic)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hello", key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"group-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            message = await consumer.getone()
        finally:
            await consumer.stop()
        assert (message.key, message.value) == (b"k", b"hello")

    assert kafka.pid is None
    assert not broker_status(kafka.data_dir).running
    assert not (kafka.data_dir / "kafka.pid").exists()
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    await kafka.stop()  # idempotent


async def test_restart_keeps_topics_and_uses_the_jar_cache(settings: LocalKafkaSettings) -> None:
    topic = f"kept-{uuid.uuid4().hex[:8]}"
    async with LocalKafka(settings) as kafka:
        await create_topic(kafka.bootstrap_servers, topic)
    cache = settings.resolved_cache_dir()
    assert (cache / "jars.json").is_file()

    # A warm cache means no Maven at all, so no network: a missing `mvn` must not matter.
    offline = replace(settings, maven=NO_SUCH_BINARY)
    async with LocalKafka(offline) as kafka:
        assert topic in await list_topics(kafka.bootstrap_servers)


@pytest.mark.usefixtures("warm_cache")
async def test_port_in_use(settings: LocalKafkaSettings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        kafka = LocalKafka(replace(settings, port=port))
        with pytest.raises(LocalKafkaError, match=f"port {port} is already in use"):
            await kafka.start()
    assert kafka.pid is None


async def test_missing_java(settings: LocalKafkaSettings) -> None:
    kafka = LocalKafka(replace(settings, java=NO_SUCH_BINARY))
    with pytest.raises(
        LocalKafkaError, match=r"Java 17\+ is required, install a JDK or set JAVA_HOME"
    ):
        await kafka.start()


async def test_java_home_without_java(settings: LocalKafkaSettings, tmp_path: Path) -> None:
    kafka = LocalKafka(replace(settings, java_home=tmp_path / "no-jdk"))
    with pytest.raises(LocalKafkaError, match=r"JAVA_HOME=.*no-jdk.*Java 17\+ is required"):
        await kafka.start()


async def test_old_java_names_the_version(settings: LocalKafkaSettings, tmp_path: Path) -> None:
    java = tmp_path / "java"
    java.write_text("#!/bin/sh\necho 'java version \"1.8.0_402\"' >&2\n")
    java.chmod(0o755)
    kafka = LocalKafka(replace(settings, java=str(java)))
    with pytest.raises(LocalKafkaError, match=r"found Java 8 at .*Java 17\+ is required"):
        await kafka.start()


async def test_missing_maven_with_an_empty_cache(
    settings: LocalKafkaSettings, tmp_path: Path
) -> None:
    cache = tmp_path / "cache" / "kafka-4.1.1"
    kafka = LocalKafka(replace(settings, cache_dir=cache, maven=NO_SUCH_BINARY))
    with pytest.raises(LocalKafkaError, match=r"Maven .* was not found; it is needed once"):
        await kafka.start()
    assert not cache.exists()


async def test_maven_failure_shows_its_output(settings: LocalKafkaSettings, tmp_path: Path) -> None:
    maven = tmp_path / "mvn"
    maven.write_text("#!/bin/sh\necho '[ERROR] Could not resolve kafka_2.13: no network'\nexit 1\n")
    maven.chmod(0o755)
    cache = tmp_path / "cache" / "kafka-4.1.1"
    kafka = LocalKafka(replace(settings, cache_dir=cache, maven=str(maven)))
    with pytest.raises(LocalKafkaError, match=r"(?s)exit code 1.*no network") as caught:
        await kafka.start()
    assert "Maven could not download" in str(caught.value)
    assert not cache.exists()
    assert list(cache.parent.iterdir()) == []  # the staging folder is gone too


async def test_download_replaces_an_outdated_cache(tmp_path: Path) -> None:
    # A stand-in for Maven that "downloads" one jar where it is told to.
    maven = tmp_path / "mvn"
    maven.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do case "$arg" in -DoutputDirectory=*) out="${arg#*=}";; esac; done\n'
        'mkdir -p "$out" && touch "$out/kafka_2.13-fake.jar"\n'
    )
    maven.chmod(0o755)
    cache = tmp_path / "cache" / "kafka-4.1.1"
    (cache / "lib").mkdir(parents=True)
    (cache / "lib" / "old.jar").touch()
    outdated = {"kafka_version": "4.1.1", "pom_sha256": "an older pom", "jars": ["old.jar"]}
    (cache / "jars.json").write_text(json.dumps(outdated))
    settings = LocalKafkaSettings(cache_dir=cache, maven=str(maven))

    assert await ensure_jars(settings) == [cache / "lib" / "kafka_2.13-fake.jar"]
    assert json.loads((cache / "jars.json").read_text())["pom_sha256"] != "an older pom"
    assert [p.name for p in cache.parent.iterdir()] == ["kafka-4.1.1"]  # no staging left
    offline = replace(settings, maven=NO_SUCH_BINARY)
    assert await ensure_jars(offline) == [cache / "lib" / "kafka_2.13-fake.jar"]


@pytest.mark.usefixtures("warm_cache")
async def test_broker_dying_at_start_shows_the_log_tail(settings: LocalKafkaSettings) -> None:
    assert settings.data_dir is not None
    (settings.data_dir / "logs").mkdir(parents=True)
    (settings.data_dir / "logs" / "meta.properties").write_text("version=7\n")
    kafka = LocalKafka(settings)
    with pytest.raises(LocalKafkaError) as caught:
        await kafka.start()
    message = str(caught.value)
    assert message.startswith("the Kafka broker exited while starting; last lines of ")
    assert "Unknown meta.properties version number 7" in message
    assert len(message.splitlines()) <= 31
    assert not broker_status(settings.data_dir).running


async def test_stale_pid_file_is_ignored_and_removed(tmp_path: Path) -> None:
    exited = await asyncio.create_subprocess_exec("true")
    await exited.wait()
    # A pid that is not a Kafka broker (this test process) counts as stale too.
    for pid in (exited.pid, os.getpid()):
        (tmp_path / "kafka.pid").write_text(f"{pid}\n")
        (tmp_path / "kafka.port").write_text("9092\n")
        assert not broker_status(tmp_path).running
        assert not (tmp_path / "kafka.pid").exists()
        assert not (await stop_broker(tmp_path)).running


async def sluice(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``sluice`` CLI in a child process, off the event loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sluice.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.usefixtures("warm_cache")
async def test_cli_start_status_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    port = free_port()
    try:
        started = await sluice("kafka", "start", "--port", str(port), "--data-dir", str(data_dir))
        assert started.returncode == 0, started.stderr
        assert f"Kafka is running at 127.0.0.1:{port}" in started.stdout
        assert f"log: {data_dir / 'kafka.log'}" in started.stdout

        # The broker outlived the command, and is found from the data folder alone.
        assert await list_topics(f"127.0.0.1:{port}") == []
        status = await sluice("kafka", "status", env={"SLUICE_KAFKA_DATA_DIR": str(data_dir)})
        assert status.returncode == 0, status.stderr
        assert f"running: 127.0.0.1:{port} (pid " in status.stdout

        again = await sluice(
            "kafka", "start", "--port", str(free_port()), "--data-dir", str(data_dir)
        )
        assert again.returncode == 1
        assert again.stderr.startswith("error: a Kafka broker is already running from ")
        assert "Traceback" not in again.stderr

        stopped = await sluice("kafka", "stop", "--data-dir", str(data_dir))
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped the Kafka broker at 127.0.0.1:{port}" in stopped.stdout
        status = await sluice("kafka", "status", "--data-dir", str(data_dir))
        assert (status.returncode, status.stdout.split()[:2]) == (3, ["not", "running"])
        assert (await sluice("kafka", "stop", "--data-dir", str(data_dir))).returncode == 0
    finally:
        await stop_broker(data_dir)


@pytest.mark.usefixtures("warm_cache")
async def test_cli_port_in_use_is_a_clean_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await sluice(
            "kafka", "start", "--data-dir", str(tmp_path), env={"SLUICE_KAFKA_PORT": str(port)}
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: port {port} is already in use")
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("warm_cache")
async def test_cli_foreground_stops_the_broker_on_ctrl_c(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    command = [sys.executable, "-m", "sluice.cli.main", "kafka", "start", "--foreground"]
    process = await asyncio.create_subprocess_exec(
        *command,
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line.startswith(b"Kafka is running at 127.0.0.1:"), line
        assert broker_status(data_dir).running
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
        await stop_broker(data_dir)
    assert process.returncode == 0, stderr.decode()
    assert not broker_status(data_dir).running
