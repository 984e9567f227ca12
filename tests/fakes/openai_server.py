"""A fake of OpenAI's chat completions API: a real HTTP server on loopback.

Clients reach it as they reach OpenAI, through a base URL (``OPENAI_BASE_URL`` for the openai
package and langchain-openai, ``OPENAI_API_BASE`` for langchain-community), so the code under
test is unchanged. It answers ``POST /v1/chat/completions`` (and ``/chat/completions``) in both
modes: one JSON body, or ``stream: true`` server-sent events (``chat.completion.chunk`` deltas,
a usage chunk when ``stream_options.include_usage`` asks for it, then ``data: [DONE]``), sent
with chunked transfer encoding as OpenAI does. The answer is ``reply(messages)``, by default
``Fake answer to: <last user message>``, streamed a word at a time (a reply may also be a list
of pieces, streamed as they are). Requests without a bearer token get OpenAI's 401; every
request is recorded in :attr:`FakeOpenAI.requests`.

It answers ``POST /v1/embeddings`` with :func:`fake_embedding` vectors too: of the request's
``dimensions`` when it gives one (as OpenAI's text-embedding-3 models take it), else of the size
:attr:`FakeOpenAI.embedding_dimensions` gives the model (8 for any other). It also answers
the legacy text completions, ``POST /v1/completions`` (``prompt`` a string or a list; the reply
is asked for one user message of the prompts joined by spaces), in both modes, with
``logprobs`` when the request asks for them: each token's is ``logprob(token)``, by default
-0.5 (confident). ``fault(body)`` may return a :class:`Fault`
for a request: an error status (with ``Retry-After``), a body that is not JSON, or a delay.

In a test::

    with FakeOpenAI() as openai:
        client = openai_client(base_url=openai.base_url, api_key="sk-fake")

By hand: ``python -m tests.fakes.openai_server --port 8111`` prints its base URL and serves
until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar

from tests.fakes.loopback import Served

Reply = Callable[[list[dict[str, Any]]], "str | list[str]"]
TokenLogprob = Callable[[str], float]

_T = TypeVar("_T")

PATHS = ("/v1/chat/completions", "/chat/completions")
TEXT_PATHS = ("/v1/completions", "/completions")
EMBEDDING_PATHS = ("/v1/embeddings", "/embeddings")
EMBEDDING_DIMENSIONS = 8


def fake_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The fake's vector of ``text``: ``dimensions`` numbers (eight by default) from its SHA-256,
    then, past 32, from the SHA-256 of ``text`` and a block number; the same every time."""
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).digest()
    block = 1
    while len(digest) < dimensions:
        digest += hashlib.sha256(data + b"#%d" % block).digest()
        block += 1
    return [round(byte / 255, 6) for byte in digest[:dimensions]]


@dataclass(frozen=True)
class Fault:
    """What the server does instead of answering: wait ``delay`` seconds, then answer
    ``status`` with OpenAI's error body (``Retry-After`` when given), or, with ``body``, that
    body as it is (status 200 and ``body`` set: an answer that is not a completion)."""

    status: int = 500
    body: bytes | None = None
    delay: float = 0.0
    retry_after: str | None = None


def no_fault(body: dict[str, Any]) -> Fault | None:
    return None


def flat_logprob(token: str) -> float:
    """-0.5 for every token: a probability of about 0.61, a confident answer."""
    return -0.5


def echo_reply(messages: list[dict[str, Any]]) -> str:
    """``Fake answer to: <the last user message>``."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return f"Fake answer to: {_text(message.get('content'))}"
    return "Fake answer."


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def streamed(self) -> bool:
        return bool(self.body.get("stream"))


@dataclass
class FakeOpenAI(Served):
    """The server, on ``host:port`` (0: a free port) while the ``with`` block runs."""

    host: str = "127.0.0.1"
    port: int = 0
    reply: Reply = echo_reply
    model: str = "gpt-fake"
    fault: Callable[[dict[str, Any]], Fault | None] = no_fault
    logprob: TokenLogprob = flat_logprob
    embedding_dimensions: dict[str, int] = field(default_factory=dict)
    """The size of a model's vectors (``{"text-embedding-ada-002": 1536}``); 8 for others."""
    requests: list[RecordedRequest] = field(default_factory=list)
    served_name = "fake OpenAI"

    @property
    def base_url(self) -> str:
        """What OpenAI clients take as base URL: ``http://host:port/v1``."""
        return f"{self.url}/v1"

    def environ(self, api_key: str = "sk-fake") -> dict[str, str]:
        """Environment variables that point OpenAI clients (openai, langchain) here."""
        return {
            "OPENAI_BASE_URL": self.base_url,
            "OPENAI_API_BASE": self.base_url,
            "OPENAI_API_KEY": api_key,
        }

    def listen_port(self) -> int:
        return self.port

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`FakeOpenAI.requests` instead."""

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            models = {"object": "list", "data": [{"id": self.server_fake.model, "object": "model"}]}
            self._json(200, models)
        else:
            self._error(404, f"Unknown request URL: GET {self.path}", "invalid_request_error")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in TEXT_PATHS:
            self._text_completion(path, raw)
            return
        if path in EMBEDDING_PATHS:
            self._embeddings(path, raw)
            return
        if path not in PATHS:
            self._error(404, f"Unknown request URL: POST {self.path}", "invalid_request_error")
            return
        accepted = self._accepted(path, raw, _messages)
        if accepted is None:
            return
        body, messages = accepted
        fake = self.server_fake
        answer = fake.reply(messages)
        model = str(body.get("model") or fake.model)
        if body.get("stream"):
            self._stream(
                answer, model, bool((body.get("stream_options") or {}).get("include_usage"))
            )
        else:
            self._json(200, completion(_joined(answer), model, messages))

    def _text_completion(self, path: str, raw: bytes) -> None:
        accepted = self._accepted(path, raw, lambda body: _texts(body, "prompt"))
        if accepted is None:
            return
        body, prompts = accepted
        fake = self.server_fake
        answer = fake.reply([{"role": "user", "content": " ".join(map(str, prompts))}])
        model = str(body.get("model") or fake.model)
        logprobs = body.get("logprobs") is not None
        if body.get("stream"):
            self._send_events(text_chunks(answer, model, logprobs=logprobs, logprob=fake.logprob))
        else:
            self._json(200, text_completion(answer, model, logprobs=logprobs, logprob=fake.logprob))

    def _embeddings(self, path: str, raw: bytes) -> None:
        """``POST /v1/embeddings``: ``input`` a text or a list of texts; one
        :func:`fake_embedding` each, in order, of the size asked or the model's."""
        accepted = self._accepted(path, raw, lambda body: _texts(body, "input"))
        if accepted is None:
            return
        body, texts = accepted
        fake = self.server_fake
        model = str(body.get("model") or fake.model)
        size = body.get("dimensions") or fake.embedding_dimensions.get(model, EMBEDDING_DIMENSIONS)
        data = [
            {"object": "embedding", "index": index, "embedding": fake_embedding(text, int(size))}
            for index, text in enumerate(texts)
        ]
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        self._json(200, {"object": "list", "data": data, "model": model, "usage": usage})

    def _accepted(
        self, path: str, raw: bytes, read: Callable[[Any], _T]
    ) -> tuple[dict[str, Any], _T] | None:
        """The request's body and what ``read`` takes from it, recorded; or None once it was
        answered instead: 401 without a bearer token, 400 for a body ``read`` refuses (not
        recorded), or the fault :attr:`FakeOpenAI.fault` chose."""
        if not re.fullmatch(r"Bearer \S+", self.headers.get("Authorization", "")):
            self._error(401, "You didn't provide an API key.", "invalid_request_error")
            return None
        try:
            body = json.loads(raw or b"null")
            got = read(body)
        except (ValueError, KeyError, TypeError) as error:
            self._error(400, f"Invalid body: {error}", "invalid_request_error")
            return None
        self.server_fake.requests.append(RecordedRequest(path, dict(self.headers.items()), body))
        if self._faulted(body):
            return None
        return body, got

    def _faulted(self, body: dict[str, Any]) -> bool:
        fault = self.server_fake.fault(body)
        if fault is None:
            return False
        if fault.delay:
            time.sleep(fault.delay)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._fault(fault)  # a client that gave up while it waited is gone
        return True

    def _fault(self, fault: Fault) -> None:
        if fault.body is not None:
            self.send_response(fault.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(fault.body)))
            self.end_headers()
            self.wfile.write(fault.body)
        else:
            extra = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
            self._error(fault.status, f"Fake fault {fault.status}", "server_error", extra)

    def _stream(self, answer: str | list[str], model: str, include_usage: bool) -> None:
        self._send_events(chunks(answer, model, include_usage=include_usage))

    def _send_events(self, events: Iterator[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in events:
            self._write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(
        self, status: int, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self._json(
            status,
            {"error": {"message": message, "type": kind, "param": None, "code": None}},
            headers,
        )


def completion(answer: str, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``chat.completion`` object answering with ``answer``."""
    prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
    completion_tokens = len(answer.split())
    return {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(prompt_tokens, completion_tokens),
    }


def chunks(
    answer: str | list[str], model: str, *, include_usage: bool = False
) -> Iterator[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed answer: a word per delta (or the
    answer's own pieces when it is a list)."""
    ident = f"chatcmpl-fake-{time.monotonic_ns()}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
        }

    yield chunk({"role": "assistant", "content": ""}, None)
    for piece in _pieces(answer):
        yield chunk({"content": piece}, None)
    yield chunk({}, "stop")
    if include_usage:
        yield {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": _usage(0, len(_joined(answer).split())),
        }


def text_completion(
    answer: str | list[str],
    model: str,
    *,
    logprobs: bool = False,
    logprob: TokenLogprob = flat_logprob,
) -> dict[str, Any]:
    """A ``text_completion`` object answering with ``answer`` (log probs a word, or a piece of
    a list, at a time: ``logprob(token)`` each)."""
    pieces = _pieces(answer)
    return {
        "id": f"cmpl-fake-{time.monotonic_ns()}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "text": _joined(answer),
                "index": 0,
                "logprobs": _logprobs(pieces, logprob) if logprobs else None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(0, len(pieces)),
    }


def text_chunks(
    answer: str | list[str],
    model: str,
    *,
    logprobs: bool = False,
    logprob: TokenLogprob = flat_logprob,
) -> Iterator[dict[str, Any]]:
    """The ``text_completion`` objects of a streamed text answer, then one with the finish."""
    ident = f"cmpl-fake-{time.monotonic_ns()}"
    created = int(time.time())

    def chunk(text: str, finish: str | None) -> dict[str, Any]:
        found = _logprobs([text], logprob) if logprobs and text else None
        choice = {"text": text, "index": 0, "logprobs": found, "finish_reason": finish}
        return {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [choice],
        }

    for piece in _pieces(answer):
        yield chunk(piece, None)
    yield chunk("", "stop")


def _pieces(answer: str | list[str]) -> list[str]:
    return list(answer) if isinstance(answer, list) else re.findall(r"\S+\s*", answer)


def _joined(answer: str | list[str]) -> str:
    return "".join(answer) if isinstance(answer, list) else answer


def _logprobs(pieces: list[str], logprob: TokenLogprob = flat_logprob) -> dict[str, Any]:
    """Made-up log probabilities, ``logprob(token)`` per token (a piece is a token here)."""
    return {
        "tokens": pieces,
        "token_logprobs": [logprob(piece) for piece in pieces],
        "top_logprobs": None,
        "text_offset": [0] * len(pieces),
    }


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with FakeOpenAI(host=args.host, port=args.port) as fake:
        print(f"fake OpenAI: {fake.base_url}", flush=True)
        for name, value in fake.environ().items():
            print(f"export {name}={value}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()


def _messages(body: Any) -> list[Any]:
    messages = body["messages"]
    if not isinstance(messages, list):
        raise TypeError("messages must be a list")
    return messages


def _texts(body: Any, name: str) -> list[str]:
    """``body[name]``: a text or a list of texts, as a list."""
    given = body[name]
    return [given] if isinstance(given, str) else [str(text) for text in given]
