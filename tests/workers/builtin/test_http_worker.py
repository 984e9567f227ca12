"""``http-request`` and ``langserve-invoke`` in a real worker process on the real broker, calling
a real HTTP server on loopback: outputs, headers, streamed chunks on ``stream-to-topic``, and a
record the server answers with 500 under each ``errors`` policy."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from sluice.kafka import Producer
from sluice.record import Record
from tests.workers.builtin.test_http import PIECES, sse
from tests.workers.conftest import StartApp, read_all, send

pytestmark = pytest.mark.kafka

PIPELINE = """
topics:
  - {{name: {inp}, creation-mode: create-if-not-exists}}
  - {{name: {out}, creation-mode: create-if-not-exists}}
  - {{name: {stream}, creation-mode: create-if-not-exists}}
pipeline:
  - id: t
    type: {agent_type}
    input: {inp}
    output: {out}
    errors: {{on-failure: {policy}}}
    configuration: {configuration}
"""


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """A server for both agents: ``/api?q=`` (http-request) and LangServe's ``/chain/invoke``
    and ``/chain/stream``; the question ``bad`` is answered with 500."""

    async def api(request: web.Request) -> web.Response:
        q = request.query.get("q", "")
        if q == "bad":
            return web.Response(status=500, text="cannot answer")
        return web.json_response({"echo": q, "session": request.headers.get("X-Session")})

    async def invoke(request: web.Request) -> web.Response:
        q = (await request.json())["input"]["q"]
        if q == "bad":
            return web.Response(status=500, text="cannot answer")
        return web.json_response({"output": {"content": f"answer to {q}"}})

    async def stream(request: web.Request) -> web.Response:
        return web.Response(body=sse(PIECES), content_type="text/event-stream")

    app = web.Application()
    app.router.add_get("/api", api)
    app.router.add_post("/chain/invoke", invoke)
    app.router.add_post("/chain/stream", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
def names(topics: dict[str, str]) -> dict[str, str]:
    return {**topics, "stream": f"stream-{uuid.uuid4().hex[:8]}"}


def configuration(agent_type: str, base: str, names: dict[str, str]) -> str:
    config: dict[str, object]
    if agent_type == "http-request":
        config = {
            "url": f"{base}/api",
            "query-string": {"q": "{{{ value.q }}}"},
            "headers": {"X-Session": "{{ properties.session }}"},
            "output-field": "value.answer",
        }
    else:
        config = {
            "url": f"{base}/chain/invoke",
            "fields": [{"name": "q", "expression": "value.q"}],
            "headers": {"X-Session": "{{ properties.session }}"},
            "output-field": "value.answer",
        }
    return json.dumps(config)


def expected_answer(agent_type: str, q: str) -> object:
    if agent_type == "http-request":
        return {"echo": q, "session": "s"}
    return f"answer to {q}"


def pipeline(names: dict[str, str], *, agent_type: str, policy: str, config: str) -> str:
    return PIPELINE.format(agent_type=agent_type, policy=policy, configuration=config, **names)


def question(q: str) -> Record:
    return Record(json.dumps({"q": q}), key=f"k-{q}", headers={"session": "s"})


@pytest.mark.parametrize("agent_type", ["http-request", "langserve-invoke"])
@pytest.mark.parametrize("policy", ["skip", "dead-letter"])
async def test_a_500_answer_under_skip_and_dead_letter(
    start_app: StartApp,
    names: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
    server: str,
    agent_type: str,
    policy: str,
) -> None:
    worker = await start_app(
        {
            "pipeline.yaml": pipeline(
                names,
                agent_type=agent_type,
                policy=policy,
                config=configuration(agent_type, server, names),
            )
        }
    )
    for q in ("one", "bad", "two"):
        await send(producer, names["inp"], question(q))
    out = await read_all(kafka_bootstrap, names["out"], 2, settle=0.5)
    assert [(r.record.key, json.loads(r.record.value)) for r in out] == [
        (f"k-{q}", {"q": q, "answer": expected_answer(agent_type, q)}) for q in ("one", "two")
    ]
    assert all(r.record.headers["session"] == "s" for r in out)
    if policy == "dead-letter":
        [dead] = await read_all(kafka_bootstrap, names["inp"] + "-deadletter", 1)
        assert (dead.record.key, dead.record.value) == ("k-bad", '{"q": "bad"}')
        assert dead.record.headers["error-class"] == "workers.builtin.http.HttpAgentError"
        assert "answered 500" in dead.record.headers["error-message"]
    assert await worker.stop() == 0


@pytest.mark.parametrize("agent_type", ["http-request", "langserve-invoke"])
async def test_a_500_answer_under_fail_stops_the_worker(
    start_app: StartApp,
    names: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
    server: str,
    agent_type: str,
) -> None:
    worker = await start_app(
        {
            "pipeline.yaml": pipeline(
                names,
                agent_type=agent_type,
                policy="fail",
                config=configuration(agent_type, server, names),
            )
        }
    )
    await send(producer, names["inp"], question("one"))
    [out] = await read_all(kafka_bootstrap, names["out"], 1)
    assert json.loads(out.record.value)["answer"] == expected_answer(agent_type, "one")
    await send(producer, names["inp"], question("bad"))
    assert await worker.exited() == 1
    assert any("errors.on-failure is fail" in line for line in worker.output)


async def test_streamed_chunks_arrive_on_the_stream_topic(
    start_app: StartApp,
    names: dict[str, str],
    producer: Producer,
    kafka_bootstrap: str,
    server: str,
) -> None:
    config = json.dumps(
        {
            "url": f"{server}/chain/stream",
            "fields": [{"name": "q", "expression": "value.q"}],
            "output-field": "value.answer",
            "stream-response-field": "value",
            "stream-to-topic": names["stream"],
        }
    )
    worker = await start_app(
        {
            "pipeline.yaml": pipeline(
                names,
                agent_type="langserve-invoke",
                policy="fail",
                config=config,
            )
        }
    )
    await send(producer, names["inp"], question("cats"))
    [final] = await read_all(kafka_bootstrap, names["out"], 1)
    chunks = await read_all(kafka_bootstrap, names["stream"], 5, settle=0.5)
    assert await worker.stop() == 0
    assert [c.record.value for c in chunks] == [
        "Why",
        " don't",
        " cats play poker in",
        " the wild?\n\nToo many cheetah",
        "s!",
    ]
    headers = [c.record.headers for c in chunks]
    assert [h["stream-index"] for h in headers] == ["1", "2", "3", "4", "5"]
    assert [h["stream-last-message"] for h in headers] == ["false"] * 4 + ["true"]
    assert len({h["stream-id"] for h in headers}) == 1
    assert all(h["session"] == "s" for h in headers)
    assert all(c.record.key == "k-cats" for c in chunks)
    assert json.loads(final.record.value) == {
        "q": "cats",
        "answer": "Why don't cats play poker in the wild?\n\nToo many cheetahs!",
    }
    assert "stream-id" not in final.record.headers
