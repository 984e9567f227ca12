"""What the worker scenarios (T3, B1, B2, B3) share: fresh topics, pre-filled input, a real
worker process (``python -m workers``) on an application folder, and the output topic watched
from outside.

Throughput is measured the same way for every subject, worker or not: the output topic's end
offset, sampled every 20 ms, from the first output to the last, with the subject's CPU-seconds
read from ``/proc`` at those two moments, so start-up (imports, connecting, loading a model) is
not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.harness import APP_DIR, Process, cpu_seconds
from sluice.application.model import TopicSpec
from sluice.kafka import KafkaSettings, Producer
from sluice.kafka.admin import ensure_topics
from sluice.record import Record

__all__ = ["Span", "fill", "new_topics", "running", "watch", "worker_argv"]


async def new_topics(bootstrap: str, prefix: str, *roles: str) -> list[str]:
    """One fresh single-partition topic per role (``<prefix>-<role>-<random>``), created now."""
    suffix = uuid.uuid4().hex[:8]
    names = [f"{prefix}-{role}-{suffix}" for role in roles]
    specs = [TopicSpec(name, "create-if-not-exists", partitions=1) for name in names]
    await ensure_topics(KafkaSettings(bootstrap), specs)
    return names


async def fill(bootstrap: str, topic: str, count: int, value_of: Callable[[int], Any]) -> None:
    """Write ``count`` CloudEvents to ``topic``: record ``i`` has value ``value_of(i)``, one of
    64 keys and a session header, as a gateway would write them."""
    async with Producer(KafkaSettings(bootstrap)) as producer:
        for start in range(0, count, 2000):
            await asyncio.gather(
                *(
                    producer.send(
                        topic,
                        Record(
                            value_of(i),
                            key=f"k{i % 64}",
                            headers={"langstream-client-session-id": "s"},
                        ),
                        source="/bench",
                    )
                    for i in range(start, min(count, start + 2000))
                )
            )


def worker_argv(app: Path, executor: str, bootstrap: str, state_dir: Path) -> list[str]:
    """The command line of a real worker running ``executor`` of the application in ``app``."""
    return [
        sys.executable,
        "-m",
        "workers",
        str(app),
        "--executor",
        executor,
        "--bootstrap-servers",
        bootstrap,
        "--state-dir",
        str(state_dir),
    ]


@contextlib.asynccontextmanager
async def running(
    argv: Sequence[str], *, log: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``argv`` as a process for the block, stopped with SIGTERM (killed after 60 s) at its end.
    Its output goes to ``log`` when given, else nowhere."""
    with contextlib.ExitStack() as files:
        output = files.enter_context(log.open("wb")) if log else asyncio.subprocess.DEVNULL
        process = await asyncio.create_subprocess_exec(*argv, stdout=output, stderr=output)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()


@dataclass(frozen=True)
class Span:
    """When (monotonic seconds) the first and the last output were there, the subject's
    CPU-seconds at those moments, and how many outputs the first sample found."""

    first: float
    last: float
    cpu_first: float
    cpu_last: float
    outputs_at_first: int

    @property
    def seconds(self) -> float:
        return self.last - self.first

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_last - self.cpu_first

    def rate(self, records: int) -> float:
        """Records per second of ``records`` inputs: the first output marks the start, so the
        inputs worked through after it are counted."""
        return (records - 1) / self.seconds if self.seconds > 0 else float("inf")


async def watch(
    bootstrap: str,
    topic: str,
    count: int,
    process: asyncio.subprocess.Process,
    *,
    within: float = 600,
) -> Span:
    """The :class:`Span` of ``count`` outputs on partition 0 of ``topic``, written by
    ``process``; ``RuntimeError`` if the process exits first, ``TimeoutError`` after
    ``within`` seconds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    first: tuple[float, float, int] | None = None
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(
                    f"the process writing {topic} exited with code {process.returncode}"
                )
            end = (await consumer.end_offsets([tp]))[tp]
            now, cpu = time.monotonic(), cpu_seconds(process.pid)
            if end > 0 and first is None:
                first = (now, cpu, end)
            if end >= count:
                assert first is not None
                return Span(first[0], now, first[1], cpu, first[2])
            await asyncio.sleep(0.02)
    finally:
        await consumer.stop()
    raise TimeoutError(f"only part of {count} records reached {topic} in {within:.0f}s")


@contextlib.asynccontextmanager
async def app_worker(bootstrap: str, executor: str, state_dir: Path) -> AsyncIterator[Process]:
    """A real Sluice worker (``python -m workers``) for one executor of the benchmark app."""
    async with running(worker_argv(APP_DIR, executor, bootstrap, state_dir)) as process:
        yield Process(process)
