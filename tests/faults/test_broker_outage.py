"""F1 with an outage longer than the produce deadline: the gateway rides it out and recovers.

The test runs its own broker (stopped and started again on the same port and data) and the
gateway as a child process with a 5 s produce deadline, so an outage of twice that is well past
it. Invariants: every acknowledged record is in the topic exactly once (I1, no producer
duplicates), nothing appears that was not sent (I2), produce answers 200 again within seconds of
the broker's return, ``/readyz`` says the broker is away while it is, and aiokafka's connection
errors are logged per state change, not per attempt.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from sluice.application.model import TopicSpec
from sluice.kafka.admin import ensure_topics
from sluice.kafka.client import KafkaSettings
from sluice.kafka.local import LocalKafka, LocalKafkaSettings
from sluice.net import free_port
from tests.faults.support import Check, Ledger, gateway_process, ids_in_topic, produce_app

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(300)]

PRODUCE_TIMEOUT = 5.0
OUTAGE = 2.5 * PRODUCE_TIMEOUT
RECOVERY = 10.0
"""Seconds after the broker answers again within which a produce must succeed."""


async def _produce_steadily(
    ledger: Ledger, client: httpx.AsyncClient, url: str, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await ledger.produce(client, url)
        await asyncio.sleep(0.05)


async def test_produce_recovers_after_an_outage_longer_than_the_deadline(tmp_path: Path) -> None:
    settings = LocalKafkaSettings(port=free_port(), data_dir=tmp_path / "kafka", start_timeout=120)
    broker = LocalKafka(settings)
    await broker.start()
    try:
        bootstrap = broker.bootstrap_servers
        await ensure_topics(KafkaSettings(bootstrap), [TopicSpec("in", "create-if-not-exists")])
        app = produce_app(tmp_path)
        ledger = Ledger()
        async with (
            gateway_process(
                app,
                bootstrap,
                tmp_path / "gateway.log",
                "--produce-timeout",
                str(PRODUCE_TIMEOUT),
            ) as gateway,  # fmt: skip
            httpx.AsyncClient(timeout=PRODUCE_TIMEOUT + 10, trust_env=False) as client,
        ):
            url = f"{gateway.url}/api/gateways/produce/default/faults/in"
            for _ in range(20):
                assert (await ledger.produce(client, url)) is not None
            assert len(ledger.ok) == 20, ledger.statuses

            stop = asyncio.Event()
            writers = [
                asyncio.create_task(_produce_steadily(ledger, client, url, stop)) for _ in range(4)
            ]
            try:
                await asyncio.sleep(1)
                await broker.stop()
                down_at = time.monotonic()
                not_ready_after: float | None = None
                while time.monotonic() - down_at < OUTAGE:
                    ready = await client.get(f"{gateway.url}/readyz")
                    if ready.status_code == 503 and not_ready_after is None:
                        not_ready_after = time.monotonic() - down_at
                        assert "Kafka" in ready.json()["detail"], ready.text
                    await asyncio.sleep(0.5)
                assert not_ready_after is not None, "/readyz answered 200 throughout the outage"
                assert not_ready_after < 10, not_ready_after

                await broker.start()
                back_at = time.monotonic()
                recovered_after: float | None = None
                while time.monotonic() - back_at < 60:
                    response = await ledger.produce(client, url)
                    if response is not None and response.status_code == 200:
                        recovered_after = time.monotonic() - back_at
                        break
                    await asyncio.sleep(0.2)
                detail = "" if response is None else response.text
                assert recovered_after is not None, f"produce still fails: {detail}"
            finally:
                stop.set()
                await asyncio.gather(*writers)
            for _ in range(20):
                response = await ledger.produce(client, url)
                assert response is not None and response.status_code == 200, response
            assert (await client.get(f"{gateway.url}/readyz")).status_code == 200

        found = await ids_in_topic(bootstrap, "in")
        check = Check.of(ledger, found)
        lines = gateway.log_lines()
        connection_errors = [
            line for line in lines if "Unable connect" in line or "Unable to update" in line
        ]
        report = (
            f"sent {ledger.sent}, ok {len(ledger.ok)}, info {len(ledger.info)}, "
            f"statuses {dict(ledger.statuses)}, lost {len(check.lost)}, "
            f"phantoms {len(check.phantoms)}, duplicates {check.duplicates}, "
            f"not ready after {not_ready_after:.1f} s, recovered after {recovered_after:.1f} s, "
            f"{len(connection_errors)} connection error lines of {len(lines)}"
        )
        print(report)
        assert recovered_after < RECOVERY, report
        assert not check.lost, report
        assert not check.phantoms, report
        assert check.duplicates == 0, report
        assert not ledger.fail, report
        assert set(ledger.statuses) <= {200, 503}, report
        assert len(connection_errors) <= 10, report
    finally:
        await broker.stop()
