"""Fixtures for runtime tests: real worker processes against the real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.application.model import TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.net import free_port
from sluice.record import Record


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    health_port: int
    output: list[str]
    reader: asyncio.Task[None]

    async def ready(self, within: float = 60) -> None:
        deadline = asyncio.get_running_loop().time() + within
        async with httpx.AsyncClient(timeout=1) as client:
            while asyncio.get_running_loop().time() < deadline:
                if self.process.returncode is not None:
                    raise AssertionError(
                        f"worker exited with {self.process.returncode}:\n" + "\n".join(self.output)
                    )
                try:
                    if (
                        await client.get(f"http://127.0.0.1:{self.health_port}/readyz")
                    ).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("worker not ready:\n" + "\n".join(self.output))

    async def stop(self, sig: int = signal.SIGTERM, within: float = 30) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), timeout=within)
        await self.reader
        return code

    async def exited(self, within: float = 60) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout=within)
        await self.reader
        return code


StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def start_worker(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[StartWorker]:
    workers: list[Worker] = []

    async def start(
        app_dir: Path,
        executor: str,
        *,
        env: dict[str, str] | None = None,
        ready: bool = True,
        state_dir: Path | None = None,
        instance: Path | None = None,
        service_port: int | None = None,
    ) -> Worker:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workers",
            str(app_dir),
            "--executor",
            executor,
            "--bootstrap-servers",
            kafka_bootstrap,
            "--health-port",
            str(port),
            "--state-dir",
            str(state_dir or tmp_path / "state"),
            *(["-i", str(instance)] if instance is not None else []),
            *(["--service-port", str(service_port)] if service_port is not None else []),
            env={**os.environ, **(env or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output: list[str] = []

        async def read() -> None:
            assert process.stdout is not None
            async for line in process.stdout:
                output.append(line.decode("utf-8", "replace").rstrip())

        worker = Worker(process, port, output, asyncio.create_task(read()))
        workers.append(worker)
        if ready:
            await worker.ready()
        return worker

    yield start
    for worker in workers:
        if worker.process.returncode is None:
            worker.process.kill()
            await worker.process.wait()
        await worker.reader


StartApp = Callable[..., Awaitable[Worker]]


@pytest.fixture
def start_app(tmp_path: Path, start_worker: StartWorker, kafka_bootstrap: str) -> StartApp:
    """Start the worker of ``executor`` (default ``t``) of an application made of ``files``,
    texts already complete (no ``{placeholders}`` left), once its topics exist. Keyword
    arguments go to ``start_worker``."""

    async def start(files: dict[str, str], executor: str = "t", **options: Any) -> Worker:
        root = tmp_path / f"app-{uuid.uuid4().hex[:8]}"
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        await prepare(root, kafka_bootstrap)
        return await start_worker(root, executor, **options)

    return start


@pytest.fixture
def app_factory(tmp_path: Path) -> Callable[..., Path]:
    """An application folder with unique topic names: ``{in}``/``{out}`` in the texts."""

    def make(files: dict[str, str], **topics: str) -> Path:
        root = tmp_path / f"app-{uuid.uuid4().hex[:8]}"
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n").format(**topics))
        return root

    return make


@pytest.fixture
def topics() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {"inp": f"in-{suffix}", "out": f"out-{suffix}"}


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[Producer]:
    async with Producer(KafkaSettings(kafka_bootstrap)) as p:
        yield p


async def send(producer: Producer, topic: str, *records: Record) -> None:
    await asyncio.gather(*(producer.send(topic, r, source="/test") for r in records))


async def read_all(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    within: float = 30,
    settle: float = 0.0,
    until: Callable[[list[ConsumedRecord]], bool] | None = None,
) -> list[ConsumedRecord]:
    """Read ``count`` records from the start of ``topic`` (then ``settle`` more seconds); with
    ``until``, read until it holds of what was read (redelivered duplicates count towards
    ``count``, so a test that expects some waits for the distinct records it needs)."""
    got: list[ConsumedRecord] = []

    def done() -> bool:
        return until(got) if until is not None else len(got) >= count

    async with Consumer(KafkaSettings(bootstrap), [TopicSpec(topic)], start_at="beginning") as c:
        deadline = asyncio.get_running_loop().time() + within
        while not done() and asyncio.get_running_loop().time() < deadline:
            got.extend(i for i in await c.poll(timeout_ms=200) if isinstance(i, ConsumedRecord))
        end = asyncio.get_running_loop().time() + settle
        while asyncio.get_running_loop().time() < end:
            got.extend(i for i in await c.poll(timeout_ms=200) if isinstance(i, ConsumedRecord))
    return got


async def prepare(app_dir: Path, bootstrap: str) -> None:
    """Create the application's topics, as ``sluice run`` does before starting workers."""
    from sluice.application import load_application, plan_application
    from sluice.kafka.admin import ensure_topics

    plan = plan_application(load_application(app_dir))
    await ensure_topics(KafkaSettings(bootstrap), plan.topics)


FAST_INSTANCE = """
instance:
  streamingCluster:
    type: kafka
    configuration:
      admin: {session.timeout.ms: 2000, heartbeat.interval.ms: 500}
"""


@pytest.fixture
def fast_instance(tmp_path: Path) -> Path:
    """An instance.yaml whose consumers have short sessions: a killed worker is replaced fast."""
    path = tmp_path / "instance.yaml"
    path.write_text(FAST_INSTANCE)
    return path
