"""dispatch, trigger-event, log-event and timer-source on in-memory records.

Cases F1-F5 of the agents reference (§18.4); expected values come from LangStream's
``FlowControlAgentsTest`` (``langstream-agents-flow-control``) and ``FlowControlRunnerIT``
(``langstream-runtime-impl``), named in the test ids.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import pytest

from sluice.application.builtin_config import BadConfiguration
from sluice.expressions import ExpressionError
from sluice.record import Record
from sluice.testing import AgentHarness
from workers.builtin import BUILTIN_AGENTS
from workers.builtin.flow import Dispatch, LogEvent, TimerSource, TriggerEvent


async def loaded(agent_type: str, config: dict[str, Any]) -> Any:
    agent = BUILTIN_AGENTS[agent_type]()
    await agent.init({**config, "resources": {}, "globals": {}})
    await agent.start()
    return agent


# -- dispatch ------------------------------------------------------------------------------------

ROUTES = {
    "routes": [
        {"when": "properties.language == 'en'", "destination": "topic1"},
        {"when": "properties.language == 'fr'", "destination": "topic2"},
        {"when": "properties.language == 'none'", "action": "drop"},
    ]
}


@pytest.mark.parametrize(
    ("language", "value", "destination"),
    [("it", "for-default", None), ("en", "for-topic1", "topic1"), ("fr", "for-topic2", "topic2")],
)
async def test_dispatch_F1_FlowControlRunnerIT_testDispatch(
    language: str, value: str, destination: str | None
) -> None:
    agent = await loaded("dispatch", ROUTES)
    record = Record(value, key="k", headers={"language": language}, origin="in", timestamp=5)
    [out] = await agent.process(record)
    # The record itself, unchanged, with the route's topic (None: the agent's output).
    assert out == record.to(destination)


async def test_dispatch_F1_drop_route_drops() -> None:
    agent = await loaded("dispatch", ROUTES)
    assert await agent.process(Record("gone", headers={"language": "none"})) == []


async def test_dispatch_first_true_route_wins_and_json_is_not_rewritten() -> None:
    agent = await loaded(
        "dispatch",
        {
            "routes": [
                {"when": "value.n > 1", "destination": "big"},
                {"when": "value.n > 0", "destination": "small"},
            ]
        },
    )
    text = '{ "n" : 5 }'
    [out] = await agent.process(Record(text))
    assert (out.value, out.destination) == (text, "big")
    [out] = await agent.process(Record('{"n": 1}'))
    assert out.destination == "small"


async def test_dispatch_unknown_property_is_false_other_errors_fail() -> None:
    agent = await loaded("dispatch", {"routes": [{"when": "value.n + 1 > 2", "destination": "x"}]})
    # value.n on plain text cannot be found: the condition is false, the record goes on.
    [out] = await agent.process(Record("plain text"))
    assert out.destination is None
    with pytest.raises(ExpressionError):
        await agent.process(Record('{"n": "abc"}'))


async def test_dispatch_without_routes_passes_everything() -> None:
    agent = await loaded("dispatch", {})
    record = Record("x")
    assert await agent.process(record) == [record]


async def test_dispatch_configuration_errors() -> None:
    agent = Dispatch()
    with pytest.raises(BadConfiguration, match="drop action cannot have a destination"):
        await agent.init({"routes": [{"when": "true", "action": "drop", "destination": "t"}]})
    with pytest.raises(BadConfiguration, match=r"routes\[0\]\.when: is required"):
        await agent.init({"routes": [{"destination": "t"}]})


# -- trigger-event -------------------------------------------------------------------------------

TRIGGER_FIELDS = [
    {"name": "value.computed", "expression": "fn:uppercase(value.original)"},
    {"name": "key.computed", "expression": "fn:lowercase(key.original)"},
    {"name": "properties.computed", "expression": "fn:lowercase(properties.original)"},
]


def trigger_input(i: int) -> Record:
    return Record(
        json.dumps({"original": f"Hello Folks {i}", "activator": i}),
        key=json.dumps({"original": f"Hello World {i}"}),
        headers={"original": f"Some session id {i}"},
        origin="input-topic",
    )


async def test_trigger_event_F2_FlowControlAgentsTest_testTriggerEventProcessor() -> None:
    agent = await loaded(
        "trigger-event",
        {"when": "value.activator > 5", "destination": "other-topic", "fields": TRIGGER_FIELDS},
    )
    for i in range(10):
        record = trigger_input(i)
        outputs = await agent.process(record)
        # Every input continues downstream unchanged.
        assert outputs[-1] == record
        if i <= 5:
            assert len(outputs) == 1
            continue
        event, _ = outputs
        assert event.destination == "other-topic"
        assert event.value == {
            "original": f"Hello Folks {i}",
            "activator": i,
            "computed": f"HELLO FOLKS {i}",
        }
        assert event.key == {"original": f"Hello World {i}", "computed": f"hello world {i}"}
        assert dict(event.headers) == {
            "original": f"Some session id {i}",
            "computed": f"some session id {i}",
        }


async def test_trigger_event_F3_testTriggerEventProcessorStopProcessing() -> None:
    # FlowControlAgentsTest.testTriggerEventProcessorStopProcessing
    agent = await loaded(
        "trigger-event",
        {"destination": "other-topic", "continue-processing": False, "fields": TRIGGER_FIELDS},
    )
    for i in range(10):
        [event] = await agent.process(trigger_input(i))
        assert event.destination == "other-topic"
        assert event.value["computed"] == f"HELLO FOLKS {i}"


async def test_trigger_event_F4_testTriggerEventProcessorWithTopicProducerErrors() -> None:
    # FlowControlAgentsTest.testTriggerEventProcessorWithTopicProducerErrors
    # The side write's failure is the executor's (the record fails when a routed output cannot
    # be written); here: what goes where.
    agent = await loaded(
        "trigger-event",
        {
            "destination": "other-topic",
            "fields": [{"name": "value", "expression": "fn:uppercase(value)"}],
        },
    )
    for i in range(3):
        for text in (f"fail-me {i}", f"keep-me {i}"):
            record = Record(text, key="k")
            event, original = await agent.process(record)
            assert (event.value, event.destination) == (text.upper(), "other-topic")
            assert original == record


async def test_trigger_event_when_false_passes_even_without_continue_processing() -> None:
    agent = await loaded(
        "trigger-event",
        {"destination": "t", "when": "value.go", "continue-processing": "false"},
    )
    record = Record('{"go": false}')
    assert await agent.process(record) == [record]


async def test_trigger_event_fields_see_the_record_before_any_write() -> None:
    agent = await loaded(
        "trigger-event",
        {
            "destination": "t",
            "fields": [
                {"name": "value.a", "expression": "value.a + 1"},
                {"name": "value.b", "expression": "value.a"},
            ],
        },
    )
    event, _ = await agent.process(Record('{"a": 1}'))
    assert event.value == {"a": 2, "b": 1}


async def test_trigger_event_bad_field_fails_the_record() -> None:
    agent = await loaded(
        "trigger-event", {"destination": "t", "fields": [{"name": "value.x", "expression": "1"}]}
    )
    with pytest.raises(ValueError, match="not a JSON object"):
        await agent.process(Record("plain text"))


async def test_trigger_event_needs_a_destination() -> None:
    with pytest.raises(BadConfiguration, match="destination: is required"):
        await TriggerEvent().init({})


# -- log-event -----------------------------------------------------------------------------------


async def test_log_event_logs_the_record_and_passes_it(caplog: pytest.LogCaptureFixture) -> None:
    agent = await loaded("log-event", {})
    record = Record('{"a": 1}', key="k1")
    with caplog.at_level(logging.INFO, logger="sluice.agent.log-event"):
        assert await agent.process(record) == [record]
    assert "key='k1'" in caplog.text and '{"a": 1}' in caplog.text


async def test_log_event_fields_and_message(caplog: pytest.LogCaptureFixture) -> None:
    agent = await loaded(
        "log-event",
        {
            "when": "value.a > 0",
            "fields": [
                {"name": "double", "expression": "value.a * 2"},
                {"name": "lang", "expression": "properties.language"},
            ],
            "message": "a={{ value.a }} from {{ topicName }} <{{{ key }}}>",
        },
    )
    record = Record('{"a": 21}', key="<k>", headers={"language": "en"}, origin="in")
    with caplog.at_level(logging.INFO, logger="sluice.agent.log-event"):
        assert await agent.process(record) == [record]
        assert await agent.process(Record('{"a": 0}')) != []
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["{'double': 42, 'lang': 'en'}", "a=21 from in <<k>>"]


async def test_log_event_swallows_errors(caplog: pytest.LogCaptureFixture) -> None:
    # A missing name in the template and a failing condition: logged, the record goes on.
    agent = await loaded("log-event", {"message": "{{ value.missing }}"})
    record = Record('{"a": 1}')
    with caplog.at_level(logging.INFO, logger="sluice.agent.log-event"):
        assert await agent.process(record) == [record]
    assert "could not log a record" in caplog.text
    failing = await loaded("log-event", {"when": "value.a + 1 > 0"})
    assert await failing.process(Record('{"a": "x"}')) == [Record('{"a": "x"}')]


async def test_log_event_bad_template_is_a_configuration_error() -> None:
    with pytest.raises(BadConfiguration, match="message: is not a valid Mustache template"):
        await LogEvent().init({"message": "{{# value.x }} never closed"})


# -- timer-source --------------------------------------------------------------------------------

TIMER_FIELDS = [
    {"name": "key.id", "expression": "fn:uuid()"},
    {"name": "value.stringpayload", "expression": "'constant-payload'"},
    {"name": "value.intpayload", "expression": "42"},
    {"name": "properties.foo", "expression": "'bar'"},
]


async def test_timer_source_F5_FlowControlRunnerIT_testTimerSource() -> None:
    source = await loaded("timer-source", {"period-seconds": 1, "fields": TIMER_FIELDS})
    started = time.monotonic()
    records: list[Record] = []
    while len(records) < 2:
        records.extend(await source.read())
    elapsed = time.monotonic() - started
    # The first after one period, the second one period later.
    assert 1.9 <= elapsed < 2.6
    for record in records:
        assert record.value == {"intpayload": 42, "stringpayload": "constant-payload"}
        uuid.UUID(record.key["id"])
        assert dict(record.headers) == {"foo": "bar"}
    assert records[0].key != records[1].key


async def test_timer_source_read_returns_promptly_while_waiting() -> None:
    source = await loaded("timer-source", {})  # 60 seconds
    started = time.monotonic()
    assert await source.read() == []
    assert time.monotonic() - started <= TimerSource.MAX_WAIT + 0.2


async def test_timer_source_without_fields_makes_empty_objects() -> None:
    source = TimerSource()
    await source.init({})
    record = source.make_record()
    assert (record.key, record.value, dict(record.headers)) == ({}, {}, {})


async def test_timer_source_bad_field_loses_the_tick(caplog: pytest.LogCaptureFixture) -> None:
    source = await loaded(
        "timer-source", {"period-seconds": 1, "fields": [{"name": "nowhere", "expression": "1"}]}
    )
    with caplog.at_level(logging.ERROR, logger="sluice.agent.timer-source"):
        while not caplog.records:
            assert await source.read() == []
    assert "could not make a record" in caplog.text


# -- through sluice.testing ----------------------------------------------------------------------


async def test_dispatch_and_trigger_event_through_the_agent_harness() -> None:
    # What a user's unit test sees: routed records read back at their topic.
    async with AgentHarness("dispatch", config=ROUTES) as harness:
        results = await harness.send(
            Record("a", headers={"language": "en"}), Record("b", headers={"language": "it"})
        )
    assert [(r.value, r.origin) for r in results.outputs] == [("a", "topic1"), ("b", "output")]
    config = {"destination": "side", "fields": [{"name": "value.x", "expression": "1"}]}
    async with AgentHarness("trigger-event", config=config) as harness:
        [delivery] = await harness.send(Record('{"a": 0}'))
    assert [(as_dict(r.value), r.origin) for r in delivery.outputs] == [
        ({"a": 0, "x": 1}, "side"),
        ({"a": 0}, "output"),
    ]


def as_dict(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
