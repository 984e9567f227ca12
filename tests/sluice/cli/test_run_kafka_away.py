"""``sluice run`` says when Kafka goes away and when it is back: one line each from the gateway,
and one each from every worker (prefixed with its name), not one per connection attempt."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sluice.kafka.local import LocalKafka, LocalKafkaSettings
from sluice.net import free_port
from tests.sluice.cli.test_run import COUNTER, Running, sluice_run

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(400)]


async def _line(run: Running, text: str, *, after: int, within: float) -> str:
    """The first line of ``sluice run`` itself (a worker's lines start with ``[its name]``)
    containing ``text``, printed after line ``after``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for line in run.lines[after:]:
            if text in line and not line.startswith("["):
                return line
        await asyncio.sleep(0.2)
    raise AssertionError(f"no line with {text!r} within {within} s:\n" + "\n".join(run.lines))


async def test_kafka_going_away_and_coming_back_is_one_line_each(tmp_path: Path) -> None:
    broker = LocalKafka(
        LocalKafkaSettings(port=free_port(), data_dir=tmp_path / "broker", start_timeout=120)
    )
    await broker.start()
    try:
        bootstrap = broker.bootstrap_servers
        instance = tmp_path / "instance.yaml"
        instance.write_text(
            "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
            f"      admin:\n        bootstrap.servers: {bootstrap}\n"
        )
        async with sluice_run(COUNTER, tmp_path, "-i", str(instance)) as run:
            before = len(run.lines)
            await broker.stop()
            away = await _line(run, "is unreachable", after=before, within=30)
            assert away.startswith(f"Kafka at {bootstrap} is unreachable"), away
            await asyncio.sleep(3)
            await broker.start()
            back = await _line(run, "reachable again", after=before, within=60)
            assert back.startswith(f"Kafka at {bootstrap} is reachable again (away "), back
            await asyncio.sleep(3)
            later = run.lines[before:]
            text = "\n".join(later)
            gateway = [line for line in later if not line.startswith("[")]
            worker = [line for line in later if line.startswith("[counter] ")]
            for mine in (gateway, worker):
                assert sum(f"Kafka at {bootstrap} is unreachable" in x for x in mine) == 1, text
                assert sum(f"Kafka at {bootstrap} is reachable again" in x for x in mine) == 1, text
            # The Kafka client's own connection errors pass once a minute, not per attempt.
            assert sum("Unable connect to node" in line for line in later) <= 2, text
    finally:
        await broker.stop()
