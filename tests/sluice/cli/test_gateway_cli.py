"""``sluice gateway ...`` as a user runs it: the real CLI in a subprocess against the real gateway
under Hypercorn on loopback, with the real broker behind it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from gateway.serving import serving
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.application.model import Application, AuthenticationSpec, TopicSpec
from sluice.client import (
    ChatFrame,
    Credentials,
    Target,
    base_url,
    chat_frame,
    parse_value,
)
from sluice.events import ConsumedRecord
from sluice.kafka import Consumer, KafkaSettings, Producer
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port
from sluice.record import Record

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[3]
SESSION = "langstream-client-session-id"
REQUEST_ID = "langstream-service-request-id"
GOOD_TOKEN = "good-token-" + uuid.uuid4().hex
# Hypercorn waits up to one ping interval to stop once a WebSocket was served; the CLI's own
# client pings are enough here.
NO_PINGS = None


@dataclass(frozen=True)
class Topics:
    questions: str
    answers: str
    requests: str
    replies: str

    def all(self) -> list[str]:
        return [self.questions, self.answers, self.requests, self.replies]


@dataclass(frozen=True)
class Running:
    url: str
    app_dir: Path
    topics: Topics
    kafka: KafkaSettings
    application: Application


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def write_app(directory: Path, topics: Topics, auth_url: str) -> Path:
    directory.mkdir()
    (directory / "pipeline.yaml").write_text(
        "topics:\n"
        + "".join(
            f"  - name: {name}\n    creation-mode: create-if-not-exists\n" for name in topics.all()
        )
    )
    session = f"""
        - key: {SESSION}
          value-from-parameters: sessionId"""
    (directory / "gateways.yaml").write_text(
        f"""
gateways:
  - id: in
    type: produce
    topic: {topics.questions}
    parameters: [sessionId]
    produce-options:
      headers:{session}
  - id: out
    type: consume
    topic: {topics.questions}
    parameters: [sessionId]
    consume-options:
      filters:
        headers:{session}
  - id: chat
    type: chat
    parameters: [sessionId]
    chat-options:
      questions-topic: {topics.questions}
      answers-topic: {topics.answers}
      headers:{session}
  - id: svc
    type: service
    service-options:
      input-topic: {topics.requests}
      output-topic: {topics.replies}
  - id: secured
    type: produce
    topic: {topics.questions}
    authentication:
      provider: http
      allow-test-mode: false
      configuration:
        base-url: {auth_url}
        path-template: /auth
  - id: testable
    type: produce
    topic: {topics.questions}
    authentication:
      provider: http
      allow-test-mode: true
      configuration:
        base-url: {auth_url}
        path-template: /auth
"""
    )
    return directory


@pytest.fixture(scope="module")
def auth_server() -> Iterator[str]:
    """The service an ``http`` authentication provider calls: 200 for GOOD_TOKEN, else 401."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.headers.get("Authorization") == f"Bearer {GOOD_TOKEN}"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
async def running(
    kafka_bootstrap: str, auth_server: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    kafka = KafkaSettings(kafka_bootstrap)
    suffix = uuid.uuid4().hex[:10]
    topics = Topics(*(f"cli-{role}-{suffix}" for role in ("q", "a", "req", "rep")))
    app_dir = write_app(tmp_path_factory.mktemp("cli") / f"cli-app-{suffix}", topics, auth_server)
    application = load_application(app_dir)
    await ensure_topics(kafka, list(application.topics.values()))
    # Tenant "default" and the folder's name, as `sluice run` serves it.
    test_provider = AuthenticationSpec("http", configuration={"base-url": auth_server})
    settings = GatewaySettings(test_provider=test_provider, ping_interval=NO_PINGS)
    quart_app = create_app({("default", application.name): application}, kafka, settings)
    try:
        async with serving(quart_app, LOOPBACK, free_port()) as url:
            yield Running(url, app_dir, topics, kafka, application)
    finally:
        await delete_topics(kafka, topics.all())


async def start(
    *args: str, stdin: bool = False, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    """``sluice gateway ARGS`` started in a subprocess, its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sluice.cli.main",
        "gateway",
        *args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def sluice(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    """``sluice gateway ARGS`` in a subprocess; its exit status and output."""
    process = await start(*args, stdin=stdin is not None, env=env)
    data = None if stdin is None else stdin.encode()
    async with asyncio.timeout(60):
        out, err = await process.communicate(data)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


def at(running: Running) -> list[str]:
    return ["-u", running.url]


async def read_until(
    kafka: KafkaSettings, topic: str, wanted: Callable[[ConsumedRecord], bool]
) -> ConsumedRecord:
    consumer = Consumer(kafka, [TopicSpec(topic)], start_at="beginning")
    await consumer.start()
    try:
        async with asyncio.timeout(20):
            while True:
                for item in await consumer.poll(timeout_ms=200):
                    if isinstance(item, ConsumedRecord) and wanted(item):
                        return item
    finally:
        await consumer.stop()


def with_session(session: str) -> Callable[[ConsumedRecord], bool]:
    return lambda item: item.record.headers.get(SESSION) == session


def answer_to(record: Record) -> list[Any]:
    return [f"answer to {record.value}"]


@contextlib.asynccontextmanager
async def responder(
    kafka: KafkaSettings,
    source: str,
    sink: str,
    copied: str,
    answer: Callable[[Record], list[Any]] = answer_to,
) -> AsyncIterator[list[Record]]:
    """Answers every record of ``source`` on ``sink`` with the values ``answer`` gives, copying
    header ``copied`` (the chat session, or the service request id): a pipeline in miniature.
    A value that is a (value, headers) tuple adds those headers."""
    seen: list[Record] = []
    consumer = Consumer(kafka, [TopicSpec(source)], start_at="end")
    await consumer.start()
    for topic, partition in consumer.assignment():
        await consumer.position(topic, partition)

    async def serve(producer: Producer) -> None:
        while True:
            for item in await consumer.poll(timeout_ms=200):
                if not isinstance(item, ConsumedRecord) or copied not in item.record.headers:
                    continue
                seen.append(item.record)
                for value in answer(item.record):
                    value, extra = value if isinstance(value, tuple) else (value, {})
                    headers = {copied: item.record.headers[copied], **extra}
                    await producer.send(sink, Record(value, headers=headers), source="/test")

    async with Producer(kafka) as producer:
        task = asyncio.create_task(serve(producer))
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await consumer.stop()


# --- produce ---------------------------------------------------------------------------------


async def test_produce_over_http_writes_the_record(running: Running) -> None:
    session = uuid.uuid4().hex
    result = await sluice(
        "produce",
        str(running.app_dir),  # the folder: its name is the application id
        "in",
        *at(running),
        "-p",
        f"sessionId={session}",
        "-v",
        '{"question": "hello"}',
        "-k",
        "k1",
        "--header",
        "h1=v=1",
    )
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "OK", "reason": None}
    consumed = await read_until(running.kafka, running.topics.questions, with_session(session))
    assert consumed.record.value == {"question": "hello"}
    assert consumed.record.key == "k1"
    assert consumed.record.headers["h1"] == "v=1"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["-v", "hello"], "hello"),
        (["-v", "42"], 42),
        (["-v", "42", "--string"], "42"),
        (["-v", "NaN"], "NaN"),
    ],
)
async def test_produce_over_websocket_and_the_value_rule(
    running: Running, flags: list[str], expected: object
) -> None:
    session = uuid.uuid4().hex
    app_id = running.app_dir.name  # the id works as well as the folder
    result = await sluice(
        "produce",
        app_id,
        "in",
        *at(running),
        "--protocol",
        "ws",
        "-p",
        f"sessionId={session}",
        *flags,
    )
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "OK", "reason": None}
    consumed = await read_until(running.kafka, running.topics.questions, with_session(session))
    assert consumed.record.value == expected


async def test_produce_errors_exit_1_with_the_gateway_detail(running: Running) -> None:
    app_id = running.app_dir.name
    missing = await sluice("produce", app_id, "in", *at(running), "-v", "x")
    assert missing.code == 1
    assert "400 Bad Request" in missing.stderr
    assert "missing required parameter sessionId" in missing.stderr
    assert missing.stdout == ""
    assert "Traceback" not in missing.stderr

    unknown = await sluice("produce", app_id, "nope", *at(running), "-v", "x")
    assert unknown.code == 1
    assert "404 Not Found: gateway nope of type produce not found" in unknown.stderr

    over_ws = await sluice("produce", app_id, "in", *at(running), "--protocol", "ws", "-v", "x")
    assert over_ws.code == 1
    assert "missing required parameter sessionId" in over_ws.stderr


async def test_produce_with_credentials_in_the_query_or_the_header(running: Running) -> None:
    app_id = running.app_dir.name
    for how in ([], ["--auth-header"]):
        ok = await sluice(
            "produce", app_id, "secured", *at(running), "-v", "x", "-c", GOOD_TOKEN, *how
        )
        assert ok.code == 0, ok.stderr
        assert json.loads(ok.stdout)["status"] == "OK"
    refused = await sluice(
        "produce", app_id, "secured", *at(running), "-v", "x", "-c", "wrong-" + GOOD_TOKEN
    )
    assert refused.code == 1
    assert "401" in refused.stderr
    assert GOOD_TOKEN not in refused.stderr + refused.stdout


async def test_test_credentials_and_the_environment(running: Running) -> None:
    app_id = running.app_dir.name
    tested = await sluice(
        "produce", app_id, "testable", *at(running), "-v", "x", "--tc", GOOD_TOKEN
    )
    assert tested.code == 0, tested.stderr
    not_allowed = await sluice(
        "produce", app_id, "secured", *at(running), "-v", "x", "--tc", GOOD_TOKEN
    )
    assert not_allowed.code == 1
    assert "401" in not_allowed.stderr
    env = {"SLUICE_GATEWAY_URL": running.url, "SLUICE_GATEWAY_CREDENTIALS": GOOD_TOKEN}
    from_env = await sluice("produce", app_id, "secured", "-v", "x", "--auth-header", env=env)
    assert from_env.code == 0, from_env.stderr


# --- consume ---------------------------------------------------------------------------------


async def test_consume_prints_each_record_as_a_json_line_and_resumes_after_an_offset(
    running: Running,
) -> None:
    session = uuid.uuid4().hex
    async with Producer(running.kafka) as producer:
        for value in ("one", {"two": 2}, "three"):
            await producer.send(
                running.topics.questions, Record(value, headers={SESSION: session}), source="/t"
            )
    args = ["consume", running.app_dir.name, "out", *at(running), "-p", f"sessionId={session}"]
    first = await sluice(*args, "--position", "earliest", "-n", "2", "--timeout", "30")
    assert first.code == 0, first.stderr
    frames = [json.loads(line) for line in first.lines()]
    assert [f["record"]["value"] for f in frames] == ["one", {"two": 2}]
    assert frames[0]["record"]["headers"][SESSION] == session

    after = await sluice(*args, "--position", frames[0]["offset"], "-n", "1", "--timeout", "30")
    assert after.code == 0, after.stderr
    assert json.loads(after.stdout)["record"]["value"] == {"two": 2}


async def test_consume_sees_records_produced_while_it_runs(running: Running) -> None:
    session = uuid.uuid4().hex
    args = ["consume", running.app_dir.name, "out", *at(running), "-p", f"sessionId={session}"]
    consuming = asyncio.create_task(sluice(*args, "-n", "1", "--timeout", "40"))
    # The socket is positioned before the handshake ends; keep producing until it is open.
    async with Producer(running.kafka) as producer:
        while not consuming.done():
            await producer.send(
                running.topics.questions, Record("live", headers={SESSION: session}), source="/t"
            )
            await asyncio.wait({consuming}, timeout=0.5)
    result = consuming.result()
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["record"]["value"] == "live"


async def test_consume_gives_up_after_the_timeout(running: Running) -> None:
    result = await sluice(
        "consume",
        running.app_dir.name,
        "out",
        *at(running),
        "-p",
        "sessionId=nobody",
        "-n",
        "1",
        "--timeout",
        "1",
    )
    assert result.code == 1
    assert "0 of 1 record(s) within 1 s" in result.stderr


async def test_a_refused_socket_is_the_gateway_detail(running: Running) -> None:
    result = await sluice(
        "consume", running.app_dir.name, "out", *at(running), "--position", "bogus!"
    )
    assert result.code == 1
    assert "400 Bad Request" in result.stderr
    assert "Traceback" not in result.stderr


async def connected_consumer(
    running: Running, url: str, session: str
) -> asyncio.subprocess.Process:
    """A ``consume`` process that printed its first record, so its socket is open."""
    process = await start(
        "consume", running.app_dir.name, "out", "-u", url, "-p", f"sessionId={session}"
    )
    assert process.stdout is not None
    line = asyncio.create_task(process.stdout.readline())
    async with Producer(running.kafka) as producer, asyncio.timeout(30):
        while not line.done():
            ping = Record("ping", headers={SESSION: session})
            await producer.send(running.topics.questions, ping, source="/t")
            await asyncio.wait({line}, timeout=0.5)
    assert json.loads(line.result())["record"]["value"] == "ping"
    return process


async def ended(process: asyncio.subprocess.Process) -> tuple[int, str]:
    """The exit status and stderr of ``process``, killed if it does not end within 20 s."""
    assert process.stderr is not None
    try:
        async with asyncio.timeout(20):
            _, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_ctrl_c_stops_consume_without_a_trace(running: Running) -> None:
    process = await connected_consumer(running, running.url, uuid.uuid4().hex)
    process.send_signal(signal.SIGINT)
    code, stderr = await ended(process)
    assert code == 130
    assert "Traceback" not in stderr


async def test_consume_reports_the_gateway_going_away(running: Running) -> None:
    app = running.application
    settings = GatewaySettings(ping_interval=NO_PINGS)
    second = create_app({("default", app.name): app}, running.kafka, settings)
    async with serving(second, LOOPBACK, free_port()) as url:
        process = await connected_consumer(running, url, uuid.uuid4().hex)
    # The gateway shut down: its sockets got 1001.
    code, stderr = await ended(process)
    assert code == 1
    assert "the gateway closed the socket: 1001 going away: the gateway is shutting down" in stderr


# --- chat ------------------------------------------------------------------------------------


async def test_chat_with_a_value_prints_the_first_answer(running: Running) -> None:
    topics = running.topics
    async with responder(running.kafka, topics.questions, topics.answers, SESSION) as seen:
        result = await sluice(
            "chat",
            running.app_dir.name,
            "chat",
            *at(running),
            "-p",
            "sessionId=s-value",
            "-v",
            "hi",
        )
    assert result.code == 0, result.stderr
    assert result.stdout == "answer to hi\n"
    assert [r.value for r in seen] == ["hi"]


async def test_chat_sends_every_line_of_stdin(running: Running) -> None:
    topics = running.topics
    args = ["chat", running.app_dir.name, "chat", *at(running), "-p", "sessionId=s-stdin"]
    async with responder(running.kafka, topics.questions, topics.answers, SESSION):
        result = await sluice(*args, "--json", stdin="one\n\n42\n")
    assert result.code == 0, result.stderr
    frames = [json.loads(line) for line in result.lines()]
    # Lines are sent as strings, blank ones skipped.
    assert [f["record"]["value"] for f in frames] == ["answer to one", "answer to 42"]


async def test_chat_without_an_answer_times_out(running: Running) -> None:
    result = await sluice(
        "chat",
        running.app_dir.name,
        "chat",
        *at(running),
        "-p",
        "sessionId=s-none",
        "-v",
        "anyone?",
        "--timeout",
        "1",
    )
    assert result.code == 1
    assert "no answer within 1 s" in result.stderr


async def test_chat_joins_a_streamed_answer(running: Running) -> None:
    def streamed(record: Record) -> list[Any]:
        last = "stream-last-message"
        return [("Hel", {last: "false"}), ("lo", {last: "false"}), ("!", {last: "true"})]

    topics = running.topics
    async with responder(running.kafka, topics.questions, topics.answers, SESSION, streamed):
        result = await sluice(
            "chat",
            running.app_dir.name,
            "chat",
            *at(running),
            "-p",
            "sessionId=s-stream",
            "-v",
            "hi",
        )
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello!\n"


# --- service ---------------------------------------------------------------------------------


async def test_service_prints_the_reply(running: Running) -> None:
    topics = running.topics
    async with responder(running.kafka, topics.requests, topics.replies, REQUEST_ID) as seen:
        result = await sluice(
            "service",
            running.app_dir.name,
            "svc",
            *at(running),
            "-v",
            '{"x": 1}',
            "--header",
            "h=1",
        )
    assert result.code == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["record"]["value"] == "answer to {'x': 1}"
    assert seen[0].value == {"x": 1}
    assert seen[0].headers["h"] == "1"
    assert reply["record"]["headers"][REQUEST_ID] == seen[0].headers[REQUEST_ID]


async def test_service_timeout_is_the_gateway_504(running: Running) -> None:
    result = await sluice(
        "service", running.app_dir.name, "svc", *at(running), "-v", "x", "--timeout", "1"
    )
    assert result.code == 1
    assert "504 Gateway Timeout" in result.stderr


# --- the command line itself -----------------------------------------------------------------


async def test_no_gateway_is_a_hint_not_a_stack_trace() -> None:
    url = f"http://{LOOPBACK}:{free_port()}"
    for command in ("produce", "consume"):
        value = ["-v", "x"] if command == "produce" else []
        result = await sluice(command, "app", "gw", "-u", url, "-c", GOOD_TOKEN, *value)
        assert result.code == 1
        assert (
            f"no gateway at {url} (connection refused): is `sluice run` running?" in result.stderr
        )
        assert GOOD_TOKEN not in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["produce", "a", "g", "-v", "x", "-p", "novalue"], "expected NAME=VALUE, got 'novalue'"),
        (["produce", "a", "g"], "the following arguments are required: -v/--value"),
        (["consume", "a", "g", "-n", "0"], "not a whole number of at least 1"),
        (["service", "a", "g", "--timeout", "soon"], "not a number of seconds"),
    ],
)
async def test_bad_command_lines_exit_2(args: list[str], message: str) -> None:
    result = await sluice(*args)
    assert result.code == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-u", "ftp://host"], "-u/--url: not an http:// or https:// URL: 'ftp://host'"),
        (["-c", "a", "--tc", "b"], "pass -c or --tc, not both"),
        (["--tc", "b", "--auth-header"], "--auth-header sends -c"),
        (["--auth-header"], "--auth-header needs credentials"),
    ],
)
async def test_inconsistent_options_exit_2(args: list[str], message: str) -> None:
    result = await sluice("consume", "a", "g", *args)
    assert result.code == 2
    assert message in result.stderr


# --- the pure parts --------------------------------------------------------------------------


def test_where_credentials_travel() -> None:
    def target(credentials: Credentials | None) -> Target:
        return Target("https://gw.example/x", "t", "a b", "g", (("s", "1"),), (), credentials)

    assert target(Credentials("tok")).query() == (("param:s", "1"), ("credentials", "tok"))
    assert target(Credentials("tok", test=True)).query()[-1] == ("test-credentials", "tok")
    header = target(Credentials("tok", as_header=True))
    assert header.query() == (("param:s", "1"),)
    assert header.headers() == {"Authorization": "Bearer tok"}
    assert header.http_url("service") == "https://gw.example/x/api/gateways/service/t/a%20b/g"
    assert header.ws_url("chat") == "wss://gw.example/x/v1/chat/t/a%20b/g?param%3As=1"
    assert "tok" not in repr(header)
    with pytest.raises(ValueError, match="query parameter"):
        Credentials("tok", test=True, as_header=True)


def test_base_urls_and_values() -> None:
    assert base_url("http://127.0.0.1:8091/") == "http://127.0.0.1:8091"
    assert base_url("wss://gw.example/prefix") == "https://gw.example/prefix"
    with pytest.raises(ValueError, match="no query"):
        base_url("http://h/?credentials=x")
    assert parse_value('{"a": [1, null]}') == {"a": [1, None]}
    assert parse_value("true") is True
    assert parse_value("Infinity") == "Infinity"
    assert parse_value("not json") == "not json"


def test_chat_frames() -> None:
    assert chat_frame('{"status": "OK", "reason": null}') == ChatFrame("ack")
    assert chat_frame('{"status": "BAD_REQUEST", "reason": "no"}') == ChatFrame(
        "refused", reason="BAD_REQUEST: no"
    )
    assert chat_frame('{"record": {"value": {"a": 1}}, "offset": "x"}') == ChatFrame(
        "answer", {"a": 1}
    )
    streamed = '{"record": {"value": "par", "headers": {"stream-last-message": "false"}}}'
    assert chat_frame(streamed).kind == "chunk"
