"""Fuzzing every gateway route, HTTP and WebSocket, against the real gateway under Hypercorn
with the real broker: whatever a client sends, the answer is never a 5xx other than 503 (and
504 for a service call that asked for a very short ``option:timeout``), a WebSocket is never
dropped without a close frame nor closed with 1011, nothing is logged as an error, and the
gateway is alive and ready afterwards.

Generation is property-based (hypothesis) with a fixed seed (``derandomize``) and a bounded
number of examples, so a run is repeatable and takes well under a minute. Each example runs on
the test's event loop (where the gateway is served) while hypothesis drives it from a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.serving import serving
from gateway.settings import GatewaySettings
from sluice.application import load_application
from sluice.kafka import KafkaSettings
from sluice.kafka.admin import delete_topics, ensure_topics
from sluice.net import LOOPBACK, free_port
from tests.gateway.raw_websocket import CLOSE, TEXT, RawWebSocket, frame
from tests.gateway.support import unique
from tests.gateway.test_proxy import UPSTREAM, served
from tests.gateway.test_service_gateway import Responder

pytestmark = pytest.mark.kafka

TENANT, APP = "fuzz-tenant", "fuzz-app"
HTTP_EXAMPLES = 400
WS_EXAMPLES = 70
SHORT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Fuzzed:
    url: str
    host: str
    port: int


def _write_app(directory: Path, q: str, a: str, si: str, so: str) -> Path:
    directory.mkdir()
    topics = "".join(
        f"  - name: {name}\n    creation-mode: create-if-not-exists\n" for name in (q, a, si, so)
    )
    (directory / "pipeline.yaml").write_text(
        f"topics:\n{topics}pipeline:\n"
        "  - {id: svc, type: python-service, configuration: {className: m.V}}\n"
    )
    session = """
        - key: langstream-client-session-id
          value-from-parameters: sessionId"""
    (directory / "gateways.yaml").write_text(
        f"""
gateways:
  - id: in
    type: produce
    topic: {q}
    parameters: [sessionId]
    produce-options:
      headers:{session}
  - id: out
    type: consume
    topic: {a}
    parameters: [sessionId]
    consume-options:
      filters:
        headers:{session}
  - id: chat
    type: chat
    parameters: [sessionId]
    chat-options:
      questions-topic: {q}
      answers-topic: {a}
      headers:{session}
  - id: ask
    type: service
    parameters: [sessionId]
    service-options:
      input-topic: {si}
      output-topic: {so}
      headers:{session}
  - id: proxy
    type: service
    parameters: [sessionId]
    service-options:
      agent-id: svc
      headers:{session}
"""
    )
    return directory


@pytest.fixture(scope="module")
async def gateway(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fuzzed]:
    kafka = KafkaSettings(kafka_bootstrap)
    names = [unique(f"fuzz-{kind}") for kind in ("q", "a", "si", "so")]
    application = load_application(
        _write_app(tmp_path_factory.mktemp("fuzz") / APP, *names), name=APP
    )
    await ensure_topics(kafka, list(application.topics.values()))
    settings = GatewaySettings(ui=True, ping_interval=None, max_body_bytes=64 * 1024)
    try:
        async with (
            served(UPSTREAM, free_port(), "/healthz") as upstream,
            Responder(kafka, names[2], names[3]) as responder,
        ):
            app = create_app(
                {(TENANT, APP): application},
                kafka,
                settings,
                service_urls={(TENANT, APP, "svc"): upstream},
            )

            async def answer_everything() -> None:
                while True:
                    with contextlib.suppress(TimeoutError):
                        await responder.answer(await responder.take(1))

            answering = asyncio.create_task(answer_everything())
            try:
                async with serving(app, LOOPBACK, free_port()) as url:
                    parts = urlsplit(url)
                    assert parts.hostname is not None and parts.port is not None
                    yield Fuzzed(url, parts.hostname, parts.port)
            finally:
                answering.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await answering
    finally:
        await delete_topics(kafka, names)


@pytest.fixture
def problems(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """Errors, and anything with a traceback, that the gateway's process logged."""
    caplog.set_level(logging.WARNING)

    def found() -> list[str]:
        return [
            f"{r.name}: {r.getMessage()}"
            for r in caplog.records
            if r.levelno >= logging.ERROR or r.exc_info is not None
        ]

    return found


# ---- what a client may send ------------------------------------------------------------------

_text = st.text(max_size=20)
_segment = st.one_of(_text.filter(bool), st.sampled_from(["x", "..", "%", "é", " "]))
_gateway_names = {
    "produce": ["in", "out", "ask"],
    "consume": ["out", "in"],
    "service": ["ask", "proxy", "proxy", "in"],
    "v1/produce": ["in", "out"],
    "v1/consume": ["out", "in"],
    "v1/chat": ["chat", "in"],
}


def _names(kind: str) -> st.SearchStrategy[tuple[str, str, str]]:
    return st.tuples(
        st.one_of(st.just(TENANT), _segment),
        st.one_of(st.just(APP), _segment),
        st.one_of(st.sampled_from(_gateway_names[kind]), _segment),
    )


_query_keys = st.one_of(
    st.sampled_from(
        [
            "param:sessionId",
            "param:other",
            "option:timeout",
            "option:position",
            "option:x",
            "credentials",
            "test-credentials",
            "q",
        ]
    ),
    _text,
)
_query_values = st.one_of(
    _text,
    st.sampled_from(["s1", "", "earliest", "latest", "0.001", "1", "-1", "nan", "1e9"]),
    st.sampled_from(["a\r\nb", "\x00", "é", "日本", "\u00a0"]),
)
_query = st.lists(st.tuples(_query_keys, _query_values), max_size=4)
_header_names = st.sampled_from(
    [
        "Content-Type",
        "Accept",
        "Authorization",
        "X-Custom",
        "langstream-client-session-id",
        "Last-Event-ID",
        "Origin",
        "ce-id",
    ]
)
_header_values = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
            "application/x-www-form-urlencoded",
            "Bearer x",
            "*/*",
            "http://evil.example",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    st.binary(max_size=12).map(lambda b: bytes(c for c in b if c not in b"\r\n\x00\x0b\x0c")),
    st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0xFF), max_size=8).map(
        lambda s: s.encode("latin-1")
    ),
).map(lambda v: (v if isinstance(v, bytes) else v.encode()).strip(b" \t"))

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["key", "value", "headers", "x"]), children, max_size=3)
    ),
    max_leaves=8,
)
_produce_json = st.fixed_dictionaries(
    {}, optional={"key": _json, "value": _json, "headers": st.dictionaries(_text, _json)}
)
_body = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    _json.map(lambda v: json.dumps(v).encode()),
    _produce_json.map(lambda v: json.dumps(v).encode()),
    st.lists(_produce_json, max_size=3).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"specversion": st.sampled_from(["1.0", "0.3", ""]), "id": _text, "source": _text},
        optional={"type": _text, "data": _json},
    ).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"{", b"[1,", b'{"value": NaN}', b"[" * 5000, b'{"a":1}x']),
)


@dataclass
class HttpCase:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    body: bytes = b""


@st.composite
def http_cases(draw: st.DrawFn) -> HttpCase:
    kind = draw(st.sampled_from(["produce", "consume", "service", "proxy", "ops", "ui", "other"]))
    query = draw(_query)
    if kind == "proxy":
        # The agent-id proxy forwards what it gets (parameters and headers end up in a request
        # of its own), so it gets examples of its own, with a session parameter.
        query.append(("param:sessionId", draw(_query_values)))
        extra = draw(st.lists(_segment, max_size=2))
        path = f"/api/gateways/service/{TENANT}/{APP}/proxy" + "".join(
            "/" + quote(s, safe="") for s in extra
        )
    elif kind == "ops":
        path = draw(st.sampled_from(["/healthz", "/readyz", "/metrics"]))
    elif kind == "ui":
        rest = draw(st.sampled_from(["", "/", f"/{TENANT}/{APP}", "/_assets/chat.js", "/x/y"]))
        path = "/ui" + rest
    elif kind == "other":
        path = "/" + "/".join(quote(s, safe="") for s in draw(st.lists(_segment, max_size=4)))
    else:
        tenant, app, name = draw(_names(kind))
        path = "/api/gateways/" + "/".join(quote(s, safe="") for s in (kind, tenant, app, name))
        if kind == "service":
            extra = draw(st.lists(_segment, max_size=3))
            path += "".join("/" + quote(s, safe="") for s in extra)
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]))
    headers = draw(st.lists(st.tuples(_header_names, _header_values), max_size=3))
    return HttpCase(method, path, query, headers, draw(_body))


@dataclass
class WsCase:
    path: str
    query: list[tuple[str, str]]
    headers: list[tuple[bytes, bytes]]
    frames: list[bytes]


_frame = st.one_of(
    _produce_json.map(lambda v: frame(TEXT, json.dumps(v).encode())),
    _body.map(lambda b: frame(TEXT, b)),
    st.builds(
        frame,
        st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x7, 0x9, 0xA, 0xB]),
        st.binary(max_size=60),
        fin=st.booleans(),
        masked=st.sampled_from([True, True, True, False]),
        rsv=st.sampled_from([0, 0, 0, 1, 4]),
    ),
)
_ws_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [b"sec-websocket-protocol", b"origin", b"authorization", b"sec-websocket-extensions"]
        ),
        st.one_of(
            st.sampled_from([b"bearer, tok", b"bearer", b"permessage-deflate", b"chat, x"]),
            _header_values,
        ),
    ),
    max_size=2,
)


@st.composite
def ws_cases(draw: st.DrawFn) -> WsCase:
    kind = draw(st.sampled_from(["v1/produce", "v1/consume", "v1/chat"]))
    tenant, app, name = draw(_names(kind))
    path = "/" + "/".join(quote(s, safe="") for s in (*kind.split("/"), tenant, app, name))
    query = draw(st.one_of(st.just([("param:sessionId", "s1")]), _query))
    return WsCase(path, query, draw(_ws_headers), draw(st.lists(_frame, max_size=5)))


# ---- running them ----------------------------------------------------------------------------


def _short_timeout(query: list[tuple[str, str]]) -> bool:
    for key, value in query:
        if key == "option:timeout":
            with contextlib.suppress(ValueError):
                if float(value) < SHORT_TIMEOUT:
                    return True
    return False


def _acceptable(status: int, query: list[tuple[str, str]]) -> bool:
    return status < 500 or status == 503 or (status == 504 and _short_timeout(query))


async def _send_http(gateway: Fuzzed, client: httpx.AsyncClient, case: HttpCase) -> str | None:
    """What went wrong with ``case``, or None."""
    request = client.build_request(
        case.method,
        gateway.url + case.path,
        params=httpx.QueryParams(tuple(case.query)),
        headers=[(k.encode(), v) for k, v in case.headers],
        content=case.body if case.method not in ("GET", "HEAD") or case.body else None,
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as error:
        return f"no answer: {error!r}"
    try:
        if not _acceptable(response.status_code, case.query):
            body = await response.aread()
            return f"{response.status_code}: {body[:300]!r}"
        if response.status_code >= 400 and case.method != "HEAD":
            body = await response.aread()
            if not body or response.headers.get("content-type") != "application/problem+json":
                return f"{response.status_code} without a problem body: {body[:300]!r}"
    finally:
        await response.aclose()  # an event stream is left after its head
    return None


async def _send_ws(gateway: Fuzzed, case: WsCase) -> str | None:
    query = "&".join(f"{quote(k, safe=':')}={quote(v, safe=':')}" for k, v in case.query)
    path = case.path + (f"?{query}" if query else "")
    try:
        async with RawWebSocket(gateway.host, gateway.port, path, case.headers) as socket:
            if socket.status != 101:
                if not _acceptable(socket.status, case.query):
                    return f"handshake {socket.status}: {socket.body[:300]!r}"
                return None
            with contextlib.suppress(ConnectionError):
                for data in case.frames:
                    await socket.send(data)
                await socket.send(frame(CLOSE, struct.pack("!H", 1000)))
            code = await socket.close_code(timeout=10)
    except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
        return f"no handshake answer: {error!r}"
    if code is None:
        return "closed without a close frame"
    if code in (1006, 1011):
        return f"closed with {code}"
    return None


def _run_from_thread(loop: asyncio.AbstractEventLoop, job: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(job, loop).result(timeout=60)


async def test_no_http_request_gets_a_5xx(
    gateway: Fuzzed, problems: Callable[[], list[str]]
) -> None:
    loop = asyncio.get_running_loop()
    ran: list[HttpCase] = []
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:

        @settings(
            max_examples=HTTP_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(http_cases())
        def check(case: HttpCase) -> None:
            ran.append(case)
            failure = _run_from_thread(loop, _send_http(gateway, client, case))
            assert failure is None, f"{case}: {failure}"

        await asyncio.to_thread(check)
        for path in ("/healthz", "/readyz"):
            assert (await client.get(gateway.url + path)).status_code == 200
    assert len(ran) >= HTTP_EXAMPLES // 2, len(ran)
    assert problems() == []


async def test_no_websocket_gets_a_5xx_or_a_bare_close(
    gateway: Fuzzed, problems: Callable[[], list[str]]
) -> None:
    loop = asyncio.get_running_loop()
    ran: list[WsCase] = []

    @settings(
        max_examples=WS_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(ws_cases())
    def check(case: WsCase) -> None:
        ran.append(case)
        failure = _run_from_thread(loop, _send_ws(gateway, case))
        assert failure is None, f"{case}: {failure}"

    await asyncio.to_thread(check)
    assert len(ran) >= WS_EXAMPLES // 2, len(ran)
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        for path in ("/healthz", "/readyz"):
            assert (await client.get(gateway.url + path)).status_code == 200
    assert problems() == []
