"""Faults of every AI provider besides OpenAI (whose own are in ``test_completions``), through
the agents and their ``errors`` policy: a 429 with ``Retry-After`` then an answer, a 500, a
silent server, a refused connection, an answer of another shape. Each fails the record (never
a hung worker), names the resource, and never shows the provider's secret."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from sluice.testing import AgentHarness
from tests.fakes.bedrock_server import FakeBedrock
from tests.fakes.huggingface_server import FakeHuggingFace
from tests.fakes.ollama_server import FakeOllama
from tests.fakes.provider_server import FakeProvider, Fault, Recorded
from tests.fakes.vertex_server import FakeVertex


@dataclass(frozen=True)
class Kit:
    """How to run the agents on one provider's fake: its server, its resource (type and
    configuration for the fake's URL), a model for each agent, and the secret to look for."""

    name: str
    fake: Callable[[], FakeProvider]
    resource: Callable[[str], tuple[str, dict[str, Any]]]
    chat_model: str
    embeddings_model: str
    secret: str | None = None
    chat_extra: dict[str, Any] = field(default_factory=dict)


KITS = [
    Kit(
        "ollama",
        FakeOllama,
        lambda url: ("ollama-configuration", {"url": url}),
        "llama3",
        "nomic-embed-text",
    ),
    Kit(
        "huggingface",
        FakeHuggingFace,
        lambda url: (
            "hugging-face-configuration",
            {
                "provider": "api",
                "access-key": "hf_secret_fault_key",
                "api-url": f"{url}/pipeline/feature-extraction/",
                "model-check-url": f"{url}/api/models/",
                "inference-url": url,
            },
        ),
        "bert-base-uncased",
        "sentence-transformers/all-MiniLM-L6-v2",
        secret="hf_secret_fault_key",
    ),
    Kit(
        "vertex",
        FakeVertex,
        lambda url: (
            "vertex-configuration",
            {"url": url, "project": "p", "region": "r", "token": "ya29.fake-static-token"},
        ),
        "chat-bison",
        "textembedding-gecko",
        secret="ya29.fake-static-token",
    ),
    Kit(
        "bedrock",
        FakeBedrock,
        lambda url: (
            "bedrock-configuration",
            {"access-key": "AKIAFAKE", "secret-key": "fake-secret-key", "endpoint-override": url},
        ),
        "anthropic.claude-v2",
        "amazon.titan-embed-text-v1",
        secret="fake-secret-key",
        chat_extra={"options": {"response-completions-expression": "completion"}},
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(params=KITS, ids=[kit.name for kit in KITS])
def kit(request: pytest.FixtureRequest) -> Kit:
    found: Kit = request.param
    return found


@pytest.fixture
def fake(kit: Kit) -> Iterator[FakeProvider]:
    with kit.fake() as server:
        yield server


AGENTS = ["ai-chat-completions", "compute-ai-embeddings"]


def config(kit: Kit, url: str, agent_type: str, **extra: Any) -> dict[str, Any]:
    kind, resource = kit.resource(url)
    base: dict[str, Any] = {
        "resources": {"ai": resource},
        "resource-types": {"ai": kind},
        **extra,
    }
    if agent_type == "compute-ai-embeddings":
        return {
            "model": kit.embeddings_model,
            "text": "{{ value }}",
            "embeddings-field": "value",
            **base,
        }
    messages = [{"content": "{{ value }}"}]
    return {"model": kit.chat_model, "messages": messages, **kit.chat_extra, **base}


async def send(agent_type: str, configuration: dict[str, Any], value: str = "q") -> Any:
    errors = {"on-failure": "dead-letter"}
    async with AgentHarness(agent_type, config=configuration, errors=errors) as harness:
        return await harness.send({"value": value})


def answered(fake: FakeProvider) -> int:
    return len([r for r in fake.requests if r.method == "POST"])


@pytest.mark.parametrize("agent_type", AGENTS)
async def test_a_429_is_retried_after_retry_after(
    kit: Kit, fake: FakeProvider, agent_type: str
) -> None:
    calls: list[float] = []

    def fault(request: Recorded) -> Fault | None:
        if request.method != "POST":
            return None
        calls.append(time.monotonic())
        return Fault(429, retry_after="1") if len(calls) == 1 else None

    fake.fault = fault
    results = await send(agent_type, config(kit, fake.url, agent_type))
    assert results.errors == [] and len(results.outputs) == 1
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.9


@pytest.mark.parametrize("agent_type", AGENTS)
async def test_a_500_fails_the_record_after_max_retries(
    kit: Kit, fake: FakeProvider, agent_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fault = lambda request: Fault(500) if request.method == "POST" else None
    with caplog.at_level(logging.DEBUG):
        results = await send(agent_type, config(kit, fake.url, agent_type, **{"max-retries": 1}))
    assert [r.value for r in results.dead_letters] == ["q"]
    [error] = results.errors
    assert 'resource "ai"' in str(error) and "answered 500" in str(error)
    assert answered(fake) == 2
    if kit.secret is not None:
        assert kit.secret not in str(error) and kit.secret not in caplog.text


@pytest.mark.parametrize("agent_type", AGENTS)
async def test_a_silent_server_times_out(kit: Kit, fake: FakeProvider, agent_type: str) -> None:
    fake.fault = lambda request: Fault(500, delay=3) if request.method == "POST" else None
    extra = {"timeout-seconds": 1, "max-retries": 0}
    started = time.monotonic()
    results = await send(agent_type, config(kit, fake.url, agent_type, **extra))
    assert time.monotonic() - started < 2.5
    [error] = results.errors
    assert "did not answer within 1s" in str(error)


@pytest.mark.parametrize("agent_type", AGENTS)
async def test_a_refused_connection_is_retried_then_fails(kit: Kit, agent_type: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    results = await send(agent_type, config(kit, url, agent_type, **{"max-retries": 1}))
    [error] = results.errors
    assert 'resource "ai"' in str(error) and "cannot be reached" in str(error)
    assert [r.value for r in results.dead_letters] == ["q"]


@pytest.mark.parametrize("agent_type", AGENTS)
@pytest.mark.parametrize("body", [b"this is not json", b"[1, 2]"])
async def test_a_malformed_answer_fails_the_record(
    kit: Kit, fake: FakeProvider, agent_type: str, body: bytes
) -> None:
    fake.fault = lambda request: Fault(200, body=body) if request.method == "POST" else None
    results = await send(agent_type, config(kit, fake.url, agent_type))
    [error] = results.errors
    assert "gave an answer that is not" in str(error)
    assert [r.value for r in results.dead_letters] == ["q"]
