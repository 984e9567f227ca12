"""F11 (d): a record under the gateway's limits but over the topic's ``max.message.bytes``.

It must be refused at once with 413 (HTTP) or a BAD_REQUEST answer (WebSocket), never retried,
and must not take the topic down: the records sent with it and after it are written (I1),
nothing refused appears (I2).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from sluice.application import load_application
from sluice.application.model import TopicSpec
from sluice.kafka import KafkaSettings, Producer, RecordTooLarge
from sluice.kafka.admin import ensure_topics
from sluice.record import Record
from tests.faults.support import Check, Ledger, gateway_process, ids_in_topic, produce_app

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(180)]

TOPIC_LIMIT = 16_384
BIG = 3 * TOPIC_LIMIT  # well under the gateway's 1 MiB body limit and the producer's 1 MiB


async def test_a_record_over_the_topic_limit_is_413_and_the_topic_keeps_working(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"oversized-{uuid.uuid4().hex[:12]}"
    app = produce_app(tmp_path, topic, {"max.message.bytes": str(TOPIC_LIMIT)})
    await ensure_topics(KafkaSettings(kafka_bootstrap), load_application(app).topics.values())
    ledger = Ledger()
    async with (
        gateway_process(app, kafka_bootstrap, tmp_path / "gateway.log") as gateway,
        httpx.AsyncClient(timeout=30, trust_env=False) as client,
    ):
        url = f"{gateway.url}/api/gateways/produce/default/faults/in"
        for _ in range(5):
            assert (await ledger.produce(client, url)).status_code == 200  # type: ignore[union-attr]

        started = time.monotonic()
        big = await ledger.produce(client, url, padding=BIG)
        elapsed = time.monotonic() - started
        assert big is not None and big.status_code == 413, big and big.text
        assert "retry-after" not in big.headers
        assert elapsed < 5, elapsed

        # The same again, with 50 small records sent at the same time.
        outcomes = await asyncio.gather(
            ledger.produce(client, url, padding=BIG),
            *(ledger.produce(client, url) for _ in range(50)),
        )
        assert outcomes[0] is not None and outcomes[0].status_code == 413, outcomes[0]
        neighbours = [o.status_code if o is not None else 0 for o in outcomes[1:]]

        # Afterwards every small record to the topic is written.
        after = [await ledger.produce(client, url) for _ in range(20)]
        statuses = [r.status_code if r is not None else 0 for r in after]
        assert statuses == [200] * 20, [r.text for r in after if r is not None]

        ws_url = gateway.url.replace("http://", "ws://") + "/v1/produce/default/faults/in"
        async with connect(ws_url) as socket:
            await socket.send(json.dumps({"value": "x" * BIG}))
            answer = json.loads(await socket.recv())
            assert answer["status"] == "BAD_REQUEST", answer
            assert "size" in answer["reason"], answer
            ident = f"ledger-{uuid.uuid4().hex}"
            await socket.send(json.dumps({"value": ident}))
            assert json.loads(await socket.recv()) == {"status": "OK", "reason": None}
            ledger.ok.add(ident)

    found = await ids_in_topic(kafka_bootstrap, topic)
    check = Check.of(ledger, found)
    report = (
        f"sent {ledger.sent}, ok {len(ledger.ok)}, fail {len(ledger.fail)}, "
        f"info {len(ledger.info)}, statuses {dict(ledger.statuses)}, neighbours {neighbours}, "
        f"lost {len(check.lost)}, phantoms {len(check.phantoms)}, duplicates {check.duplicates}"
    )
    print(report)
    assert not check.lost and not check.phantoms and check.duplicates == 0, report
    assert not ledger.fail & found.keys(), report
    assert neighbours == [200] * 50, report


async def test_a_record_the_broker_refuses_for_its_size_does_not_break_the_partition(
    kafka_bootstrap: str,
) -> None:
    # Without the gateway's check first: the broker itself refuses the record. Was: 503-style
    # retriable KafkaError, then OutOfOrderSequenceNumber for every later record of the partition
    # (the refused batch had used sequence numbers the broker never saw).
    settings = KafkaSettings(kafka_bootstrap)
    topic = f"refused-{uuid.uuid4().hex[:12]}"
    spec = TopicSpec(topic, "create-if-not-exists", config={"max.message.bytes": str(TOPIC_LIMIT)})
    await ensure_topics(settings, [spec])
    async with Producer(settings) as producer:
        assert await producer.record_limit(topic) == TOPIC_LIMIT
        await producer.send(topic, Record("before"), source="/test")
        with pytest.raises(RecordTooLarge) as refused:
            await producer.send(topic, Record("x" * BIG), source="/test")
        assert not refused.value.retriable
        assert refused.value.topic == topic
        results = await asyncio.wait_for(
            asyncio.gather(
                *(producer.send(topic, Record(f"after-{n}"), source="/test") for n in range(20))
            ),
            30,
        )
        assert [r.topic for r in results] == [topic] * 20
        assert producer.replacements == 1
        assert producer.failures["MessageSizeTooLargeError"] == 1
