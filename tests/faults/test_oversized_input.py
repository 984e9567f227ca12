"""F11 (a-c): input over a limit is refused at once with the right answer, nothing of it is
written (I2), and valid requests before, beside and after it are written (I1).

(a) an HTTP body over the gateway's 1 MiB limit (with and without Content-Length): 413
problem+json; (b) a WebSocket message over the 1 MiB message limit: close 1009; (c) a body under
the HTTP limit whose CloudEvent envelope is over the producer's ``max_request_size`` (1 MiB):
413 without Retry-After, never a retry. (d), the topic's own ``max.message.bytes``, is
test_oversized_record.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sluice.application import load_application
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import ensure_topics
from tests.faults.support import (
    Check,
    Ledger,
    counts,
    gateway_process,
    other_5xx,
    produce_app,
    read_topic,
    summary,
)

pytestmark = [pytest.mark.kafka, pytest.mark.faults, pytest.mark.timeout(180)]

LIMIT = 1024 * 1024
"""The gateway's body and WebSocket message limit and the producer's max_request_size."""


def _body(ident: str, size: int) -> bytes:
    """A JSON produce request for ``ident`` of exactly ``size`` bytes."""
    bare = json.dumps({"value": ident + " "}).encode()
    return json.dumps({"value": ident + " " + "x" * (size - len(bare))}).encode()


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


async def test_oversized_http_body_ws_message_and_envelope_are_refused(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"f11-{uuid.uuid4().hex[:12]}"
    app = produce_app(tmp_path, topic)
    await ensure_topics(KafkaSettings(kafka_bootstrap), load_application(app).topics.values())
    ledger = Ledger()
    refused: dict[str, set[str]] = {"a": set(), "b": set(), "c": set()}
    elapsed: dict[str, float] = {}
    async with (
        gateway_process(app, kafka_bootstrap, tmp_path / "gateway.log") as gateway,
        httpx.AsyncClient(timeout=30, trust_env=False) as client,
    ):
        url = f"{gateway.url}/api/gateways/produce/default/faults/in"
        json_type = {"Content-Type": "application/json"}

        async def valid(n: int) -> list[int]:
            answers = await asyncio.gather(*(ledger.produce(client, url) for _ in range(n)))
            return [a.status_code if a is not None else 0 for a in answers]

        assert await valid(5) == [200] * 5

        # (a) over the body limit, with Content-Length and chunked, beside valid requests.
        started = time.monotonic()
        for body_of in (lambda b: b, _chunks):
            ident = ledger.new_id()
            refused["a"].add(ident)
            big = _body(ident, LIMIT + 1)
            answer, *beside = await asyncio.gather(
                client.post(url, content=body_of(big), headers=json_type), valid(10)
            )
            ledger.statuses[answer.status_code] += 1
            assert answer.status_code == 413, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert beside == [[200] * 10]
        elapsed["a"] = time.monotonic() - started

        # (b) a WebSocket message over the limit: close 1009; the next socket works.
        ws_url = gateway.url.replace("http://", "ws://") + "/v1/produce/default/faults/in"
        ident = ledger.new_id()
        refused["b"].add(ident)
        started = time.monotonic()
        async with connect(ws_url, max_size=None) as socket:
            await socket.send(json.dumps({"value": ident + " " + "x" * LIMIT}))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
        elapsed["b"] = time.monotonic() - started
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009, closed.value
        async with connect(ws_url) as socket:
            ident = ledger.new_id()
            await socket.send(json.dumps({"value": ident}))
            assert json.loads(await socket.recv()) == {"status": "OK", "reason": None}
            ledger.ok.add(ident)

        # (c) a body just under the HTTP limit: its envelope is over max_request_size.
        started = time.monotonic()
        ident = ledger.new_id()
        refused["c"].add(ident)
        answer, beside_c = await asyncio.gather(
            client.post(url, content=_body(ident, LIMIT - 16), headers=json_type), valid(20)
        )
        elapsed["c"] = time.monotonic() - started
        ledger.statuses[answer.status_code] += 1
        assert answer.status_code == 413, answer.text
        assert "retry-after" not in answer.headers
        assert answer.headers["content-type"] == "application/problem+json"
        assert beside_c == [200] * 20
        assert await valid(20) == [200] * 20

    messages = await read_topic(kafka_bootstrap, topic, expect=ledger.ok, within=30)
    found = counts(messages)
    ledger.fail |= refused["a"] | refused["b"] | refused["c"]
    check = Check.of(ledger, found)
    for case, what in (
        ("a", "HTTP body over 1 MiB: 413"),
        ("b", "WebSocket message over 1 MiB: close 1009"),
        ("c", "envelope over max_request_size: 413"),
    ):
        written = refused[case] & found.keys()
        line = summary(
            f"F11{case} {what}",
            sent=ledger.sent,
            ok=len(ledger.ok),
            info=len(ledger.info),
            lost=len(check.lost),
            phantoms=len(check.phantoms) + len(written),
            duplicates=check.duplicates,
            other_5xx=other_5xx(ledger.statuses),
            recovered=elapsed[case],
            extra=f"refused {len(refused[case])} (counts are the module's), "
            f"statuses {dict(ledger.statuses)}",
        )
        assert not written, line
    assert not check.lost and not check.phantoms and check.duplicates == 0, line
    assert elapsed["c"] < 5, elapsed
