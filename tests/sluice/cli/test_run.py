"""``sluice run`` as a user runs it: its own broker, topics, workers, a clean Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sluice.application.model import TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.kafka.admin import list_topics
from sluice.kafka.local import broker_status
from sluice.net import free_port
from sluice.record import Record

ROOT = Path(__file__).resolve().parents[3]
COUNTER = ROOT / "examples" / "counter"

pytestmark = pytest.mark.kafka


@dataclass
class Running:
    process: asyncio.subprocess.Process
    bootstrap: str = ""
    gateway: str = ""
    workers: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    times: dict[str, float] = field(default_factory=dict)
    """When (time.monotonic) each line first appeared, for the lines before the summary."""


@asynccontextmanager
async def sluice_run(app: Path, tmp_path: Path, *args: str) -> AsyncIterator[Running]:
    """``sluice run APP`` (its own broker, unless ``args`` name an instance that has one)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice.cli.main",
        "run",
        str(app),
        "--kafka-data-dir",
        str(tmp_path / "kafka"),
        "--state-dir",
        str(tmp_path / "state"),
        "--gateway-port",
        str(free_port()),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    running = Running(process)
    assert process.stdout is not None
    try:
        while not running.bootstrap:
            line = (await asyncio.wait_for(process.stdout.readline(), timeout=180)).decode()
            assert line, "sluice run ended early:\n" + "\n".join(running.lines)
            running.lines.append(line.rstrip())
            running.times.setdefault(line.rstrip(), time.monotonic())
            if match := re.match(r"worker: (\S+) pid=(\d+)", line):
                running.workers[match.group(1)] = int(match.group(2))
            if line.startswith("gateway: "):
                running.gateway = line.strip().split(" ", 1)[1]
            if line.startswith("ready: kafka="):
                running.bootstrap = line.strip().split("=", 1)[1]
        reader = asyncio.create_task(_drain(process, running.lines))
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), timeout=90)
        if running.bootstrap:
            await reader
    assert code == 0, "\n".join(running.lines)


async def _drain(process: asyncio.subprocess.Process, lines: list[str]) -> None:
    assert process.stdout is not None
    async for line in process.stdout:
        lines.append(line.decode().rstrip())


async def ask(bootstrap: str, questions: list[str], start: int) -> list[str]:
    """Send questions; the answers after offset ``start`` up to the last question's answer.

    A worker killed before its commit answers some questions twice (at-least-once), so the
    answers are read until the last question's one arrives."""
    settings = KafkaSettings(bootstrap)
    async with Producer(settings) as producer:
        for q in questions:
            await producer.send("questions", Record(q), source="/test")
    got: list[str] = []
    async with Consumer(settings, [TopicSpec("answers")], start_at="beginning") as consumer:
        consumer.seek("answers", 0, start)
        for _ in range(300):
            got += [
                i.record.value
                for i in await consumer.poll(timeout_ms=200)
                if isinstance(i, ConsumedRecord)
            ]
            if any(a.startswith(f"{questions[-1]} ") for a in got):
                break
    return got


def numbers(answers: list[str]) -> list[int]:
    return [int(re.search(r"#(\d+)", a).group(1)) for a in answers]  # type: ignore[union-attr]


async def test_counter_keeps_counting_across_sigkill_and_restart(tmp_path: Path) -> None:
    async with sluice_run(COUNTER, tmp_path) as run:
        assert {"questions", "answers"} <= await list_topics(KafkaSettings(run.bootstrap))
        assert broker_status(tmp_path / "kafka").running
        first = await ask(run.bootstrap, ["a", "b", "c"], 0)
        assert first == ["a (question #1)", "b (question #2)", "c (question #3)"]
        os.kill(run.workers["counter"], signal.SIGKILL)
        second = await ask(run.bootstrap, ["d"], 3)
        # The count survived the kill: it goes on from 3 (redelivered questions count again).
        assert numbers(second) == list(range(4, 4 + len(second)))
        assert second[-1].startswith("d ")
        assert any("restarting" in line for line in run.lines)
    assert not broker_status(tmp_path / "kafka").running
    async with sluice_run(COUNTER, tmp_path) as run:
        third = await ask(run.bootstrap, ["e"], 3 + len(second))
        assert numbers(third) == [numbers(second)[-1] + 1]
        # The service gateway answers through the worker: curl -X POST -d 'f' .../ask
        async with httpx.AsyncClient(timeout=30) as client:
            reply = await client.post(
                f"{run.gateway}/api/gateways/service/default/counter/ask", content=b"f"
            )
        assert reply.status_code == 200, reply.text
        assert reply.json()["record"]["value"] == f"f (question #{numbers(third)[-1] + 1})"


async def test_run_refuses_an_invalid_application(tmp_path: Path) -> None:
    app = tmp_path / "broken"
    app.mkdir()
    (app / "pipeline.yaml").write_text("pipeline:\n  - type: nope\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice.cli.main",
        "run",
        str(app),
        "--kafka-data-dir",
        str(tmp_path / "kafka"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    assert b"ready:" not in stdout
    assert 'agent #1 (pipeline.yaml:2) type: unknown agent type "nope"' in stderr.decode()
    assert not (tmp_path / "kafka").exists()


async def test_a_second_ctrl_c_while_stopping_prints_no_traceback(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A wrapper such as `timeout` forwards the user's Ctrl-C, so `sluice run` gets two."""
    instance = tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        f"      admin:\n        bootstrap.servers: {kafka_bootstrap}\n"
    )
    async with sluice_run(COUNTER, tmp_path, "-i", str(instance)) as run:
        run.process.send_signal(signal.SIGINT)
        await asyncio.sleep(0.2)
        run.process.send_signal(signal.SIGINT)
        await asyncio.wait_for(run.process.wait(), timeout=90)
    output = "\n".join(run.lines)
    assert "Traceback" not in output, output
    assert "KeyboardInterrupt" not in output, output
    assert run.lines[-1] == "stopped", output
