"""The bridge over real HTTP on loopback: answers only when a record's fate is known."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from workers.camel.bridge import Bridge


def exchange(body: str) -> bytes:
    return json.dumps(
        {"SluiceCamelBody": body, "SluiceCamelBodyClass": "java.lang.String"}
    ).encode()


@pytest.fixture
async def bridge() -> AsyncIterator[Bridge]:
    async with Bridge(key_header="", origin="timer:t", max_buffered=1) as running:
        yield running


@pytest.fixture
async def client(bridge: Bridge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}", timeout=10) as c:
        yield c


async def still_waiting(request: asyncio.Task[httpx.Response]) -> bool:
    await asyncio.sleep(0.2)
    return not request.done()


async def test_a_full_buffer_holds_requests_until_records_are_acknowledged(
    bridge: Bridge, client: httpx.AsyncClient
) -> None:
    requests = [
        asyncio.create_task(client.post("/exchange", content=exchange(name))) for name in "abc"
    ]
    assert all([await still_waiting(request) for request in requests])  # none refused
    records = await bridge.take(10, 5)
    assert all([await still_waiting(request) for request in requests])  # read is not safe yet
    values: list[str] = []
    while records:
        bridge.ack(records)
        values += [record.value for record in records]
        records = await bridge.take(10, 1) if len(values) < 3 else []
    assert sorted(values) == ["a", "b", "c"]
    assert [(await request).status_code for request in requests] == [200, 200, 200]


async def test_a_failed_record_fails_its_exchange(
    bridge: Bridge, client: httpx.AsyncClient
) -> None:
    request = asyncio.create_task(client.post("/exchange", content=exchange("a")))
    [record] = await bridge.take(10, 5)
    bridge.fail(record, "KafkaError: no broker")
    failed = await request
    assert (failed.status_code, failed.text) == (500, "KafkaError: no broker")


async def test_close_answers_everything_with_503(bridge: Bridge, client: httpx.AsyncClient) -> None:
    taken = asyncio.create_task(client.post("/exchange", content=exchange("a")))
    await bridge.take(1, 5)
    queued = asyncio.create_task(client.post("/exchange", content=exchange("b")))
    waiting = asyncio.create_task(client.post("/exchange", content=exchange("c")))
    assert await still_waiting(waiting)
    bridge.close("the worker is stopping")
    for request in (taken, queued, waiting):
        response = await request
        assert (response.status_code, response.text) == (503, "the worker is stopping")
    late = await client.post("/exchange", content=exchange("d"))
    assert late.status_code == 503


async def test_a_client_that_goes_away_is_dropped_from_the_buffer(bridge: Bridge) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}") as gone:
        request = asyncio.create_task(gone.post("/exchange", content=exchange("lost")))
        await asyncio.sleep(0.2)
        request.cancel()  # closes the connection, as a dying JVM does
    await asyncio.sleep(0.2)
    assert await bridge.take(1, 0.2) == []


async def test_started_and_bad_requests(bridge: Bridge, client: httpx.AsyncClient) -> None:
    assert not bridge.started.is_set()
    assert (await client.post("/started")).status_code == 200
    assert bridge.started.is_set()
    bad = await client.post("/exchange", content=b"{}")
    assert (bad.status_code, bad.text) == (
        400,
        "invalid exchange: a JSON object with SluiceCamelBody was expected",
    )
    assert (await client.get("/elsewhere")).status_code == 404
