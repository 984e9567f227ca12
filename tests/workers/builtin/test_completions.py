"""``ai-chat-completions`` and ``ai-text-completions`` against a fake OpenAI server on loopback
(:class:`tests.fakes.openai_server.FakeOpenAI`, a real HTTP server speaking OpenAI's API):
templates, result fields, the request sent, streaming chunks, provider faults and resources.

Expected values of LangStream's behaviour come from its tests (cited per case) and the
reference's table 18.5 (A1-A3, A6).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluice.application.agent_types import AGENT_TYPES
from sluice.application.builtin_config import BadConfiguration
from sluice.environments import worker_requirements
from sluice.record import Record
from sluice.templates import TemplateRenderError
from sluice.testing import AgentHarness
from tests.fakes.openai_server import FakeOpenAI, Fault
from workers.builtin import BUILTIN_AGENTS
from workers.builtin.completions import (
    ChatCompletions,
    CompletionError,
    Completions,
    ResourceError,
    TextCompletions,
)

KEY = "sk-secret-test-key-1234"

CAR = ["A", " car", " is", " a", " vehicle"]
"""ChatCompletionsIT's streamed deltas (reference A3)."""


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def resources(fake: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {"openai": {"access-key": KEY, "url": fake.base_url, **extra}}


async def started(agent: Completions, config: dict[str, Any]) -> Any:
    await agent.init(config)
    await agent.start()
    return agent


async def run(agent: Completions, config: dict[str, Any], record: Record) -> list[Record]:
    await started(agent, config)
    try:
        return await agent.process(record)
    finally:
        await agent.close()


def chat(fake: FakeOpenAI, content: str = "{{ value }}", /, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-fake",
        "messages": [{"role": "user", "content": content}],
        "resources": resources(fake),
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- templates and fields ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
async def test_a1_the_message_is_rendered_over_the_record(fake: FakeOpenAI, stream: bool) -> None:
    # ChatCompletionsStepTest.testPrimitive (reference A1), without destinationTopic (null in
    # LangStream's runtime, so a render error there).
    content = "{{ value }} {{ key}} {{ eventTime }} {{ topicName }} {{ properties.test-key }}"
    record = Record(
        "test-message",
        key="test-key",
        headers={"test-key": "test-value"},
        origin="test-input-topic",
        timestamp=42,
    )
    await run(ChatCompletions(), chat(fake, content, stream=stream), record)
    [request] = fake.requests
    assert request.body["messages"] == [
        {"role": "user", "content": "test-message test-key 42 test-input-topic test-value"}
    ]
    assert request.body["model"] == "gpt-fake"
    assert request.streamed is stream
    assert request.headers["Authorization"] == f"Bearer {KEY}"


async def test_json_value_fields_render_as_in_chat_completions_step_test(fake: FakeOpenAI) -> None:
    # ChatCompletionsStepTest.testJsonValue-style template over a JSON value and the key.
    content = (
        "{{ value.firstName }} {{ value.lastName }} {{ value.age }} {{ value.date }} "
        "{{ value.timestamp }} {{ value.time }} {{ key }}"
    )
    value = {
        "firstName": "Jane",
        "lastName": "Doe",
        "age": 42,
        "date": 19359,
        "timestamp": 1672700645006,
        "time": 83045006,
    }
    await run(ChatCompletions(), chat(fake, content), Record(json.dumps(value), key="test-key"))
    assert fake.requests[0].body["messages"][0]["content"] == (
        "Jane Doe 42 19359 1672700645006 83045006 test-key"
    )


@pytest.mark.parametrize(
    ("field", "expected_value", "expected_headers"),
    [
        # ChatCompletionsStepTest.testValueOutput / testJsonStringValueFieldOutput /
        # testPropertyOutput (reference A2).
        (None, "result", {}),
        ("value.chat", '{"name":"Jane","chat":"result"}', {}),
        ("properties.chat", '{"name":"Jane"}', {"chat": "result"}),
    ],
)
async def test_a2_the_answer_goes_to_completion_field(
    fake: FakeOpenAI,
    field: str | None,
    expected_value: str,
    expected_headers: dict[str, str],
) -> None:
    fake.reply = lambda messages: "result"
    config = chat(fake, "{{{ value.name }}}", **({"completion-field": field} if field else {}))
    [out] = await run(ChatCompletions(), config, Record('{"name": "Jane"}'))
    assert out.value == expected_value
    assert dict(out.headers) == expected_headers


async def test_the_answer_may_replace_the_key(fake: FakeOpenAI) -> None:
    fake.reply = lambda messages: "result"
    config = chat(fake, **{"completion-field": "key", "stream": False})
    [out] = await run(ChatCompletions(), config, Record("q", key="k"))
    assert (out.key, out.value) == ("result", "q")


async def test_log_field_holds_the_request_as_json(fake: FakeOpenAI) -> None:
    fake.reply = lambda messages: "A car is a vehicle"
    config = chat(
        fake,
        "What about {{{ value.question }}}?",
        **{"completion-field": "value.answer", "log-field": "value.prompt"},
    )
    [out] = await run(ChatCompletions(), config, Record('{"question": "the car"}'))
    value = json.loads(out.value)
    assert value["answer"] == "A car is a vehicle"
    log = json.loads(value["prompt"])
    assert log["model"] == "gpt-fake"
    assert log["messages"] == [{"role": "user", "content": "What about the car?"}]
    assert log["options"]["type"] == "ai-chat-completions"
    assert log["options"]["messages"] == [
        {"role": "user", "content": "What about {{{ value.question }}}?"}
    ]
    assert "resources" not in log["options"]
    assert KEY not in value["prompt"]


async def test_provider_parameters_are_sent_only_when_set(fake: FakeOpenAI) -> None:
    config = chat(
        fake,
        **{
            "max-tokens": 10,
            "temperature": "0.5",
            "top-p": 0.9,
            "presence-penalty": 0.1,
            "frequency-penalty": -0.2,
            "logit-bias": {"50256": -100},
            "user": "u1",
            "stop": ["\n", "END"],
            "stream": False,
        },
    )
    await run(ChatCompletions(), config, Record("q"))
    body = fake.requests[0].body
    assert {k: v for k, v in body.items() if k not in ("messages", "model")} == {
        "max_tokens": 10,
        "temperature": 0.5,
        "top_p": 0.9,
        "presence_penalty": 0.1,
        "frequency_penalty": -0.2,
        "logit_bias": {"50256": -100},
        "user": "u1",
        "stop": ["\n", "END"],
    }
    await run(ChatCompletions(), chat(fake, stream=False), Record("q"))
    assert set(fake.requests[1].body) == {"messages", "model"}


async def test_a_missing_template_field_fails_the_record(fake: FakeOpenAI) -> None:
    with pytest.raises(TemplateRenderError):
        await run(ChatCompletions(), chat(fake, "{{ value.missing }}"), Record('{"a": 1}'))
    assert fake.requests == []


async def test_legacy_percent_syntax_in_chat_messages(fake: FakeOpenAI) -> None:
    await run(ChatCompletions(), chat(fake, "{{% value}}"), Record("hi"))
    assert fake.requests[0].body["messages"][0]["content"] == "hi"


async def test_when_false_lets_the_record_pass_without_a_call(fake: FakeOpenAI) -> None:
    config = chat(fake, when="value.ask == true", **{"completion-field": "value.answer"})
    [out] = await run(ChatCompletions(), config, Record('{ "ask": false }'))
    assert out.value == '{"ask":false}'
    assert fake.requests == []


# -- streaming -----------------------------------------------------------------------------------


async def test_a3_streamed_chunks_grow_and_carry_headers(fake: FakeOpenAI) -> None:
    # ChatCompletionsIT (reference A3): min-chunks-per-message 3, chunk text into the value,
    # the answer and the log into fields of the record that goes on.
    fake.reply = lambda messages: CAR
    config = chat(
        fake,
        "{{{ value.question }}}",
        **{
            "stream-to-topic": "answers",
            "stream-response-completion-field": "value",
            "completion-field": "value.answer",
            "log-field": "value.prompt",
            "min-chunks-per-message": 3,
        },
    )
    record = Record('{"question": "the car"}', key="k", headers={"session-id": "2139847128764192"})
    *chunks, final = await run(ChatCompletions(), config, record)
    assert [
        (c.value, c.headers["stream-index"], c.headers["stream-last-message"]) for c in chunks
    ] == [("A", "1", "false"), (" car is", "2", "false"), (" a vehicle", "3", "true")]
    assert {c.destination for c in chunks} == {"answers"}
    [stream_id] = {c.headers["stream-id"] for c in chunks}
    assert stream_id.startswith("chatcmpl-")
    assert all(c.headers["session-id"] == "2139847128764192" for c in chunks)
    assert all(c.key == "k" for c in chunks)
    value = json.loads(final.value)
    assert value["answer"] == "A car is a vehicle"
    assert value["question"] == "the car"
    assert json.loads(value["prompt"])["messages"][0]["content"] == "the car"
    assert final.destination is None
    assert not any(name.startswith("stream-") for name in final.headers)


async def test_default_grouping_1_2_4_8_16_20(fake: FakeOpenAI) -> None:
    pieces = [f"w{i} " for i in range(60)]
    fake.reply = lambda messages: pieces
    config = chat(fake, **{"stream-to-topic": "answers"})
    *chunks, final = await run(ChatCompletions(), config, Record("q"))
    sizes = [c.value.count("w") for c in chunks]
    assert sizes == [1, 2, 4, 8, 16, 20, 9]
    assert chunks[-1].headers["stream-last-message"] == "true"
    assert final.value == "".join(pieces)


async def test_streaming_without_stream_topic_gives_only_the_answer(fake: FakeOpenAI) -> None:
    fake.reply = lambda messages: CAR
    assert await run(ChatCompletions(), chat(fake), Record("q")) == [Record("A car is a vehicle")]
    assert fake.requests[0].streamed


async def test_stream_false_uses_one_answer_and_no_chunks(fake: FakeOpenAI) -> None:
    fake.reply = lambda messages: CAR
    config = chat(fake, stream=False, **{"stream-to-topic": "answers"})
    assert await run(ChatCompletions(), config, Record("q")) == [Record("A car is a vehicle")]
    assert not fake.requests[0].streamed


async def test_chunks_go_through_the_topic_producer(fake: FakeOpenAI) -> None:
    fake.reply = lambda messages: CAR
    config = {**chat(fake), "stream-to-topic": "answers", "min-chunks-per-message": 2}
    async with AgentHarness("ai-chat-completions", config=config) as harness:
        results = await harness.send({"value": "q", "headers": {"session-id": "s1"}})
    assert [r.value for r in results.outputs] == ["A car is a vehicle"]
    chunks = [(topic, r.value, r.headers["stream-index"]) for topic, r in results.topic_writes]
    assert chunks == [
        ("answers", "A", "1"),
        ("answers", " car is", "2"),
        ("answers", " a vehicle", "3"),
        ("answers", "", "4"),  # sizes 1, 2, 2: the finish event closes with an empty chunk
    ]
    assert all(r.headers["session-id"] == "s1" for _, r in results.topic_writes)


# -- text completions ----------------------------------------------------------------------------


def text(fake: FakeOpenAI, *prompt: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": list(prompt or ["{{ value }}"]),
        "resources": resources(fake),
        **extra,
    }


@pytest.mark.parametrize("stream", [True, False])
async def test_text_completion_answer_and_request(fake: FakeOpenAI, stream: bool) -> None:
    fake.reply = lambda messages: "I am fine"
    config = text(
        fake,
        "Q: {{{ value.q }}}",
        "A:",
        stream=stream,
        **{"completion-field": "value.a", "max-tokens": 5, "stop": ["\n"]},
    )
    [out] = await run(TextCompletions(), config, Record('{"q": "how are you?"}'))
    assert json.loads(out.value) == {"q": "how are you?", "a": "I am fine"}
    [request] = fake.requests
    assert request.path == "/v1/completions"
    assert request.body["prompt"] == ["Q: how are you?", "A:"]
    assert (request.body["max_tokens"], request.body["stop"]) == (5, ["\n"])


async def test_a6_a_blank_first_piece_is_dropped(fake: FakeOpenAI) -> None:
    # FlareControllerAgentRunnerIT (reference A6): a first piece "\n\n" is not part of the answer.
    pieces = ["\n\n", "I", " am", " an", " AI", " language", " model"]
    fake.reply = lambda messages: pieces
    config = text(fake, **{"stream-to-topic": "answers"})
    *chunks, final = await run(TextCompletions(), config, Record("q"))
    assert final.value == "I am an AI language model"
    assert [c.value for c in chunks] == ["I", " am an", " AI language model"]
    assert chunks[0].headers["stream-id"].startswith("cmpl-")


@pytest.mark.parametrize("stream", [True, False])
async def test_logprobs_field(fake: FakeOpenAI, stream: bool) -> None:
    fake.reply = lambda messages: ["I", " am"]
    config = text(fake, stream=stream, logprobs=1, **{"logprobs-field": "value.lp"})
    config["completion-field"] = "value.a"
    [out] = await run(TextCompletions(), config, Record("{}"))
    assert json.loads(out.value) == {
        "a": "I am",
        "lp": {"tokens": ["I", " am"], "logprobs": [-0.5, -0.5]},
    }
    assert fake.requests[0].body["logprobs"] == 1


async def test_logprobs_field_is_empty_without_logprobs(fake: FakeOpenAI) -> None:
    config = text(fake, **{"logprobs-field": "value.lp", "completion-field": "value.a"})
    [out] = await run(TextCompletions(), config, Record("{}"))
    assert json.loads(out.value)["lp"] == {"tokens": [], "logprobs": []}


# -- provider faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault(500), "answered 500"),
        (Fault(429, retry_after="0"), "answered 429"),
        (Fault(200, body=b"this is not json"), "not a completion"),
        (Fault(200, body=b'{"choices": []}'), "not a completion"),
    ],
)
async def test_provider_faults_fail_the_record(
    fake: FakeOpenAI, fault: Fault, message: str, stream: bool
) -> None:
    fake.fault = lambda body: fault
    config = chat(fake, stream=stream, **{"max-retries": 1})
    with pytest.raises(CompletionError, match=message) as caught:
        await run(ChatCompletions(), config, Record("q"))
    assert KEY not in str(caught.value)
    assert 'resource "openai"' in str(caught.value)
    # The client's own retries are bounded by max-retries (1 retry: 2 calls) for 429 and 5xx.
    assert len(fake.requests) == (2 if fault.status >= 429 else 1)


async def test_a_429_is_retried_after_retry_after(fake: FakeOpenAI) -> None:
    calls: list[float] = []

    def fault(body: dict[str, Any]) -> Fault | None:
        calls.append(time.monotonic())
        return Fault(429, retry_after="1") if len(calls) == 1 else None

    fake.fault = fault
    fake.reply = lambda messages: "ok"
    assert await run(ChatCompletions(), chat(fake), Record("q")) == [Record("ok")]
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.9  # the client waited as Retry-After said


async def test_a_401_names_the_status_and_never_the_key(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fault = lambda body: Fault(401)
    with caplog.at_level(logging.DEBUG), pytest.raises(CompletionError, match="answered 401"):
        await run(ChatCompletions(), chat(fake), Record("q"))
    assert KEY not in str(caplog.text)


async def test_a_silent_provider_times_out(fake: FakeOpenAI) -> None:
    fake.fault = lambda body: Fault(500, delay=3)
    config = chat(fake, **{"timeout-seconds": 1, "max-retries": 0})
    with pytest.raises(CompletionError, match="did not answer within 1s"):
        await run(ChatCompletions(), config, Record("q"))


async def test_connection_refused_fails_the_record() -> None:
    config = {
        "model": "m",
        "messages": [{"content": "x"}],
        "max-retries": 0,
        "resources": {"local": {"access-key": KEY, "url": f"http://127.0.0.1:{free_port()}/v1"}},
    }
    with pytest.raises(CompletionError, match=r'resource "local" .* cannot be reached'):
        await run(ChatCompletions(), config, Record("q"))


# -- resources and configuration -----------------------------------------------------------------


async def test_ai_service_picks_the_resource(fake: FakeOpenAI) -> None:
    config = chat(fake, **{"ai-service": "second", "stream": False})
    config["resources"] = {
        "first": {"access-key": "sk-first", "url": "http://127.0.0.1:1/v1"},
        "second": {"access-key": "sk-second", "url": fake.base_url},
    }
    await run(ChatCompletions(), config, Record("q"))
    assert fake.requests[0].headers["Authorization"] == "Bearer sk-second"


async def test_without_ai_service_the_first_openai_resource_is_used(fake: FakeOpenAI) -> None:
    config = chat(fake, stream=False)
    config["resources"] = {
        "db": {"service": "jdbc", "url": "jdbc:x"},
        "bedrock": {"access-key": "a", "secret-key": "s"},
        "openai": {"access-key": "sk-o", "url": fake.base_url, "provider": "openai"},
    }
    await run(ChatCompletions(), config, Record("q"))
    assert fake.requests[0].headers["Authorization"] == "Bearer sk-o"


async def test_a_resource_without_url_follows_openai_base_url(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LangStream's openai-text-completions example names only an access-key: the official
    # client's OPENAI_BASE_URL points it elsewhere (here the fake), and messages say where.
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    config = chat(fake, stream=False)
    config["resources"] = {"o": {"access-key": "sk-o"}}
    await run(ChatCompletions(), config, Record("q"))
    assert fake.requests[0].headers["Authorization"] == "Bearer sk-o"
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(CompletionError, match=r'resource "o" \(http://127.0.0.1:\d+/v1\)'):
        await run(ChatCompletions(), {**config, "max-retries": 0}, Record("q"))


async def test_the_resource_types_the_worker_passes_decide(fake: FakeOpenAI) -> None:
    # A Hugging Face API resource has an access-key too: with the types (as the worker passes
    # them) it is never taken for OpenAI, and a resource that is no AI service cannot be named.
    config = chat(fake, stream=False)
    config["resources"] = {
        "hf": {"access-key": "hf-key", "url": "http://127.0.0.1:1/v1"},
        "openai": {"access-key": "sk-o", "url": fake.base_url},
    }
    config["resource-types"] = {
        "hf": "hugging-face-configuration",
        "openai": "open-ai-configuration",
    }
    await run(ChatCompletions(), config, Record("q"))
    assert fake.requests[0].headers["Authorization"] == "Bearer sk-o"
    config["resources"]["db"] = {"service": "jdbc", "url": "jdbc:x"}
    config["resource-types"]["db"] = "datasource"
    with pytest.raises(ResourceError, match=r'"db" is not an AI resource \(datasource\)'):
        await ChatCompletions().init({**config, "ai-service": "db"})


@pytest.mark.parametrize(
    ("resources", "extra", "problem"),
    [
        ({}, {}, "No ai service resource found in application configuration"),
        (
            {"o": {"access-key": "", "url": "http://h"}},
            {"ai-service": "o"},
            '"o" has no access-key',
        ),
        ({"o": {"access-key": "k", "provider": "azure"}}, {}, '"o" .provider azure. has no url'),
        ({"o": {"access-key": "k"}}, {"ai-service": "x"}, 'ai-service "x" is not a resource'),
        ({"o": {"access-key": "k", "provider": "local"}}, {"ai-service": "o"}, "runs only compute"),
        ({"o": {"access-key": "k", "provider": "other"}}, {"ai-service": "o"}, "openai or azure"),
    ],
)
async def test_resource_problems_are_init_errors(
    resources: dict[str, Any], extra: dict[str, Any], problem: str
) -> None:
    config = {"model": "m", "messages": [{"content": "x"}], "resources": resources, **extra}
    with pytest.raises(ResourceError, match=problem):
        await ChatCompletions().init(config)


async def test_azure_calls_the_deployment_url(fake: FakeOpenAI) -> None:
    # Azure OpenAI: the model is the deployment, in the URL; the key goes in the api-key header.
    seen: list[str] = []
    config = chat(fake, stream=False)
    config["resources"] = {"az": {"access-key": KEY, "url": fake.url, "provider": "azure"}}
    await started(agent := ChatCompletions(), config)
    try:
        with pytest.raises(CompletionError, match="answered 404") as caught:
            await agent.process(Record("q"))
        seen.append(str(caught.value))
    finally:
        await agent.close()
    # The fake speaks OpenAI's paths only: the 404 names the deployment path Azure uses.
    assert "deployments/gpt-fake/chat/completions" in seen[0]


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"messages": [{"content": "x"}]}, "model: is required"),
        ({"model": "m"}, "messages: is required"),
        ({"model": "m", "messages": [{"role": "user"}]}, r"messages\[0\].content: is required"),
        ({"model": "m", "messages": [{"content": "{{ x"}]}, "not a valid Mustache template"),
        ({"model": "m", "messages": [{"content": "x"}], "temperature": "hot"}, "must be a number"),
        ({"model": "m", "messages": [{"content": "x"}], "min-chunks-per-message": 0}, "at least 1"),
        ({"model": "m", "messages": [{"content": "x"}], "logit-bias": {"1": "a"}}, "whole number"),
    ],
)
async def test_bad_configuration(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(BadConfiguration, match=problem):
        await ChatCompletions().init(config)


async def test_bad_result_field_name() -> None:
    config = {
        "model": "m",
        "messages": [{"content": "x"}],
        "completion-field": "nowhere",
        "resources": {"o": {"access-key": "k"}},
    }
    with pytest.raises(ValueError, match="nowhere"):
        await ChatCompletions().init(config)


def test_both_agents_are_runnable_built_in_types() -> None:
    for agent_type in ("ai-chat-completions", "ai-text-completions"):
        assert AGENT_TYPES[agent_type].runnable
        assert agent_type in BUILTIN_AGENTS
        # An application environment gets the openai client when a pipeline uses the agent.
        requirements = worker_requirements(agent_types=[agent_type])
        assert any(r.startswith("openai") for r in requirements), requirements
