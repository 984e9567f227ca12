"""camel-source in real worker processes: a real JVM running camel-main with real Camel
components, records written to the real broker.

Each test writes an application with one camel-source agent (and sometimes a processor after
it), creates its topics, starts the worker and reads the output topic from the start.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.workers.camel.conftest import QUARTZ_URL
from tests.workers.conftest import StartWorker, Worker, prepare, read_all

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("camel_jars")]

FILES = 100


def write_app(
    root: Path,
    source: dict[str, Any],
    *,
    processor: str | None = None,
    dependencies: list[Any] | None = None,
    linger_ms: int | None = None,
) -> tuple[Path, str]:
    """An application whose camel-source ``source`` writes to a new topic; (folder, topic)."""
    topic = f"camel-{uuid.uuid4().hex[:8]}"
    app = root / f"app-{topic}"
    (app / "python").mkdir(parents=True)
    agents: list[dict[str, Any]] = [
        {"id": "camel", "type": "camel-source", "configuration": source}
    ]
    if processor is not None:
        (app / "python" / "steps.py").write_text(processor)
        agents.append(
            {"id": "step", "type": "python-processor", "configuration": {"className": "steps.Step"}}
        )
    agents[-1]["output"] = topic
    pipeline = {
        "topics": [{"name": topic, "creation-mode": "create-if-not-exists"}],
        "pipeline": agents,
    }
    (app / "pipeline.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    if dependencies is not None:
        configuration = {"configuration": {"dependencies": dependencies}}
        (app / "configuration.yaml").write_text(yaml.safe_dump(configuration))
    if linger_ms is not None:
        # A slow Kafka: every acknowledgement waits for the producer's linger.
        instance = {
            "instance": {
                "streamingCluster": {
                    "type": "kafka",
                    "configuration": {"admin": {"linger.ms": linger_ms}},
                }
            }
        }
        (root / f"instance-{topic}.yaml").write_text(yaml.safe_dump(instance))
    return app, topic


def instance_of(app: Path, topic: str) -> Path | None:
    path = app.parent / f"instance-{topic}.yaml"
    return path if path.exists() else None


async def run_source(start_worker: StartWorker, bootstrap: str, app: Path, topic: str) -> Worker:
    await prepare(app, bootstrap)
    return await start_worker(app, "camel", instance=instance_of(app, topic))


def make_files(inbox: Path, count: int) -> dict[str, bytes]:
    inbox.mkdir(parents=True, exist_ok=True)
    contents = {f"{i:03d}.txt": f"file {i} ✓\n".encode() for i in range(count)}
    for name, data in contents.items():
        (inbox / name).write_bytes(data)
    return contents


def jvm_pid(worker: Worker) -> int:
    found = [
        m for line in worker.output if (m := re.search(r"Camel JVM started \(pid (\d+)\)", line))
    ]
    assert found, "\n".join(worker.output)
    return int(found[-1].group(1))


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def gone(pid: int, within: float = 20) -> bool:
    """Whether process ``pid`` ends within ``within`` seconds."""
    return await until(lambda: not running(pid), within)


async def until(check: Any, within: float = 20) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if check():
            return True
        await asyncio.sleep(0.1)
    return bool(check())


async def keys_in(bootstrap: str, topic: str, wanted: set[str], within: float = 30) -> set[str]:
    """The record keys in ``topic``, read until every wanted key came or time is up."""
    keys: set[str] = set()
    deadline = asyncio.get_running_loop().time() + within
    while not wanted <= keys and asyncio.get_running_loop().time() < deadline:
        got = await read_all(bootstrap, topic, len(wanted), within=2)
        keys = {str(item.record.key) for item in got}
    return keys


def pending(inbox: Path) -> set[str]:
    return {path.name for path in inbox.glob("*.txt")}


async def test_langstream_timer_example(
    start_worker: StartWorker, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """LangStream's CamelSourceTest: timer://test with period and repeatCount options."""
    app, topic = write_app(
        tmp_path,
        {
            "component-uri": "timer://test",
            "component-options": {"period": 1, "repeatCount": 3, "includeMetadata": True},
            "key-header": "CamelTimerFiredTime",
            "max-buffered-records": 10,
        },
    )
    worker = await run_source(start_worker, kafka_bootstrap, app, topic)
    got = await read_all(kafka_bootstrap, topic, 3, within=20, settle=1.5)
    assert len(got) == 3, got
    for item in got:
        record = item.record
        assert record.value is None  # a timer exchange has no body
        assert set(record.headers) == {"CamelTimerFiredTime", "CamelMessageTimestamp"}
        assert record.key == int(record.headers["CamelTimerFiredTime"])
        assert item.event_source == f"/default/{app.name}/agents/camel"
    assert await worker.stop() == 0
    assert await gone(jvm_pid(worker))


async def test_files_become_records_and_are_moved_once_safe(
    start_worker: StartWorker, kafka_bootstrap: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    contents = make_files(inbox, FILES)
    app, topic = write_app(
        tmp_path,
        {
            "component-uri": f"file:{inbox}",
            "component-options": {"move": "done/${file:name}"},
            "key-header": "CamelFileName",
        },
    )
    worker = await run_source(start_worker, kafka_bootstrap, app, topic)
    got = await read_all(kafka_bootstrap, topic, FILES, within=40, settle=0.5)
    records = {item.record.key: item.record for item in got}
    assert len(got) == FILES and set(records) == set(contents)
    for name, record in records.items():
        assert record.value == contents[name]
        assert record.headers["CamelFileName"] == name
        assert record.headers["CamelFileLength"] == str(len(contents[name]))
    assert await until(lambda: not pending(inbox))
    assert {p.name for p in (inbox / "done").iterdir()} == set(contents)
    assert await worker.stop() == 0


async def test_sigkill_mid_way_loses_no_file(
    start_worker: StartWorker, kafka_bootstrap: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    contents = make_files(inbox, FILES)
    app, topic = write_app(
        tmp_path,
        {
            "component-uri": f"file:{inbox}",
            # Five files per poll, polls 200 ms apart: the kill lands mid-way.
            "component-options": {
                "move": "done/${file:name}",
                "maxMessagesPerPoll": 5,
                "delay": 100,
            },
            "key-header": "CamelFileName",
        },
    )
    worker = await run_source(start_worker, kafka_bootstrap, app, topic)
    jvm = jvm_pid(worker)
    assert len(await read_all(kafka_bootstrap, topic, 20, within=30)) >= 20
    await worker.stop(signal.SIGKILL)
    assert await gone(jvm), "the JVM outlived its worker"

    in_kafka = await keys_in(kafka_bootstrap, topic, set(contents), within=3)
    left = pending(inbox)
    moved = {p.name for p in (inbox / "done").iterdir()}
    assert left, "the kill came too late to test anything"
    assert left | in_kafka == set(contents)  # every file is in the folder or in Kafka
    assert moved <= in_kafka  # a file is moved only once its record is safe
    assert not (moved & left)

    again = await start_worker(app, "camel")
    assert await keys_in(kafka_bootstrap, topic, set(contents)) == set(contents)
    assert await until(lambda: not pending(inbox))
    assert {p.name for p in (inbox / "done").iterdir()} == set(contents)
    assert await again.stop() == 0


async def test_options_that_need_encoding(
    start_worker: StartWorker, kafka_bootstrap: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "in box"
    inbox.mkdir()
    for name in ("keep+1.txt", "keep+2.txt", "keep 3.txt", "other.txt"):
        (inbox / name).write_text(name)
    app, topic = write_app(
        tmp_path,
        {
            "component-uri": f"file:{inbox}",
            "component-options": {
                "include": r"keep\+.*\.txt",  # a plus sent unencoded would read as a space
                "move": "done & more/${file:name}.ok",  # an ampersand would end the option
            },
            "key-header": "CamelFileName",
        },
    )
    worker = await run_source(start_worker, kafka_bootstrap, app, topic)
    got = await read_all(kafka_bootstrap, topic, 2, within=20, settle=1.5)
    assert sorted(item.record.key for item in got) == ["keep+1.txt", "keep+2.txt"]
    assert await until(
        lambda: (
            (inbox / "done & more").is_dir() and len(list((inbox / "done & more").iterdir())) == 2
        )
    )
    assert sorted(p.name for p in (inbox / "done & more").iterdir()) == [
        "keep+1.txt.ok",
        "keep+2.txt.ok",
    ]
    assert pending(inbox) == {"keep 3.txt", "other.txt"}
    assert await worker.stop() == 0


SLOW_STEP = """
import time


class Step:
    def process(self, record):
        time.sleep(0.02)
        return [record]
"""


async def test_one_buffered_record_and_a_slow_kafka_lose_nothing(
    start_worker: StartWorker, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A timer fires every 5 ms while each record takes over 100 ms to be safe: the exchanges
    wait (back-pressure) instead of failing, so every tick becomes a record."""
    app, topic = write_app(
        tmp_path,
        {
            "component-uri": "timer:fast",
            "component-options": {"period": 5, "repeatCount": 15, "includeMetadata": True},
            "max-buffered-records": 1,
        },
        processor=SLOW_STEP,
        linger_ms=100,
    )
    worker = await run_source(start_worker, kafka_bootstrap, app, topic)
    got = await read_all(kafka_bootstrap, topic, 15, within=30, settle=1.0)
    assert len(got) == 15
    fired = [int(item.record.headers["CamelTimerFiredTime"]) for item in got]
    assert fired == sorted(fired)
    assert await worker.stop() == 0
    assert not [line for line in worker.output if "Failed delivery" in line or "Exception" in line]


async def test_one_buffered_record_slow_kafka_and_a_kill(
    start_worker: StartWorker, kafka_bootstrap: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    contents = make_files(inbox, 20)
    app, topic = write_app(
        tmp_path,
        {
            "component-uri": f"file:{inbox}",
            "component-options": {"move": "done/${file:name}"},
            "key-header": "CamelFileName",
            "max-buffered-records": 1,
        },
        linger_ms=150,
    )
    worker = await run_source(start_worker, kafka_bootstrap, app, topic)
    assert len(await read_all(kafka_bootstrap, topic, 3, within=30)) >= 3
    await worker.stop(signal.SIGKILL)
    assert await gone(jvm_pid(worker))
    in_kafka = await keys_in(kafka_bootstrap, topic, set(contents), within=3)
    assert pending(inbox) | in_kafka == set(contents)
    assert {p.name for p in (inbox / "done").iterdir()} <= in_kafka

    again = await start_worker(app, "camel", instance=instance_of(app, topic))
    assert await keys_in(kafka_bootstrap, topic, set(contents)) == set(contents)
    assert await until(lambda: not pending(inbox))
    assert await again.stop() == 0


async def test_unknown_component_names_the_scheme_and_the_dependency(
    start_worker: StartWorker, kafka_bootstrap: str, tmp_path: Path
) -> None:
    # LangStream's camel-source example, without its dependencies.
    app, _ = write_app(tmp_path, {"component-uri": "github:PULLREQUESTCOMMENT/main"})
    await prepare(app, kafka_bootstrap)
    worker = await start_worker(app, "camel", ready=False)
    assert await worker.exited() == 1
    output = "\n".join(worker.output)
    assert "agent camel: camel-source: no Camel component for the scheme 'github'" in output
    assert "components available: file, http, https, log, timer" in output
    assert '- "org.apache.camel:camel-github"' in output
    assert "Traceback" not in output


async def test_a_dependency_brings_its_component(
    start_worker: StartWorker, kafka_bootstrap: str, tmp_path: Path
) -> None:
    app, topic = write_app(
        tmp_path,
        {
            "component-uri": "quartz://sluice/tick",
            "component-options": {"trigger.repeatInterval": 50, "trigger.repeatCount": 2},
            "key-header": "triggerName",
        },
        dependencies=[{"name": "Camel Quartz", "url": QUARTZ_URL, "type": "java-library"}],
    )
    worker = await run_source(start_worker, kafka_bootstrap, app, topic)
    got = await read_all(kafka_bootstrap, topic, 3, within=20, settle=1.0)
    assert len(got) == 3
    for item in got:
        assert item.record.key == "tick"
        assert item.record.headers["triggerGroup"] == "sluice"
        assert "scheduler" not in item.record.headers  # an object, left out
    assert await worker.stop() == 0


async def test_a_dying_jvm_is_restarted(
    start_worker: StartWorker, kafka_bootstrap: str, tmp_path: Path
) -> None:
    app, topic = write_app(
        tmp_path, {"component-uri": "timer:tick", "component-options": {"period": 100}}
    )
    worker = await run_source(start_worker, kafka_bootstrap, app, topic)
    first = jvm_pid(worker)
    assert len(await read_all(kafka_bootstrap, topic, 3, within=20)) >= 3
    os.kill(first, signal.SIGKILL)
    assert await until(lambda: any("runs again (restart 1)" in line for line in worker.output))
    assert jvm_pid(worker) != first
    log = "\n".join(worker.output)
    assert re.search(
        rf"the Camel JVM \(pid {first}\) exited with code -9 after \d+ s; starting it again in 1 s",
        log,
    )
    before = len(await read_all(kafka_bootstrap, topic, 1, within=2, settle=0.5))
    assert len(await read_all(kafka_bootstrap, topic, before + 5, within=20)) >= before + 5
    assert await worker.stop() == 0
