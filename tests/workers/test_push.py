"""Push mode end to end: a real worker process with ``--push``, events POSTed as KafkaSource
sends them (binary CloudEvents with the record's plain Kafka headers as HTTP headers, or
structured ones), outputs and dead letters read back from the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import httpx
import pytest

from sluice.application.model import TopicSpec
from sluice.events import Consumed, ConsumedRecord, Undecodable
from sluice.kafka import Consumer, KafkaSettings
from sluice.kafka.admin import ensure_topics
from sluice.net import free_port
from tests.workers.conftest import Worker, prepare, read_all
from workers.push_events import from_http
from workers.state import StateLock, state_directory, volume_state_directory

pytestmark = pytest.mark.kafka

TOPICS = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
"""

AGENTS = """
import asyncio
from sluice import Record
from sluice.sdk import FatalError, Processor, SkipRecord


class Tag(Processor):
    async def process(self, record):
        value = record.value
        if value == "poison":
            raise ValueError("cannot digest poison")
        if value == "skip":
            raise SkipRecord("not for us")
        if value == "fatal":
            raise FatalError("the model is gone")
        if value == "slow":
            await asyncio.sleep(2)
        if value == "unencodable":
            return record.with_value({"a set": {1, 2}})
        if value == "huge":
            return record.with_value("x" * 2_000_000)
        if value == "two":
            return [record.with_value("two-1"), record.with_value("two-2")]
        kind = type(value).__name__
        tagged = {"got": value.hex() if isinstance(value, bytes) else value, "kind": kind}
        return record.with_value(tagged).with_headers({"tagged": "yes"})
"""

StartPush = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def start_push(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[StartPush]:
    """Start ``python -m workers APP --executor ID --push --port <free>``; ``Worker.health_port``
    is the push port (it serves /readyz too)."""
    workers: list[Worker] = []

    async def start(
        app_dir: Path,
        executor: str,
        *,
        ready: bool = True,
        state_dir: Path | None = None,
        instance: Path | None = None,
        extra: Sequence[str] = (),
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
            "--push",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--state-dir",
            str(state_dir or tmp_path / "state"),
            *(["-i", str(instance)] if instance is not None else []),
            *extra,
            env=dict(os.environ),
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


def push_app(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    errors: str = "{{on-failure: fail}}",
    resources: str = "{{}}",
) -> Path:
    return app_factory(
        {
            "pipeline.yaml": TOPICS
            + f"""
pipeline:
  - id: tag
    type: python-processor
    input: {{inp}}
    output: {{out}}
    errors: {errors}
    resources: {resources}
    configuration: {{{{className: agents.Tag}}}}
""",
            "python/agents.py": AGENTS.replace("{", "{{").replace("}", "}}"),
        },
        **topics,
    )


def binary_headers(
    content_type: str | None = "text/plain; charset=utf-8",
    *,
    event_id: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """What KafkaSource sends for a Sluice record: its ``ce_`` headers as ``ce-`` HTTP
    headers (percent-encoded), its plain Kafka headers as they are."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id or str(uuid.uuid4()),
        "ce-source": "/default/app/gateways/chat",
        "ce-type": "ai.sluice.record",
        "ce-time": "2026-11-24T01:02:03.456Z",
    }
    if content_type is not None:
        headers["content-type"] = content_type
    headers.update(extra)
    return headers


async def post(worker: Worker, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            f"http://127.0.0.1:{worker.health_port}/", content=body, headers=headers
        )


async def test_binary_events_become_records_with_their_headers_and_outputs_land_in_kafka(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")

    text = await post(
        worker,
        b"hello",
        binary_headers(
            event_id="e-1",
            **{
                "ce-partitionkey": "s%C3%A9ance-1",  # percent-encoded per the HTTP binding
                "langstream-client-session-id": "s1",
                "langstream-service-request-id": "r1",
            },
        ),
    )
    assert (text.status_code, text.headers["sluice-outcome"]) == (204, "done")
    assert "content-type" not in text.headers  # no reply event
    as_json = await post(
        worker,
        b'{"q": [1, 2]}',
        binary_headers("application/json", **{"langstream-client-session-id": "s2"}),
    )
    assert as_json.status_code == 204
    two = await post(worker, b"two", binary_headers(**{"langstream-client-session-id": "s3"}))
    assert two.status_code == 204

    got = await read_all(kafka_bootstrap, topics["out"], 4)
    by_session: dict[str, list[ConsumedRecord]] = {}
    for item in got:
        by_session.setdefault(item.record.headers["langstream-client-session-id"], []).append(item)
    [first] = by_session["s1"]
    assert first.record.value == {"got": "hello", "kind": "str"}
    assert first.record.key == "séance-1"
    assert dict(first.record.headers) == {
        "langstream-client-session-id": "s1",
        "langstream-service-request-id": "r1",
        "tagged": "yes",
    }
    assert first.event_source == f"/default/{app_dir.name}/agents/tag"
    assert first.event_id != "e-1"  # a new id per agent output
    [second] = by_session["s2"]
    assert second.record.value == {"got": {"q": [1, 2]}, "kind": "dict"}
    # Outputs of one event are written in order, each carrying the input's headers.
    assert [r.record.value for r in by_session["s3"]] == ["two-1", "two-2"]
    for item in got:  # transport headers of the HTTP request are not record headers
        assert not {"host", "user-agent", "content-length", "accept"} & set(item.record.headers)

    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{worker.health_port}/metrics")).text
    assert 'sluice_worker_records_in_total{executor="tag"} 3.0' in metrics
    assert 'sluice_worker_records_out_total{executor="tag"} 4.0' in metrics
    assert await worker.stop() == 0


async def test_structured_events_are_accepted(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    base = {"specversion": "1.0", "source": "/elsewhere", "type": "com.example.ask"}
    events = [
        {**base, "id": "j", "data": {"q": 1}, "partitionkey": "k1"},
        {**base, "id": "t", "datacontenttype": "text/plain", "data": "plain text"},
        {**base, "id": "b", "data_base64": "AAH/"},
    ]
    for event in events:
        # The Content-Type decides: ce- headers next to a structured event are not the event.
        response = await post(
            worker,
            json.dumps(event).encode(),
            {
                "content-type": "application/cloudevents+json; charset=utf-8",
                "x-trace": "t1",
                "ce-id": "ignored",
            },
        )
        assert response.status_code == 204, response.text
    got = await read_all(kafka_bootstrap, topics["out"], 3)
    by_kind = {r.record.value["kind"]: r for r in got}
    assert {kind: r.record.value["got"] for kind, r in by_kind.items()} == {
        "dict": {"q": 1},
        "str": "plain text",
        "bytes": "0001ff",  # data_base64 is bytes
    }
    assert by_kind["dict"].record.key == "k1"
    assert all(r.record.headers["x-trace"] == "t1" for r in got)
    assert await worker.stop() == 0


async def test_failing_agent_answers_500_and_keeps_serving(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics, "{{on-failure: fail, retries: 1}}")
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    for _ in range(2):  # KafkaSource retries it: each delivery fails again
        failed = await post(worker, b"poison", binary_headers())
        assert failed.status_code == 500
        assert failed.headers["content-type"] == "application/problem+json"
        problem = failed.json()
        assert problem["status"] == 500
        assert "ValueError: cannot digest poison" in problem["detail"]
        assert "2 attempt(s)" in problem["detail"]
        assert len(failed.content) <= 1024  # what KafkaSource keeps for the dead-letter sink
    # An output Kafka cannot take (not JSON) is a failure of the event too, not a crash.
    unencodable = await post(worker, b"unencodable", binary_headers())
    assert unencodable.status_code == 500
    assert "UnencodableRecord" in unencodable.json()["detail"]
    ok = await post(worker, b"fine", binary_headers())
    assert ok.status_code == 204
    [out] = await read_all(kafka_bootstrap, topics["out"], 1, settle=0.5)
    assert out.record.value == {"got": "fine", "kind": "str"}
    assert worker.process.returncode is None
    assert await worker.stop() == 0


async def test_dead_letter_is_acknowledged_before_the_2xx(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics, "{{on-failure: dead-letter}}")
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    response = await post(
        worker,
        b"poison",
        binary_headers(event_id="p-1", **{"langstream-client-session-id": "s9"}),
    )
    assert (response.status_code, response.headers["sluice-outcome"]) == (204, "dead-lettered")
    [dead] = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 1)
    assert dead.record.value == "poison"
    assert dead.event_id == "p-1"
    assert dead.event_source == "/default/app/gateways/chat"
    headers = dead.record.headers
    assert headers["error-class"] == "builtins.ValueError"
    assert headers["error-message"] == "cannot digest poison"
    assert headers["origin-topic"] == topics["inp"]
    assert headers["langstream-client-session-id"] == "s9"
    assert await read_all(kafka_bootstrap, topics["out"], 0, settle=0.5) == []

    # A malformed event is a 400 (not retried by KafkaSource) and goes to the dead letters too.
    malformed = await post(worker, b"no type", {"ce-specversion": "1.0", "ce-id": "m-1"})
    assert malformed.status_code == 400
    assert "source, type" in malformed.json()["detail"]
    got = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 2)
    assert got[1].record.value == "no type"
    assert got[1].record.headers["error-class"] == "sluice.Undecodable"
    assert await worker.stop() == 0


async def test_kafka_not_taking_the_output_is_503_and_a_redelivery_succeeds(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    missing = topics["out"] + "-later"
    app_dir = push_app(app_factory, {**topics, "out": missing})
    pipeline = app_dir / "pipeline.yaml"
    pipeline.write_text(
        pipeline.read_text().replace(
            f"{{name: {missing}, creation-mode: create-if-not-exists}}",
            f"{{name: {missing}, creation-mode: none}}",
        )
    )
    await prepare(app_dir, kafka_bootstrap)
    # The output topic is missing (the broker does not auto-create topics): no ack comes.
    instance = tmp_path / "instance.yaml"
    instance.write_text(
        "instance:\n  streamingCluster:\n    type: kafka\n    configuration:\n"
        "      admin: {request.timeout.ms: 1500}\n"
    )
    worker = await start_push(app_dir, "tag", instance=instance)
    response = await post(worker, b"q", binary_headers(event_id="q-1"))
    assert (response.status_code, response.headers["sluice-outcome"]) == (503, "unavailable")
    assert "not acknowledged by Kafka" in response.json()["detail"]
    await ensure_topics(
        KafkaSettings(kafka_bootstrap), [TopicSpec(missing, creation_mode="create-if-not-exists")]
    )
    again = await post(worker, b"q", binary_headers(event_id="q-1"))  # KafkaSource's retry
    assert again.status_code == 204
    [out] = await read_all(kafka_bootstrap, missing, 1)
    assert out.record.value == {"got": "q", "kind": "str"}
    assert await worker.stop() == 0


async def test_skip_answers_2xx_without_output(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics, "{{on-failure: skip}}")
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    for value in (b"poison", b"skip"):  # the policy, and SkipRecord from the agent
        response = await post(worker, value, binary_headers())
        assert (response.status_code, response.headers["sluice-outcome"]) == (204, "skipped")
    assert (await post(worker, b"after", binary_headers())).status_code == 204
    got = await read_all(kafka_bootstrap, topics["out"], 1, settle=1)
    assert [r.record.value for r in got] == [{"got": "after", "kind": "str"}]
    assert await worker.stop() == 0


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b"x", {"content-type": "text/plain"}, "not a CloudEvent"),
        (b"x", {k: v for k, v in binary_headers().items() if k != "ce-id"}, "attribute(s) id"),
        (b"{oops", binary_headers("application/json"), "not valid JSON"),
        (b"x", binary_headers(**{"ce-time": "yesterday"}), "invalid CloudEvent"),
        (b"[1]", {"content-type": "application/cloudevents+json"}, "JSON object"),
        (b"{", {"content-type": "application/cloudevents+json"}, "not valid JSON"),
        (b"[]", {"content-type": "application/cloudevents-batch+json"}, "batches"),
    ],
    ids=[
        "no-ce",
        "no-id",
        "bad-json-data",
        "bad-time",
        "structured-array",
        "structured-json",
        "batch",
    ],
)
async def test_malformed_events_are_400(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
    body: bytes,
    headers: dict[str, str],
    reason: str,
) -> None:
    app_dir = push_app(app_factory, topics)  # on-failure: fail: a 400 is still the answer
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    response = await post(worker, body, headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert reason in response.json()["detail"]
    assert worker.process.returncode is None
    assert await worker.stop() == 0


async def test_health_readiness_limits_and_unknown_paths(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    base = f"http://127.0.0.1:{worker.health_port}"
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{base}/healthz")).json() == {"status": "ok"}
        assert (await client.get(f"{base}/readyz")).json() == {"status": "ready"}
        assert (await client.get(f"{base}/nothing")).status_code == 404
        assert (await client.get(f"{base}/")).status_code == 405
    # Refused from its Content-Length, before the body is read (a client sending a body that
    # large would see the connection closed under it).
    reader, writer = await asyncio.open_connection("127.0.0.1", worker.health_port)
    head = "".join(f"{k}: {v}\r\n" for k, v in binary_headers().items())
    writer.write(f"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2000000\r\n{head}\r\n".encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"413"
    assert await worker.stop() == 0


async def test_sigterm_finishes_the_event_in_flight_and_stops_being_ready(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    base = f"http://127.0.0.1:{worker.health_port}"
    slow = asyncio.create_task(post(worker, b"slow", binary_headers()))
    await asyncio.sleep(0.5)  # the agent is sleeping on it
    worker.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            ready = (await client.get(f"{base}/readyz")).status_code
        except httpx.HTTPError:
            ready = None  # already closed for new connections: not ready either
    assert ready in (503, None)
    response = await slow
    assert response.status_code == 204
    [out] = await read_all(kafka_bootstrap, topics["out"], 1)
    assert out.record.value == {"got": "slow", "kind": "str"}
    assert await worker.exited() == 0


async def test_fatal_error_answers_500_and_stops_the_worker(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    response = await post(worker, b"fatal", binary_headers())
    assert response.status_code == 500
    assert "FatalError" in response.json()["detail"]
    assert await worker.exited() == 1


@pytest.mark.parametrize("volumes", [False, True], ids=["local-layout", "knative-volumes"])
async def test_live_but_not_ready_while_the_state_directory_is_locked(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
    tmp_path: Path,
    volumes: bool,
) -> None:
    app_dir = push_app(app_factory, topics, resources="{{disk: {{enabled: true, size: 64M}}}}")
    await prepare(app_dir, kafka_bootstrap)
    state = tmp_path / "push-state"
    if volumes:  # on Knative: <state>/<agent-id> is the volume, the lock file is inside it
        directory, extra = volume_state_directory(state, "tag"), ["--state-volumes"]
    else:
        directory, extra = state_directory(state, "default", app_dir.name, "tag"), []
    async with StateLock(directory, inside=volumes):  # the old pod, during a rollout
        worker = await start_push(app_dir, "tag", ready=False, state_dir=state, extra=extra)
        base = f"http://127.0.0.1:{worker.health_port}"
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(100):
                try:
                    live = await client.get(f"{base}/healthz")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            assert live.status_code == 200
            readiness = await client.get(f"{base}/readyz")
            assert readiness.status_code == 503
            assert readiness.json()["reason"] == "the agents are starting"
            refused = await post(worker, b"early", binary_headers())
            assert refused.status_code == 503
    await worker.ready()
    assert (await post(worker, b"later", binary_headers())).status_code == 204
    assert await worker.stop() == 0
    if volumes:
        assert (directory / ".sluice.lock").exists()
        assert sorted(p.name for p in state.iterdir()) == ["tag"]


def raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.items()]


def test_transport_headers_are_not_record_headers() -> None:
    headers = binary_headers(
        **{
            "Host": "worker.default.svc",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "1",
            "Transfer-Encoding": "chunked",
            "User-Agent": "Vert.x-WebClient/4",
            "X-Forwarded-For": "10.0.0.1",
            "Langstream-Client-Session-Id": "s1",
            "ce_stray": "kafka-style",
            "traceparent": "00-abc-def-01",
        }
    )
    item = from_http(raw(headers), b"v", topic=TopicSpec("in"))
    assert isinstance(item, ConsumedRecord)
    assert dict(item.record.headers) == {
        "langstream-client-session-id": "s1",
        "traceparent": "00-abc-def-01",
    }


def test_a_malformed_event_keeps_what_was_delivered_for_its_dead_letter() -> None:
    item = from_http(
        raw({"content-type": "application/json", "session": "s1"}), b"{}", topic=TopicSpec("in")
    )
    assert isinstance(item, Undecodable)
    assert (item.topic, item.partition, item.offset) == ("in", -1, -1)
    assert item.message.value == b"{}"
    assert dict(item.message.headers) == {"content-type": b"application/json", "session": b"s1"}


# -- the HTTP edges of the endpoint (a plain ASGI app: what it decides on its own) ---------------


async def test_wrong_methods_unknown_paths_head_and_options(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    base = f"http://127.0.0.1:{worker.health_port}"
    async with httpx.AsyncClient(timeout=10) as client:
        for method, path, status, title in [
            ("GET", "/", 405, "Method Not Allowed"),
            ("PUT", "/", 405, "Method Not Allowed"),
            ("DELETE", "/", 405, "Method Not Allowed"),
            ("POST", "/healthz", 405, "Method Not Allowed"),
            ("POST", "/readyz", 405, "Method Not Allowed"),
            ("POST", "/nothing", 404, "Not Found"),
            ("GET", "/healthz/", 404, "Not Found"),  # a trailing slash is another path
        ]:
            response = await client.request(method, base + path, content=b"x")
            assert response.status_code == status, (method, path)
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert (problem["type"], problem["title"], problem["status"]) == (
                "about:blank",
                title,
                status,
            )
            assert problem["detail"]
        # Runs of slashes count as one (as the Quart endpoint matched them).
        assert (await client.get(f"{base}//healthz")).json() == {"status": "ok"}
        head = await client.head(f"{base}/readyz")
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == str(len(b'{"status": "ready"}'))
        for path, allowed in [("/", "POST, OPTIONS"), ("/healthz", "GET, HEAD, OPTIONS")]:
            options = await client.options(base + path)
            assert (options.status_code, options.headers["allow"]) == (200, allowed)
    assert worker.process.returncode is None
    assert await worker.stop() == 0


async def test_a_chunked_body_over_the_limit_is_413_and_the_worker_keeps_serving(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused as it arrives
        for _ in range(17):
            yield b"x" * 65536  # 1 MiB (the producer's max_request_size) and 64 KiB more

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"http://127.0.0.1:{worker.health_port}/", content=chunks(), headers=binary_headers()
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Request Entity Too Large"
    assert "sluice-outcome" not in response.headers  # refused before it was an event
    assert (await post(worker, b"next", binary_headers())).status_code == 204
    got = await read_all(kafka_bootstrap, topics["out"], 1, settle=0.5)
    assert [r.record.value for r in got] == [{"got": "next", "kind": "str"}]
    assert await worker.stop() == 0


async def test_a_binary_event_without_content_type_is_read_by_the_topic_schema(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    # No datacontenttype: the value is read as pull mode reads a record without one, by the
    # topic's schema (none here: a string), not refused.
    response = await post(worker, b"plain", binary_headers(None))
    assert (response.status_code, response.headers["sluice-outcome"]) == (204, "done")
    [out] = await read_all(kafka_bootstrap, topics["out"], 1)
    assert out.record.value == {"got": "plain", "kind": "str"}
    assert await worker.stop() == 0


async def test_a_client_that_gives_up_cancels_its_event(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    # KafkaSource's dispatcher gives up on a request after its timeout and sends the event again:
    # the first delivery is not finished behind its back (as the Quart endpoint did not).
    app_dir = push_app(app_factory, topics)
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    async with httpx.AsyncClient(timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                f"http://127.0.0.1:{worker.health_port}/", content=b"slow", headers=binary_headers()
            )
    assert (await post(worker, b"after", binary_headers())).status_code == 204
    # "slow" sleeps 2 s in the agent: had it gone on, its output would be there by now.
    got = await read_all(kafka_bootstrap, topics["out"], 1, settle=3)
    assert [r.record.value for r in got] == [{"got": "after", "kind": "str"}]
    assert await worker.stop() == 0


async def test_readiness_comes_before_the_body_limit_and_a_stalled_body_is_408(
    kafka_bootstrap: str,
) -> None:
    from sluice.application.model import ErrorsSpec
    from sluice.kafka.producer import Producer
    from workers.chain import Chain
    from workers.push import PushExecutor, PushSettings
    from workers.push_app import PushServer

    async def status_of(port: int, head: str, body: bytes = b"") -> tuple[bytes, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST / HTTP/1.1\r\nhost: x\r\n{head}\r\n".encode() + body)
        await writer.drain()
        try:
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            [length] = [
                int(line.split(b":")[1])
                for line in answer.split(b"\r\n")
                if b"content-length" in line
            ]
            return answer.split()[1], await reader.readexactly(length)
        finally:
            writer.close()
            await writer.wait_closed()

    ce = "".join(f"{k}: {v}\r\n" for k, v in binary_headers().items())
    settings = PushSettings(TopicSpec("in"), None, None, ErrorsSpec(), "/t/a/agents/x")
    async with (
        Producer(KafkaSettings(kafka_bootstrap)) as producer,
        PushServer(TopicSpec("in"), port=0, host="127.0.0.1", max_body=100, body_timeout=0.5) as s,
    ):
        # Not ready yet: 503 whatever the body, before its size is looked at.
        status, body = await status_of(s.port, f"{ce}content-length: 5000\r\n")
        assert status == b"503" and b"the agents are starting" in body
        s.attach(PushExecutor(settings, producer, Chain()))
        status, body = await status_of(s.port, f"{ce}content-length: 5000\r\n")
        assert status == b"413" and b"Request Entity Too Large" in body
        # 3 of 10 bytes, then nothing: answered once the body timeout is over.
        status, body = await status_of(s.port, f"{ce}content-length: 10\r\n", b"abc")
        assert status == b"408" and b"Request Timeout" in body
        status, _ = await status_of(s.port, f"{ce}content-length: 2\r\n", b"ok")
        assert status == b"204"
        async with httpx.AsyncClient(timeout=5) as client:
            ready = await client.get(f"http://127.0.0.1:{s.port}/readyz")
        assert ready.json() == {"status": "ready"}


def test_the_endpoint_imports_no_web_framework() -> None:
    # Push mode runs in the application's own environment (sluice.environments), beside the
    # application's pins: a framework there would refuse some of them (Quart: click 8).
    code = (
        "import sys, workers.push_app, workers.main\n"
        "print(sorted(m for m in ('quart', 'werkzeug', 'flask', 'starlette', 'click') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


HUGE_OUTPUT_APP = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - name: {out}
    creation-mode: create-if-not-exists
    config: {{max.message.bytes: "1000000"}}
pipeline:
  - id: tag
    type: python-processor
    input: {inp}
    output: {out}
    errors: {{on-failure: POLICY, retries: 2}}
    configuration: {{className: agents.Tag}}
"""


@pytest.mark.parametrize(
    ("policy", "status", "outcome"),
    [("dead-letter", 204, "dead-lettered"), ("skip", 204, "skipped"), ("fail", 500, "failed")],
)
async def test_an_output_over_the_topic_limit_goes_through_the_policy_without_retries(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
    policy: str,
    status: int,
    outcome: str,
) -> None:
    # A 2 MB output for a topic taking 1 MB: Kafka refuses it on every redelivery, so a 503
    # would have KafkaSource send it forever. It is a failure of the event, as in pull mode.
    app_dir = app_factory(
        {
            "pipeline.yaml": HUGE_OUTPUT_APP.replace("POLICY", policy),
            "python/agents.py": AGENTS.replace("{", "{{").replace("}", "}}"),
        },
        **topics,
    )
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    for _ in range(2):  # a redelivery is answered the same way
        response = await post(worker, b"huge", binary_headers(event_id="h-1"))
        assert (response.status_code, response.headers["sluice-outcome"]) == (status, outcome)
        if status == 500:
            assert "RecordTooLarge" in response.json()["detail"]
            assert "1 attempt(s)" in response.json()["detail"]
    assert (await post(worker, b"after", binary_headers())).status_code == 204
    got = await read_all(kafka_bootstrap, topics["out"], 1, settle=0.5)
    assert [r.record.value for r in got] == [{"got": "after", "kind": "str"}]
    if policy == "dead-letter":  # the only policy with a dead-letter topic
        dead = await read_all(kafka_bootstrap, topics["inp"] + "-deadletter", 2)
        assert [d.record.value for d in dead] == ["huge", "huge"]
        assert dead[0].event_id == "h-1"
        assert dead[0].record.headers["error-class"] == "sluice.kafka.errors.RecordTooLarge"
        assert "takes records up to" in dead[0].record.headers["error-message"]
    log = "\n".join(worker.output)
    assert "retry 1 of" not in log, log  # the agent ran once per delivery
    assert worker.process.returncode is None, log
    assert await worker.stop() == 0


DEPTH = 50_000


async def test_a_deeply_nested_json_event_is_dead_lettered_and_the_worker_serves_on(
    app_factory: Callable[..., Path],
    topics: dict[str, str],
    start_push: StartPush,
    kafka_bootstrap: str,
) -> None:
    app_dir = push_app(app_factory, topics, "{{on-failure: dead-letter}}")
    await prepare(app_dir, kafka_bootstrap)
    worker = await start_push(app_dir, "tag")
    deep = b"[" * DEPTH + b"]" * DEPTH
    structured = b'{"specversion":"1.0","id":"d-1","source":"/s","type":"t","data":' + deep + b"}"
    answers = [
        await post(worker, deep, binary_headers("application/json", event_id="d-0")),
        await post(worker, structured, {"content-type": "application/cloudevents+json"}),
    ]
    for answer in answers:  # malformed: dead-lettered, then 400 (KafkaSource does not retry it)
        assert (answer.status_code, answer.headers["sluice-outcome"]) == (400, "malformed")
        assert "nested too deeply" in answer.json()["detail"]
    assert (await post(worker, b"after", binary_headers())).status_code == 204
    got = await read_all(kafka_bootstrap, topics["out"], 1, settle=0.5)
    assert [r.record.value for r in got] == [{"got": "after", "kind": "str"}]
    async with Consumer(
        KafkaSettings(kafka_bootstrap),
        [TopicSpec(topics["inp"] + "-deadletter")],
        start_at="beginning",
    ) as consumer:
        dead: list[Consumed] = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(dead) < 2 and asyncio.get_running_loop().time() < deadline:
            dead.extend(await consumer.poll(timeout_ms=200))
    # What came, as it came: the binary event's value is still too deep to decode; the
    # structured one is a message without ce_ headers, read as a plain record.
    assert len(dead) == 2
    assert isinstance(dead[0], Undecodable) and dead[0].value == deep, dead[0]
    assert isinstance(dead[1], ConsumedRecord), dead[1]
    value = dead[1].record.value
    assert (value.encode() if isinstance(value, str) else value) == structured
    assert dead[1].record.headers["error-class"] == "sluice.Undecodable"
    log = "\n".join(worker.output)
    assert "Traceback" not in log, log
    assert worker.process.returncode is None, log
    assert await worker.stop() == 0
