"""F17: a client submits the same request again (a retry after a timeout or a 503 whose record
may have been written). With an ``Idempotency-Key`` header, or as a structured CloudEvent with the
same ``source`` and ``id``, the retry answers 200 and the record is written once (I3), whether the
retry comes after the first answer or at the same time. Without a key a retry is a new record:
counted, as the duplicates a client without keys gets. I1, I2."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest

from sluice.application import load_application
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import ensure_topics
from tests.faults.support import (
    Ledger,
    counts,
    gateway_process,
    other_5xx,
    produce_app,
    read_topic,
    summary,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(120)]

RECORDS = 100
REPLAYED = 10  # 10%


async def test_a_retried_submission_is_written_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"f17-{uuid.uuid4().hex[:12]}"
    app = produce_app(tmp_path, topic)
    await ensure_topics(KafkaSettings(kafka_bootstrap), load_application(app).topics.values())
    ledger = Ledger()
    replies: list[int] = []
    started = time.monotonic()
    async with (
        gateway_process(app, kafka_bootstrap, tmp_path / "gateway.log") as gateway,
        httpx.AsyncClient(timeout=30, trust_env=False) as client,
    ):
        url = f"{gateway.url}/api/gateways/produce/default/faults/in"

        async def keyed(ident: str) -> int:
            response = await client.post(
                url, json={"value": ident}, headers={"Idempotency-Key": ident}
            )
            ledger.statuses[response.status_code] += 1
            return response.status_code

        async def structured(ident: str) -> int:
            event = {
                "specversion": "1.0",
                "id": ident,
                "source": "/f17",
                "type": "t",
                "data": ident,
            }
            response = await client.post(
                url, json=event, headers={"Content-Type": "application/cloudevents+json"}
            )
            ledger.statuses[response.status_code] += 1
            return response.status_code

        idents = [ledger.new_id() for _ in range(RECORDS)]
        statuses = await asyncio.gather(*(keyed(i) for i in idents))
        ledger.ok |= {i for i, s in zip(idents, statuses, strict=True) if s == 200}
        # Retries after the answer, then a retry racing its first submission.
        replies += [await keyed(i) for i in idents[:REPLAYED]]
        racing = [ledger.new_id() for _ in range(REPLAYED)]
        both = await asyncio.gather(*(keyed(i) for i in racing for _ in range(2)))
        ledger.ok |= set(racing)
        replies += both
        events = [ledger.new_id() for _ in range(REPLAYED)]
        for send in range(2):
            answers = await asyncio.gather(*(structured(i) for i in events))
            if send:
                replies += answers
            else:
                assert answers == [200] * REPLAYED, answers
        ledger.ok |= set(events)
        # No key: a retry is another record, as a client without keys gets.
        plain = ledger.new_id()
        for _ in range(2):
            assert (await client.post(url, json={"value": plain})).status_code == 200
        ledger.ok.add(plain)
        took = time.monotonic() - started

    found = counts(await read_topic(kafka_bootstrap, topic, expect=ledger.ok, within=30))
    lost = ledger.ok - found.keys()
    phantoms = found.keys() - ledger.ok
    keyed_duplicates = sum(n - 1 for i, n in found.items() if i != plain)
    line = summary(
        f"F17 duplicate submission ({REPLAYED} of {RECORDS} retried after the answer, "
        f"{REPLAYED} racing, {REPLAYED} CloudEvents twice)",
        sent=ledger.sent + REPLAYED * 3 + 1,
        ok=len(ledger.ok),
        info=len(ledger.info),
        lost=len(lost),
        phantoms=len(phantoms),
        duplicates=keyed_duplicates,
        other_5xx=other_5xx(ledger.statuses),
        recovered=took,
        extra=f"retries answered {sorted(set(replies))}, without a key written "
        f"{found[plain]} times",
    )
    assert statuses == [200] * RECORDS, line
    assert replies == [200] * len(replies), line
    assert not lost and not phantoms, line
    assert keyed_duplicates == 0, line
    assert found[plain] == 2, line
