"""``http-request`` and ``langserve-invoke`` against real HTTP servers on loopback.

The LangServe endpoints are a local aiohttp server speaking LangServe's protocol (``/invoke``
answers JSON, ``/stream`` answers server-sent events): the ``langstream`` extra that brings
LangServe itself is not part of the test environment.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.builtin_config import BadConfiguration
from sluice.record import Record
from sluice.templates import TemplateRenderError
from sluice.testing import AgentHarness
from workers.builtin import BUILTIN_AGENTS
from workers.builtin.http import HttpAgentError, HttpRequest
from workers.builtin.langserve import LangServeInvoke

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[dict[str, Handler]], Awaitable[str]]

JOKE = "Why don't cats play poker in the wild? Too many cheetahs!"

# LangServeInvokeAgentTest.testStreamingJSONMap / testStreamingJSONString: the pieces streamed.
PIECES = [
    "",
    "Why",
    " don",
    "'t",
    " cats",
    " play",
    " poker",
    " in",
    " the",
    " wild",
    "?\n\n",
    "Too",
    " many",
    " che",
    "et",
    "ah",
    "s",
    "!",
    "",
]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start an aiohttp server with the given routes (path -> handler, any method)."""
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, Handler]) -> str:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_route("*", path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def started(agent: HttpRequest | LangServeInvoke, config: dict[str, Any]) -> Any:
    await agent.init(config)
    await agent.start()
    return agent


def sse(pieces: list[Any], *, end: bool = True) -> bytes:
    """A LangServe /stream body: one data event per piece, then the end event."""
    events = [f"event: data\r\ndata: {json.dumps(piece)}\r\n\r\n" for piece in pieces]
    if end:
        events.append("event: end\r\n\r\n")
    return "".join(events).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- http-request --------------------------------------------------------------------------------


async def test_get_with_templated_query_and_headers_stores_a_json_object(serve: Serve) -> None:
    seen: dict[str, Any] = {}

    async def search(request: web.Request) -> web.Response:
        seen["query"] = request.raw_path.partition("?")[2]
        seen["headers"] = dict(request.headers)
        seen["method"] = request.method
        return web.json_response({"results": [{"timezone": "Europe/Rome"}]})

    base = await serve({"/v1/search": search})
    agent = await started(
        HttpRequest(),
        {
            "url": f"{base}/v1/search",
            "query-string": {"name": "{{{ value.city }}}", "count": 1, "e": "{{ value.city }}"},
            "headers": {"X-Session": "{{ properties.session }}", "X-Key": "{{ key }}"},
            "output-field": "value.response",
        },
    )
    try:
        out = await agent.process(
            Record('{"city": "Rome & co"}', key="k1", headers={"session": "s"})
        )
    finally:
        await agent.close()
    # Java's URLEncoder: space as +; {{ }} escapes & before it is encoded.
    assert seen["query"] == "name=Rome+%26+co&count=1&e=Rome+%26amp%3B+co"
    assert seen["method"] == "GET"
    assert seen["headers"]["X-Session"] == "s"
    assert seen["headers"]["X-Key"] == "k1"
    assert json.loads(out[0].value) == {
        "city": "Rome & co",
        "response": {"results": [{"timezone": "Europe/Rome"}]},
    }
    assert out[0].key == "k1"
    assert out[0].headers["session"] == "s"


async def test_post_with_templated_body_stores_text_answers(serve: Serve) -> None:
    bodies: list[tuple[str, str | None]] = []

    async def echo(request: web.Request) -> web.Response:
        bodies.append((await request.text(), request.headers.get("Content-Type")))
        # A JSON array is not an object: it is stored as text.
        return web.Response(text="[1, 2]" if request.query.get("array") else "plain answer")

    base = await serve({"/echo": echo})
    agent = await started(
        HttpRequest(),
        {
            "url": f"{base}/echo",
            "method": "post",
            "body": '{"q": "{{{ value.q }}}", "n": {{ value.n }}}',
            "headers": {"Content-Type": "application/json"},
            "output-field": "value.answer",
        },
    )
    array = await started(HttpRequest(), {"url": f"{base}/echo?array=1", "output-field": "value"})
    try:
        out = await agent.process(Record('{"q": "a\\"b", "n": 1.5}'))
        whole = await array.process(Record("anything"))
    finally:
        await agent.close()
        await array.close()
    assert bodies[0] == ('{"q": "a"b", "n": 1.5}', "application/json")
    assert json.loads(out[0].value)["answer"] == "plain answer"
    assert bodies[1] == ("", None)  # no body configured: none sent
    assert whole[0].value == "[1, 2]"


async def test_an_answer_of_400_or_more_fails_the_record(serve: Serve) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="database down")

    base = await serve({"/x": broken})
    agent = await started(HttpRequest(), {"url": f"{base}/x", "output-field": "value"})
    try:
        with pytest.raises(HttpAgentError, match=r"GET .*/x answered 500 Internal Server Error"):
            await agent.process(Record("v"))
    finally:
        await agent.close()


async def test_an_unreachable_server_fails_the_record() -> None:
    url = f"http://127.0.0.1:{free_port()}/nothing"
    agent = await started(HttpRequest(), {"url": url, "output-field": "value"})
    try:
        with pytest.raises(HttpAgentError, match="failed"):
            await agent.process(Record("v"))
    finally:
        await agent.close()


async def test_a_slow_server_fails_the_record_after_timeout_seconds(serve: Serve) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    base = await serve({"/slow": slow})
    agent = await started(
        HttpRequest(), {"url": f"{base}/slow", "output-field": "value", "timeout-seconds": 1}
    )
    try:
        with pytest.raises(HttpAgentError):
            await agent.process(Record("v"))
    finally:
        await agent.close()


async def test_a_missing_template_field_fails_the_record(serve: Serve) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    base = await serve({"/ok": ok})
    agent = await started(
        HttpRequest(),
        {
            "url": f"{base}/ok",
            "query-string": {"q": "{{ value.missing }}"},
            "output-field": "value",
        },
    )
    try:
        with pytest.raises(TemplateRenderError, match=r"value\.missing"):
            await agent.process(Record('{"a": 1}'))
    finally:
        await agent.close()


@pytest.mark.parametrize(("allow", "expected"), [(True, "new place"), (False, "moved")])
async def test_redirects_are_followed_unless_disabled(
    serve: Serve, allow: bool, expected: str
) -> None:
    async def old(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/new"}, text="moved")

    async def new(request: web.Request) -> web.Response:
        return web.Response(text="new place")

    base = await serve({"/old": old, "/new": new})
    agent = await started(
        HttpRequest(), {"url": f"{base}/old", "output-field": "value", "allow-redirects": allow}
    )
    try:
        out = await agent.process(Record("v"))
    finally:
        await agent.close()
    assert out[0].value == expected


@pytest.mark.parametrize(("handle", "expected"), [(True, "sid=abc"), (False, "none")])
async def test_cookies_are_kept_across_redirects_and_records_unless_disabled(
    serve: Serve, handle: bool, expected: str
) -> None:
    async def login(request: web.Request) -> web.Response:
        response = web.Response(status=302, headers={"Location": "/me"})
        response.set_cookie("sid", "abc")
        return response

    async def me(request: web.Request) -> web.Response:
        sid = request.cookies.get("sid")
        return web.Response(text="none" if sid is None else f"sid={sid}")

    base = await serve({"/login": login, "/me": me})
    agent = await started(
        HttpRequest(), {"url": f"{base}/login", "output-field": "value", "handle-cookies": handle}
    )
    later = await started(
        HttpRequest(), {"url": f"{base}/me", "output-field": "value", "handle-cookies": handle}
    )
    try:
        out = await agent.process(Record("v"))
        # The same agent's next call carries the cookie too; another agent's client does not.
        again = await agent.process(Record("v"))
        other = await later.process(Record("v"))
    finally:
        await agent.close()
        await later.close()
    assert out[0].value == expected
    assert again[0].value == expected
    assert other[0].value == "none"


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"url": "http://h/x"}, "output-field: is required"),
        ({"url": "http://h/x", "output-field": "value", "body": "{{# a }}"}, "body"),
        ({"url": "http://h/x", "output-field": "value", "headers": {"h": "{{ "}}, "headers.h"),
        ({"url": "http://h/x", "output-field": "value", "timeout-seconds": 0}, "at least 1"),
    ],
)
async def test_bad_http_request_configuration(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(BadConfiguration, match=problem):
        await HttpRequest().init(config)


# -- langserve-invoke ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        # LangServeInvokeAgentTest.testInvokeJSONMap, testInvokeJSONMapWithoutContent,
        # testInvokeJSONString (reference case A5).
        {
            "output": {"content": JOKE, "additional_kwargs": {}, "type": "ai", "example": False},
            "callback_events": [],
        },
        {"output": JOKE},
        JOKE,
    ],
)
async def test_a5_invoke(serve: Serve, answer: Any) -> None:
    requests: list[tuple[str, str | None]] = []

    async def invoke(request: web.Request) -> web.Response:
        requests.append((await request.text(), request.headers.get("Content-Type")))
        return web.json_response(answer)

    base = await serve({"/chain/invoke": invoke})
    agent = await started(
        LangServeInvoke(),
        {
            "url": f"{base}/chain/invoke",
            "fields": [{"name": "topic", "expression": "value.foo"}],
            "output-field": "value",
        },
    )
    try:
        out = await agent.process(Record('{\n   "foo": "cats"\n}\n'))
    finally:
        await agent.close()
    assert json.loads(requests[0][0]) == {"input": {"topic": "cats"}}
    assert requests[0][1] == "application/json"
    assert out == [Record(JOKE)]


async def test_invoke_honours_content_field_and_writes_into_a_field(serve: Serve) -> None:
    async def invoke(request: web.Request) -> web.Response:
        return web.json_response({"output": {"text": "from text", "content": "not this"}})

    base = await serve({"/chain/invoke": invoke})
    agent = await started(
        LangServeInvoke(),
        {
            "url": f"{base}/chain/invoke",
            "content-field": "text",
            "output-field": "value.answer",
            "headers": {"X-Session": "{{ properties.session }}"},
        },
    )
    try:
        out = await agent.process(Record('{"q": 1}', headers={"session": "s1"}))
    finally:
        await agent.close()
    assert json.loads(out[0].value) == {"q": 1, "answer": "from text"}


@pytest.mark.parametrize("as_strings", [False, True])
async def test_a4_stream_chunks_grouped_1_2_4_8(serve: Serve, as_strings: bool) -> None:
    # LangServeInvokeAgentTest.testStreamingJSONMap / testStreamingJSONString (reference A4).
    messages = [
        piece
        if as_strings
        else {"content": piece, "additional_kwargs": {}, "type": "AIMessageChunk"}
        for piece in PIECES
    ]

    async def stream(request: web.Request) -> web.Response:
        assert json.loads(await request.text()) == {"input": {"topic": "cats"}}
        return web.Response(body=sse(messages), content_type="text/event-stream")

    base = await serve({"/chain/stream": stream})
    agent = await started(
        LangServeInvoke(),
        {
            "url": f"{base}/chain/stream",
            "fields": [{"name": "topic", "expression": "value.foo"}],
            "output-field": "value",
            "stream-to-topic": "answers",
        },
    )
    try:
        out = await agent.process(Record('{"foo": "cats"}', headers={"session-id": "42"}))
    finally:
        await agent.close()
    *chunks, final = out
    assert [c.value for c in chunks] == [
        "Why",
        " don't",
        " cats play poker in",
        " the wild?\n\nToo many cheetah",
        "s!",
    ]
    assert {c.destination for c in chunks} == {"answers"}
    assert [c.headers["stream-index"] for c in chunks] == ["1", "2", "3", "4", "5"]
    assert [c.headers["stream-last-message"] for c in chunks] == ["false"] * 4 + ["true"]
    assert len({c.headers["stream-id"] for c in chunks}) == 1
    assert all(c.headers["session-id"] == "42" for c in chunks)
    assert final.value == "Why don't cats play poker in the wild?\n\nToo many cheetahs!"
    assert final.destination is None
    assert "stream-id" not in final.headers


async def test_stream_into_fields_with_min_chunks_3(serve: Serve) -> None:
    # The grouping of ChatCompletionsIT (reference A3), through LangServe's stream.
    async def stream(request: web.Request) -> web.Response:
        body = sse(["A", " car", " is", " a", " vehicle"])
        return web.Response(body=body, content_type="text/event-stream")

    base = await serve({"/chain/stream": stream})
    agent = await started(
        LangServeInvoke(),
        {
            "url": f"{base}/chain/stream",
            "output-field": "value.answer",
            "stream-response-field": "value",
            "stream-to-topic": "answers",
            "min-chunks-per-message": 3,
        },
    )
    try:
        out = await agent.process(Record('{"question": "the car"}'))
    finally:
        await agent.close()
    *chunks, final = out
    assert [(c.value, c.headers["stream-index"]) for c in chunks] == [
        ("A", "1"),
        (" car is", "2"),
        (" a vehicle", "3"),
    ]
    assert json.loads(final.value) == {"question": "the car", "answer": "A car is a vehicle"}


async def test_stream_without_stream_topic_and_without_end_event(serve: Serve) -> None:
    async def stream(request: web.Request) -> web.Response:
        return web.Response(body=sse(["a", "b", "c"], end=False), content_type="text/event-stream")

    base = await serve({"/chain/stream": stream})
    agent = await started(LangServeInvoke(), {"url": f"{base}/chain/stream"})
    try:
        out = await agent.process(Record("x"))
    finally:
        await agent.close()
    assert out == [Record("abc")]


@pytest.mark.parametrize("path", ["/chain/invoke", "/chain/stream"])
async def test_langserve_errors_fail_the_record(serve: Serve, path: str) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="Internal Server Error")

    base = await serve({path: broken})
    agent = await started(LangServeInvoke(), {"url": base + path})
    try:
        with pytest.raises(HttpAgentError, match="answered 500"):
            await agent.process(Record("x"))
    finally:
        await agent.close()


async def test_a_streamed_error_event_fails_the_record(serve: Serve) -> None:
    async def stream(request: web.Request) -> web.Response:
        body = sse(["partial"], end=False) + (
            b'event: error\r\ndata: {"status_code": 500, "message": "boom"}\r\n\r\n'
        )
        return web.Response(body=body, content_type="text/event-stream")

    base = await serve({"/chain/stream": stream})
    agent = await started(LangServeInvoke(), {"url": f"{base}/chain/stream"})
    try:
        with pytest.raises(HttpAgentError, match="boom"):
            await agent.process(Record("x"))
    finally:
        await agent.close()


async def test_langserve_unreachable_fails_the_record() -> None:
    agent = await started(
        LangServeInvoke(), {"url": f"http://127.0.0.1:{free_port()}/chain/invoke"}
    )
    try:
        with pytest.raises(HttpAgentError, match="failed"):
            await agent.process(Record("x"))
    finally:
        await agent.close()


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"url": "http://h/chain"}, "must end with /invoke"),
        ({"url": "http://h/invoke", "min-chunks-per-message": 0}, "at least 1"),
        ({"url": "http://h/invoke", "fields": [{"name": "a", "expression": "1 +"}]}, "fields"),
        ({"url": "http://h/invoke", "output-field": "nowhere"}, "invalid field name"),
    ],
)
async def test_bad_langserve_configuration(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        await LangServeInvoke().init(config)


def test_both_agents_are_runnable_built_in_types() -> None:
    for agent_type in ("http-request", "langserve-invoke"):
        assert AGENT_TYPES[agent_type].runnable
        assert agent_type in BUILTIN_AGENTS


async def test_langserve_stream_through_sluice_testing(serve: Serve) -> None:
    async def stream(request: web.Request) -> web.Response:
        return web.Response(body=sse(["A", " car", " is"]), content_type="text/event-stream")

    base = await serve({"/chain/stream": stream})
    config = {"url": f"{base}/chain/stream", "stream-to-topic": "answers"}
    async with AgentHarness("langserve-invoke", config=config) as harness:
        results = await harness.send({"value": "q", "headers": {"session-id": "s1"}})
    # The chunks go through the topic producer, as in the worker; the answer is the output.
    assert [(r.origin, r.value, r.headers.get("stream-index")) for r in results.outputs] == [
        (harness.output_topic, "A car is", None),
    ]
    chunks = [(topic, r.value, r.headers["stream-index"]) for topic, r in results.topic_writes]
    assert chunks == [("answers", "A", "1"), ("answers", " car is", "2"), ("answers", "", "3")]
    assert all(r.headers["session-id"] == "s1" for _, r in results.topic_writes)


async def test_debug_logs_the_request_and_the_answer(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    async def invoke(request: web.Request) -> web.Response:
        return web.json_response({"output": "hi"})

    base = await serve({"/chain/invoke": invoke})
    agent = await started(
        LangServeInvoke(),
        {
            "url": f"{base}/chain/invoke",
            "fields": [{"name": "t", "expression": "value"}],
            "debug": True,
        },
    )
    try:
        with caplog.at_level("INFO", logger="sluice.agent.langserve-invoke"):
            await agent.process(Record("cats"))
    finally:
        await agent.close()
    assert '{"input": {"t": "cats"}} answered \'hi\'' in caplog.text
