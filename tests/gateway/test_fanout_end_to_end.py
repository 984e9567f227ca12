"""Acceptance: consume fan-out at scale, through real clients, a real gateway and the broker.

500 WebSocket consumers on one consume gateway, filtered by ``param:sessionId`` (5 sessions):
the gateway holds ONE Kafka consumer for the topic, every socket gets exactly the records of its
session, in order, and a socket whose handshake finished before a produce always gets it.
Records go in through the HTTP produce gateway (which sets the session header) to a single
partition, so each session's order, and the sentinel that ends it, are deterministic.
Sockets that start from ``earliest`` catch up on the history without gaps or duplicates, and
chat sockets share the same consumer of their answers topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from gateway.fanout import FanoutRegistry
from gateway.runtime import runtime_of
from sluice.application.model import TopicSpec
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.record import Record
from tests.gateway.support import (
    APP_ID,
    SESSION_HEADER,
    TENANT,
    Served,
    receive_json,
    serve_gateway,
    unique,
    write_app,
)

pytestmark = pytest.mark.kafka

SOCKETS = 500
SESSIONS = 5
ROUNDS = 3
CONNECTING_AT_ONCE = 50


@dataclass(frozen=True)
class Env:
    served: Served
    answers: str
    kafka: KafkaSettings
    questions: str

    @property
    def fanouts(self) -> FanoutRegistry:
        return runtime_of(self.served.app).fanouts


@pytest.fixture(scope="module")
async def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    kafka = KafkaSettings(kafka_bootstrap)
    answers, questions = unique("fanout-answers"), unique("fanout-questions")
    session = f"""
        - key: {SESSION_HEADER}
          value-from-parameters: sessionId"""
    app_dir = write_app(
        tmp_path_factory.mktemp("fanout") / APP_ID,
        {answers: 1, questions: 1},
        f"""
gateways:
  - id: bot-output
    type: consume
    topic: {answers}
    parameters: [sessionId]
    consume-options:
      filters:
        headers:{session}
  - id: bot-input
    type: produce
    topic: {answers}
    parameters: [sessionId]
    produce-options:
      headers:{session}
  - id: chat
    type: chat
    parameters: [sessionId]
    chat-options:
      questions-topic: {questions}
      answers-topic: {answers}
      headers:{session}
""",
    )
    async with serve_gateway(kafka, app_dir) as served:
        yield Env(served, answers, kafka, questions)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as shared:
        yield shared


async def produce(env: Env, client: httpx.AsyncClient, session: str, value: object) -> None:
    response = await client.post(
        env.served.http("produce", "bot-input"),
        params={"param:sessionId": session},
        json={"value": value},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "OK", "reason": None}


async def until_subscribers(env: Env, count: int) -> None:
    """Until the topic's fanout has ``count`` subscribers (closing is asynchronous server-side)."""
    fanout = env.fanouts.fanouts[env.answers]
    for _ in range(600):
        if fanout.subscriber_count == count:
            return
        await asyncio.sleep(0.05)
    assert fanout.subscriber_count == count


async def read_session(socket: ClientConnection) -> list[dict[str, Any]]:
    """The pushed records of one socket, up to its session's sentinel."""
    got: list[dict[str, Any]] = []
    while True:
        frame = await receive_json(socket, timeout=60)
        record = frame["record"]
        got.append({"value": record["value"], "session": record["headers"].get(SESSION_HEADER)})
        if record["value"]["n"] == "last":
            return got


async def test_500_sockets_share_one_consumer_and_each_gets_exactly_its_records(
    env: Env, client: httpx.AsyncClient
) -> None:
    sessions = [f"s{i}-{uuid.uuid4().hex[:6]}" for i in range(SESSIONS)]
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async with contextlib.AsyncExitStack() as stack:

        async def open_socket(index: int) -> tuple[str, ClientConnection]:
            session = sessions[index % SESSIONS]
            url = env.served.ws("consume", "bot-output", f"?param:sessionId={session}")
            async with gate:
                socket = await stack.enter_async_context(connect(url, open_timeout=60))
            return session, socket

        sockets = await asyncio.gather(*(open_socket(i) for i in range(SOCKETS)))

        # One shared consumer for the topic, whatever the number of sockets.
        assert list(env.fanouts.fanouts) == [env.answers]
        fanout = env.fanouts.fanouts[env.answers]
        assert env.fanouts.consumers_created == 1
        assert fanout.subscriber_count == SOCKETS
        assert fanout.catchup_readers_created == 0

        # Every record is produced after every handshake finished; noise in between.
        async with Producer(env.kafka) as producer:
            for n in range(ROUNDS):
                for session in sessions:
                    await produce(env, client, session, {"session": session, "n": n})
                await produce(env, client, f"nobody-{n}", {"session": "nobody", "n": n})
                await producer.send(
                    env.answers, Record({"session": None, "n": n}), source="/test/noise"
                )
                await producer.send(
                    env.answers,
                    Record({"session": "x", "n": n}, headers={"sessionId": sessions[0]}),
                    source="/test/noise",
                )
        for session in sessions:
            await produce(env, client, session, {"session": session, "n": "last"})

        received = await asyncio.gather(*(read_session(socket) for _, socket in sockets))
        for (session, _), got in zip(sockets, received, strict=True):
            expected = [
                {"value": {"session": session, "n": n}, "session": session}
                for n in (*range(ROUNDS), "last")
            ]
            assert got == expected

        assert env.fanouts.consumers_created == 1
        assert list(env.fanouts.fanouts) == [env.answers]

    await until_subscribers(env, 0)


async def test_a_socket_open_before_a_produce_always_gets_it(
    env: Env, client: httpx.AsyncClient
) -> None:
    # Open, produce right after the handshake, receive; many times, each with a fresh session
    # and with sockets of other sessions opening and closing around it.
    for attempt in range(40):
        session = f"race-{attempt}-{uuid.uuid4().hex[:6]}"
        url = env.served.ws("consume", "bot-output", f"?param:sessionId={session}")
        other = env.served.ws("consume", "bot-output", "?param:sessionId=other")
        async with connect(url) as socket, connect(other):
            await produce(env, client, session, {"session": session, "n": attempt})
            frame = await receive_json(socket)
        assert frame["record"]["value"] == {"session": session, "n": attempt}
        assert frame["record"]["headers"][SESSION_HEADER] == session
        assert json.loads(json.dumps(frame))["offset"]
    # Still the one consumer started for the first socket of the module.
    assert env.fanouts.consumers_created == 1
    await until_subscribers(env, 0)


async def test_sockets_from_earliest_catch_up_without_gaps_or_duplicates(
    env: Env, client: httpx.AsyncClient
) -> None:
    # History written before the sockets open, live records while they catch up: each socket
    # gets its session's history then the live records, each once, in the topic's order.
    sessions = [f"e{i}-{uuid.uuid4().hex[:6]}" for i in range(SESSIONS)]
    history, live = 40, 20
    for n in range(history):
        await produce(
            env, client, sessions[n % SESSIONS], {"session": sessions[n % SESSIONS], "n": n}
        )
    consumers_before = env.fanouts.consumers_created
    query = "?param:sessionId={}&option:position=earliest"
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            (
                session,
                await stack.enter_async_context(
                    connect(env.served.ws("consume", "bot-output", query.format(session)))
                ),
            )
            for session in sessions
            for _ in range(20)
        ]
        for n in range(history, history + live):
            session = sessions[n % SESSIONS]
            await produce(env, client, session, {"session": session, "n": n})
        for session in sessions:
            await produce(env, client, session, {"session": session, "n": "last"})
        received = await asyncio.gather(*(read_session(socket) for _, socket in sockets))
    for (session, _), got in zip(sockets, received, strict=True):
        expected = [n for n in range(history + live) if sessions[n % SESSIONS] == session]
        assert [item["value"]["n"] for item in got] == [*expected, "last"]
        assert {item["session"] for item in got} == {session}
    # Catching up used short-lived readers; the shared consumer is still the only one.
    assert env.fanouts.consumers_created == consumers_before
    assert env.fanouts.fanouts[env.answers].catchup_readers_created > 0
    await until_subscribers(env, 0)


@contextlib.asynccontextmanager
async def bot(env: Env) -> AsyncIterator[None]:
    """Answers each question on the answers topic, with the question's headers (its session)."""
    consumer = Consumer(env.kafka, [TopicSpec(env.questions)], start_at="end")
    await consumer.start()
    for topic, partition in consumer.assignment():
        await consumer.position(topic, partition)

    async def answer(producer: Producer) -> None:
        while True:
            for item in await consumer.poll(timeout_ms=200):
                assert isinstance(item, ConsumedRecord), item
                question = item.record
                reply = Record(
                    {
                        "session": question.headers[SESSION_HEADER],
                        "n": f"answer to {question.value}",
                    },
                    headers=dict(question.headers),
                )
                await producer.send(env.answers, reply, source="/test/bot")

    async with Producer(env.kafka) as producer:
        task = asyncio.create_task(answer(producer))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await consumer.stop()


async def test_chat_sockets_share_the_answers_consumer_and_get_their_sessions_answers(
    env: Env, client: httpx.AsyncClient
) -> None:
    sessions = [f"c{i}-{uuid.uuid4().hex[:6]}" for i in range(SESSIONS)]
    per_session = 20
    async with bot(env), contextlib.AsyncExitStack() as stack:
        sockets = [
            (
                session,
                await stack.enter_async_context(
                    connect(env.served.ws("chat", "chat", f"?param:sessionId={session}"))
                ),
            )
            for session in sessions
            for _ in range(per_session)
        ]
        for index, (_, socket) in enumerate(sockets):
            await socket.send(json.dumps({"value": f"q{index}"}))

        async def converse(socket: ClientConnection) -> tuple[list[object], list[object]]:
            statuses: list[object] = []
            answers: list[object] = []
            while len(answers) < per_session or not statuses:
                frame = await receive_json(socket, timeout=60)
                if "status" in frame:
                    statuses.append(frame)
                else:
                    assert (
                        frame["record"]["headers"][SESSION_HEADER]
                        == frame["record"]["value"]["session"]
                    )
                    answers.append(frame["record"]["value"])
            return statuses, answers

        conversations = await asyncio.gather(*(converse(socket) for _, socket in sockets))
        # Then nothing more than the session's sentinel: no answer of another session came.
        for session in sessions:
            await produce(env, client, session, {"session": session, "n": "last"})
        tails = await asyncio.gather(*(read_session(socket) for _, socket in sockets))
    for (session, _), (statuses, answers), tail in zip(sockets, conversations, tails, strict=True):
        assert statuses == [{"status": "OK", "reason": None}]
        first = sessions.index(session) * per_session
        assert sorted(a["n"] for a in answers) == sorted(  # type: ignore[index]
            f"answer to q{i}" for i in range(first, first + per_session)
        )
        assert {a["session"] for a in answers} == {session}  # type: ignore[index]
        assert tail == [{"value": {"session": session, "n": "last"}, "session": session}]
    assert list(env.fanouts.fanouts) == [env.answers]
    await until_subscribers(env, 0)


class EventStream:
    """One Server-Sent Events consume request, read event by event."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == "text/event-stream"
        self._lines = response.aiter_lines()

    async def next_event(self) -> tuple[str | None, str, Any]:
        """(id, event name, parsed data) of the next event; keep-alive comments skipped."""
        event_id: str | None = None
        name = "message"
        data: list[str] = []
        async with asyncio.timeout(60):
            async for line in self._lines:
                if line.startswith(":"):
                    continue
                if not line:
                    if data:
                        return event_id, name, json.loads("\n".join(data))
                    continue
                field, _, value = line.partition(": ")
                if field == "id":
                    event_id = value
                elif field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
        raise AssertionError("the event stream ended")


@contextlib.asynccontextmanager
async def event_stream(
    client: httpx.AsyncClient,
    env: Env,
    query: dict[str, str],
    headers: dict[str, str] | None = None,
) -> AsyncIterator[EventStream]:
    url = f"{env.served.url}/api/gateways/consume/{TENANT}/{APP_ID}/bot-output"
    async with client.stream("GET", url, params=query, headers=headers or {}) as response:
        yield EventStream(response)


async def test_sse_and_websocket_consumers_share_the_one_consumer(
    env: Env, client: httpx.AsyncClient
) -> None:
    sessions = [f"m{i}-{uuid.uuid4().hex[:6]}" for i in range(SESSIONS)]
    per_session = 20  # 10 over SSE, 10 over WebSocket
    limits = httpx.Limits(max_connections=SESSIONS * per_session)
    async with (
        httpx.AsyncClient(timeout=60, limits=limits) as streams,
        contextlib.AsyncExitStack() as stack,
    ):
        readers: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = []
        for session in sessions:
            for _ in range(per_session // 2):
                sse = await stack.enter_async_context(
                    event_stream(streams, env, {"param:sessionId": session})
                )

                async def next_sse(sse: EventStream = sse) -> dict[str, Any]:
                    event_id, name, record = await sse.next_event()
                    assert name == "record"
                    assert event_id == record["offset"]
                    parsed: dict[str, Any] = record
                    return parsed

                readers.append((session, next_sse))
                socket = await stack.enter_async_context(
                    connect(env.served.ws("consume", "bot-output", f"?param:sessionId={session}"))
                )

                async def next_ws(socket: ClientConnection = socket) -> dict[str, Any]:
                    frame: dict[str, Any] = await receive_json(socket, timeout=60)
                    return frame

                readers.append((session, next_ws))
        assert env.fanouts.fanouts[env.answers].subscriber_count == SESSIONS * per_session
        for n in range(2):
            for session in sessions:
                await produce(env, client, session, {"session": session, "n": n})
        for session in sessions:
            await produce(env, client, session, {"session": session, "n": "last"})

        async def read(next_frame: Callable[[], Awaitable[dict[str, Any]]]) -> list[object]:
            values: list[object] = []
            while not values or values[-1] != "last":
                values.append((await next_frame())["record"]["value"]["n"])
            return values

        received = await asyncio.gather(*(read(reader) for _, reader in readers))
        assert received == [[0, 1, "last"]] * len(readers)
    assert list(env.fanouts.fanouts) == [env.answers]
    await until_subscribers(env, 0)


async def test_an_event_stream_resumes_after_its_last_event_id(
    env: Env, client: httpx.AsyncClient
) -> None:
    session = f"resume-{uuid.uuid4().hex[:6]}"
    query = {"param:sessionId": session}
    async with event_stream(client, env, query) as sse:
        for n in range(3):
            await produce(env, client, session, {"session": session, "n": n})
        first_id, _, first = await sse.next_event()
    assert first["record"]["value"]["n"] == 0
    # A reconnecting EventSource sends Last-Event-ID: the stream goes on after that record.
    async with event_stream(client, env, query, {"Last-Event-ID": str(first_id)}) as sse:
        values = [(await sse.next_event())[2]["record"]["value"]["n"] for _ in range(2)]
        await produce(env, client, session, {"session": session, "n": "last"})
        values.append((await sse.next_event())[2]["record"]["value"]["n"])
    assert values == [1, 2, "last"]
